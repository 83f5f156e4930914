//! The examples each subcommand's `--help` ends with: the commands users start from, in the
//! words of the README (kept here, one constant per subcommand, so that `mod.rs` stays the
//! argument definitions).

/// The exit codes of `mutate`, `audit` and `policy check`, after their examples.
macro_rules! exit_codes {
    () => {
        "\n\nExit codes (the same for mutate, audit and policy check):\n  0  done\n  1  what --fail-on names was found (audit); an invalid policy (policy check)\n  2  could not run: bad arguments, a file that cannot be read, no input, nothing to process\n  3  part of the input could not be read or processed (named on stderr or in the report); the rest was"
    };
}

/// `podgrace serve`.
pub const SERVE: &str = "\
Examples:
  podgrace serve --standalone --listen 127.0.0.1:8443 --policy-dir examples/policies
  podgrace serve --tls-cert-file /etc/podgrace/tls/tls.crt --tls-key-file /etc/podgrace/tls/tls.key";

/// `podgrace certs`.
pub const CERTS: &str = "\
Examples:
  podgrace certs --service podgrace --namespace podgrace-system --out-dir certs
  podgrace certs --san podgrace.example --days 90";

/// `podgrace mutate`.
pub const MUTATE: &str = concat!(
    "\
Examples:
  podgrace mutate -f deployment.yaml                       # the JSON patch
  podgrace mutate -f deployment.yaml -o diff --namespace-policy policy.yaml
  kubectl get deploy web -o yaml | podgrace mutate -f - -o pod
  podgrace mutate -f deployment.yaml --explain -o diff     # why each value, and what is not applied",
    exit_codes!()
);

/// `podgrace audit`.
pub const AUDIT: &str = concat!(
    "\
Examples:
  podgrace audit -n shop                                   # a namespace of the current context
  podgrace audit -A -o markdown --fail-on risk             # every namespace, for a pull request
  podgrace audit -f k8s/ --namespace-policy policy.yaml    # manifests, with a what-if policy",
    exit_codes!()
);

/// `podgrace prestop`.
pub const PRESTOP: &str = "\
Examples:
  podgrace prestop --sleep 10
  podgrace prestop --deregister nacos --nacos-server http://nacos:8848 --nacos-service orders \\
    --nacos-port 8080 --sleep 10
  podgrace prestop --sleep 5 --signal-nginx";

/// `podgrace install-helper`.
pub const INSTALL_HELPER: &str = "\
Examples:
  podgrace install-helper /podgrace                        # the helper init container's command";

/// `podgrace policy`.
pub const POLICY: &str = "\
Examples:
  podgrace policy check policy.yaml configmap.yaml
  podgrace policy defaults";

/// `podgrace policy check`.
pub const POLICY_CHECK: &str = concat!(
    "\
Examples:
  podgrace policy check policy.yaml                        # a policy file
  podgrace policy check k8s/podgrace-policy.yaml           # a ConfigMap manifest carrying one
  podgrace policy check --cluster-policy cluster.yaml ns/*.yaml",
    exit_codes!()
);

/// `podgrace policy defaults`.
pub const POLICY_DEFAULTS: &str = "\
Examples:
  podgrace policy defaults > policy.yaml                   # a starting point to edit";
