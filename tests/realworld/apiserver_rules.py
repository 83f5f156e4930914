"""The API server's semantic Pod validation that an OpenAPI schema cannot express.

kubernetes-validate checks types and required fields; the API server then runs the hand-written
rules of kubernetes/kubernetes pkg/apis/core/validation/validation.go on every Pod it is asked to
create (and on every pod template of a workload). A webhook whose patch breaks one of them fails
the user's create even with `failurePolicy: Ignore`, so the real-world tests run these rules on
each mutated pod template. Each function below names the Go function it follows; the rules are
those of Kubernetes 1.36 with its default feature gates (e.g. AllowPodLifecycleSleepActionZeroValue,
GA in 1.34: a preStop sleep of 0 s is valid; relaxed environment variable names, GA in 1.34).

Entry point: `validate_pod(meta, spec, claim_templates=())` returns a list of error strings in
the API server's `field.path: message` form (empty when the pod would be admitted).

Defaulting runs before validation in the API server (pkg/apis/core/v1/defaults.go), so the
defaults the rules depend on are applied here the same way: terminationGracePeriodSeconds 30
(SetDefaults_PodSpec), probe successThreshold 1 (SetDefaults_Probe), httpGet scheme HTTP and
path "/" (SetDefaults_HTTPGetAction), container port protocol TCP (SetDefaults_ContainerPort).
"""

from __future__ import annotations

import re
from typing import Any

# SetDefaults_PodSpec: DefaultTerminationGracePeriodSeconds.
DEFAULT_GRACE = 30

# validation.IsDNS1123Label (k8s.io/apimachinery/pkg/util/validation): container and volume names.
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# validation.IsValidPortName: IANA_SVC_NAME, at most 15 characters.
_PORT_NAME_CHARS = re.compile(r"^[-a-z0-9]+$")
_HAS_LETTER = re.compile(r"[a-z]")
# validation.IsHTTPHeaderName: a token of RFC 7230.
_HTTP_HEADER_NAME = re.compile(r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")

# validEnvDownwardAPIFieldPathExpressions.
ENV_FIELD_PATHS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)
_SUBSCRIPTED_FIELD = re.compile(r"^metadata\.(labels|annotations)\['[^']+'\]$")
# validContainerResourceFieldPathExpressions (+ the hugepages prefixes).
ENV_RESOURCE_FIELDS = frozenset(
    {
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
    }
)

PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})  # supportedPortProtocols
HTTP_SCHEMES = frozenset({"HTTP", "HTTPS"})  # supportedHTTPSchemes
PULL_POLICIES = frozenset({"Always", "IfNotPresent", "Never"})  # supportedPullPolicies

# allowedEphemeralContainerFields: everything else is forbidden on an ephemeral container; these
# are the fields of the list that matter to a mutating webhook.
EPHEMERAL_FORBIDDEN = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources", "resizePolicy", "restartPolicy")


def _is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def is_valid_port_name(name: str) -> list[str]:
    """validation.IsValidPortName."""
    errs = []
    if len(name) < 1 or len(name) > 15:
        errs.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    if not _HAS_LETTER.search(name):
        errs.append("must contain at least one letter (a-z)")
    return errs


def is_valid_port_num(port: Any) -> bool:
    """validation.IsValidPortNum: 1-65535."""
    return isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535


def validate_port_num_or_name(port: Any, path: str) -> list[str]:
    """ValidatePortNumOrName (an IntOrString: a number, or a port name)."""
    if isinstance(port, bool) or port is None:
        return [f"{path}: Invalid value: {port!r}: must be a port number or name"]
    if isinstance(port, int):
        return [] if is_valid_port_num(port) else [f"{path}: Invalid value: {port}: must be between 1 and 65535, inclusive"]
    return [f"{path}: Invalid value: {port!r}: {m}" for m in is_valid_port_name(str(port))]


def _is_env_var_name_relaxed(name: str) -> bool:
    """validation.IsRelaxedEnvVarName: printable ASCII except '=' (default since 1.34)."""
    return bool(name) and "=" not in name and all(32 <= ord(ch) <= 126 for ch in name)


# ---------------------------------------------------------------------------------------------
# Handlers, probes, lifecycle
# ---------------------------------------------------------------------------------------------


def validate_sleep_action(sleep: dict[str, Any], grace: int | None, path: str) -> list[str]:
    """validateSleepAction with AllowPodLifecycleSleepActionZeroValue (on by default since 1.33,
    GA 1.34): seconds must be >= 0 and <= the pod's terminationGracePeriodSeconds (defaulted to 30
    before validation runs)."""
    seconds = sleep.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        return [f"{path}.seconds: Required value"]
    if grace is not None and (seconds < 0 or seconds > grace):
        return [
            f"{path}: Invalid value: {seconds}: must be non-negative and less than "
            f"terminationGracePeriodSeconds ({grace})"
        ]
    return []


def validate_http_get_action(http: dict[str, Any], path: str) -> list[str]:
    """validateHTTPGetAction (after SetDefaults_HTTPGetAction: path "/", scheme HTTP)."""
    errs = validate_port_num_or_name(http.get("port"), f"{path}.port")
    scheme = http.get("scheme", "HTTP")
    if scheme not in HTTP_SCHEMES:
        errs.append(f'{path}.scheme: Unsupported value: "{scheme}": supported values: "HTTP", "HTTPS"')
    for header in http.get("httpHeaders") or []:
        if not _HTTP_HEADER_NAME.match(str(header.get("name", ""))):
            errs.append(f"{path}.httpHeaders: Invalid value: {header.get('name')!r}: a valid HTTP header must consist of alphanumeric characters or '-'")
    return errs


def validate_handler(handler: dict[str, Any], grace: int | None, path: str, *, kinds: tuple[str, ...]) -> list[str]:
    """validateHandler: exactly one handler type. `kinds` are the handler members the API type
    has: a ProbeHandler (handlerFromProbe) has exec/httpGet/tcpSocket/grpc, a LifecycleHandler
    (handlerFromLifecycle) exec/httpGet/tcpSocket/sleep."""
    errs: list[str] = []
    present = [k for k in ("exec", "httpGet", "tcpSocket", "grpc", "sleep") if handler.get(k) is not None]
    for k in present:
        if k not in kinds:
            errs.append(f"{path}.{k}: Forbidden: not a member of this handler type")
    present = [k for k in present if k in kinds]
    if not present:
        return errs + [f"{path}: Required value: must specify a handler type"]
    for extra in present[1:]:
        errs.append(f"{path}.{extra}: Forbidden: may not specify more than 1 handler type")
    first = present[0]
    value = handler[first]
    if first == "exec":
        # validateExecAction
        if not value.get("command"):
            errs.append(f"{path}.exec.command: Required value")
    elif first == "httpGet":
        errs += validate_http_get_action(value, f"{path}.httpGet")
    elif first == "tcpSocket":
        # validateTCPSocketAction
        errs += validate_port_num_or_name(value.get("port"), f"{path}.tcpSocket.port")
    elif first == "grpc":
        # validateGRPCAction: a port number only.
        port = value.get("port")
        if not is_valid_port_num(port):
            errs.append(f"{path}.grpc.port: Invalid value: {port!r}: must be between 1 and 65535, inclusive")
    elif first == "sleep":
        errs += validate_sleep_action(value, grace, f"{path}.sleep")
    return errs


PROBE_KINDS = ("exec", "httpGet", "tcpSocket", "grpc")
LIFECYCLE_KINDS = ("exec", "httpGet", "tcpSocket", "sleep")


def validate_probe(probe: dict[str, Any], grace: int | None, path: str) -> list[str]:
    """validateProbe: one handler, non-negative timings, probe-level grace > 0 when set."""
    errs = validate_handler(probe, grace, path, kinds=PROBE_KINDS)
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        value = probe.get(field)
        if value is not None and value < 0:
            errs.append(f"{path}.{field}: Invalid value: {value}: must be greater than or equal to 0")
    tgps = probe.get("terminationGracePeriodSeconds")
    if tgps is not None and tgps <= 0:
        errs.append(f"{path}.terminationGracePeriodSeconds: Invalid value: {tgps}: must be greater than 0")
    return errs


def validate_liveness_probe(probe: dict[str, Any] | None, grace: int | None, path: str) -> list[str]:
    """validateLivenessProbe: successThreshold must be 1 (defaulted to 1 by SetDefaults_Probe)."""
    if probe is None:
        return []
    errs = validate_probe(probe, grace, path)
    if probe.get("successThreshold", 1) != 1:
        errs.append(f"{path}.successThreshold: Invalid value: {probe['successThreshold']}: must be 1")
    return errs


def validate_startup_probe(probe: dict[str, Any] | None, grace: int | None, path: str) -> list[str]:
    """validateStartupProbe: successThreshold must be 1."""
    return validate_liveness_probe(probe, grace, path)


def validate_readiness_probe(probe: dict[str, Any] | None, grace: int | None, path: str) -> list[str]:
    """validateReadinessProbe: any successThreshold, but no probe-level terminationGracePeriodSeconds."""
    if probe is None:
        return []
    errs = validate_probe(probe, grace, path)
    if probe.get("terminationGracePeriodSeconds") is not None:
        errs.append(f"{path}.terminationGracePeriodSeconds: Invalid value: must not be set for readinessProbes")
    return errs


def validate_lifecycle(lifecycle: dict[str, Any], grace: int | None, path: str) -> list[str]:
    """validateLifecycle: each of postStart/preStop present is one valid LifecycleHandler."""
    errs: list[str] = []
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            errs += validate_handler(lifecycle[hook], grace, f"{path}.{hook}", kinds=LIFECYCLE_KINDS)
    return errs


# ---------------------------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------------------------


def validate_container_ports(ports: list[dict[str, Any]], path: str) -> list[str]:
    """validateContainerPorts: valid and unique names, ports in range, a supported protocol."""
    errs: list[str] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"{path}[{i}]"
        name = port.get("name")
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs += [f"{p}.name: Invalid value: {name!r}: {m}" for m in msgs]
            elif name in names:
                errs.append(f"{p}.name: Duplicate value: {name!r}")
            else:
                names.add(name)
        cp = port.get("containerPort")
        if not cp:
            errs.append(f"{p}.containerPort: Required value")
        elif not is_valid_port_num(cp):
            errs.append(f"{p}.containerPort: Invalid value: {cp}: must be between 1 and 65535, inclusive")
        hp = port.get("hostPort", 0)
        if hp and not is_valid_port_num(hp):
            errs.append(f"{p}.hostPort: Invalid value: {hp}: must be between 1 and 65535, inclusive")
        protocol = port.get("protocol", "TCP")  # SetDefaults_ContainerPort
        if protocol not in PROTOCOLS:
            errs.append(f'{p}.protocol: Unsupported value: "{protocol}"')
    return errs


def validate_env(env: list[dict[str, Any]], path: str) -> list[str]:
    """ValidateEnv + validateEnvVarValueFrom. Duplicate names are *not* an API error (the last one
    wins); see `added_duplicate_env` for what podgrace must not do."""
    errs: list[str] = []
    for i, var in enumerate(env):
        p = f"{path}[{i}]"
        name = var.get("name", "")
        if not name:
            errs.append(f"{p}.name: Required value")
        elif not _is_env_var_name_relaxed(name):
            errs.append(f"{p}.name: Invalid value: {name!r}: a valid environment variable name must consist only of printable ASCII characters other than '='")
        value_from = var.get("valueFrom")
        if value_from is None:
            continue
        sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef") if value_from.get(k) is not None]
        if not sources:
            errs.append(f"{p}.valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
        elif var.get("value"):
            errs.append(f"{p}.valueFrom: Invalid value: \"\": may not be specified when `value` is not empty")
        elif len(sources) > 1:
            errs.append(f"{p}.valueFrom: Invalid value: \"\": may not have more than one field specified at a time")
        field_ref = value_from.get("fieldRef")
        if field_ref is not None:
            # validateObjectFieldSelector (apiVersion is defaulted to v1 by SetDefaults_ObjectFieldSelector).
            fp = field_ref.get("fieldPath", "")
            if not fp:
                errs.append(f"{p}.valueFrom.fieldRef.fieldPath: Required value")
            elif fp not in ENV_FIELD_PATHS and not _SUBSCRIPTED_FIELD.match(fp):
                errs.append(f'{p}.valueFrom.fieldRef.fieldPath: Unsupported value: "{fp}"')
        resource_ref = value_from.get("resourceFieldRef")
        if resource_ref is not None:
            res = resource_ref.get("resource", "")
            if res not in ENV_RESOURCE_FIELDS and not res.startswith(("requests.hugepages-", "limits.hugepages-")):
                errs.append(f'{p}.valueFrom.resourceFieldRef.resource: Unsupported value: "{res}"')
        for kind in ("configMapKeyRef", "secretKeyRef"):
            ref = value_from.get(kind)
            if ref is not None and not ref.get("key"):
                errs.append(f"{p}.valueFrom.{kind}.key: Required value")
    return errs


def validate_volume_mounts(mounts: list[dict[str, Any]], volumes: set[str], path: str) -> list[str]:
    """ValidateVolumeMounts: each mount names an existing volume; mountPath required and unique
    within the container; subPath a relative path without '..' (validateLocalDescendingPath)."""
    errs: list[str] = []
    seen: set[str] = set()
    for i, mount in enumerate(mounts):
        p = f"{path}[{i}]"
        name = mount.get("name", "")
        if not name:
            errs.append(f"{p}.name: Required value")
        if name not in volumes:
            errs.append(f'{p}.name: Not found: "{name}"')
        mount_path = mount.get("mountPath", "")
        if not mount_path:
            errs.append(f"{p}.mountPath: Required value")
        if mount_path in seen:
            errs.append(f'{p}.mountPath: Invalid value: "{mount_path}": must be unique')
        seen.add(mount_path)
        sub = mount.get("subPath", "")
        if sub and (sub.startswith("/") or ".." in sub.split("/")):
            errs.append(f'{p}.subPath: Invalid value: "{sub}": must be a relative path without \'..\'')
    return errs


def validate_container_common(c: dict[str, Any], volumes: set[str], path: str) -> list[str]:
    """validateContainerCommon: name, image, ports, env, mounts, pull policy."""
    errs: list[str] = []
    name = c.get("name", "")
    if not name:
        errs.append(f"{path}.name: Required value")
    elif not _is_dns1123_label(name):
        errs.append(f'{path}.name: Invalid value: "{name}": a lowercase RFC 1123 label of at most 63 characters')
    if not c.get("image"):
        errs.append(f"{path}.image: Required value")
    errs += validate_container_ports(c.get("ports") or [], f"{path}.ports")
    errs += validate_env(c.get("env") or [], f"{path}.env")
    errs += validate_volume_mounts(c.get("volumeMounts") or [], volumes, f"{path}.volumeMounts")
    pull = c.get("imagePullPolicy")
    if pull is not None and pull not in PULL_POLICIES:
        errs.append(f'{path}.imagePullPolicy: Unsupported value: "{pull}"')
    return errs


def check_host_port_conflicts(containers: list[dict[str, Any]], path: str) -> list[str]:
    """checkHostPortConflicts / AccumulateUniqueHostPorts: protocol/hostIP/hostPort unique."""
    errs: list[str] = []
    seen: set[str] = set()
    for ci, c in enumerate(containers):
        for pi, port in enumerate(c.get("ports") or []):
            hp = port.get("hostPort", 0)
            if not hp:
                continue
            key = f"{port.get('protocol', 'TCP')}/{port.get('hostIP', '')}/{hp}"
            if key in seen:
                errs.append(f"{path}[{ci}].ports[{pi}].hostPort: Duplicate value: {key!r}")
            seen.add(key)
    return errs


def validate_containers(containers: list[dict[str, Any]], volumes: set[str], grace: int | None, path: str) -> list[str]:
    """validateContainers: at least one; names unique; lifecycle and all three probes allowed;
    restartPolicy forbidden on regular containers; host ports unique across them."""
    if not containers:
        return [f"{path}: Required value"]
    errs: list[str] = []
    names: set[str] = set()
    for i, c in enumerate(containers):
        p = f"{path}[{i}]"
        errs += validate_container_common(c, volumes, p)
        if c.get("name") in names:
            errs.append(f'{p}.name: Duplicate value: "{c.get("name")}"')
        names.add(c.get("name"))
        if c.get("lifecycle") is not None:
            errs += validate_lifecycle(c["lifecycle"], grace, f"{p}.lifecycle")
        errs += validate_liveness_probe(c.get("livenessProbe"), grace, f"{p}.livenessProbe")
        errs += validate_readiness_probe(c.get("readinessProbe"), grace, f"{p}.readinessProbe")
        errs += validate_startup_probe(c.get("startupProbe"), grace, f"{p}.startupProbe")
        if c.get("restartPolicy") is not None:
            errs.append(f"{p}.restartPolicy: Forbidden: may not be set for non-init containers")
    errs += check_host_port_conflicts(containers, path)
    return errs


def validate_init_containers(inits: list[dict[str, Any]], regular: list[dict[str, Any]], volumes: set[str], grace: int | None, path: str) -> list[str]:
    """validateInitContainers: names unique across regular and init containers; restartPolicy
    only `Always` (a native sidecar, validateInitContainerRestartPolicy); a sidecar's lifecycle
    and probes are validated like a regular container's, while a plain init container may set
    none of lifecycle, livenessProbe, readinessProbe, startupProbe."""
    errs: list[str] = []
    names = {c.get("name") for c in regular}
    for i, c in enumerate(inits):
        p = f"{path}[{i}]"
        errs += validate_container_common(c, volumes, p)
        restart = c.get("restartPolicy")
        if restart is not None and restart != "Always":
            errs.append(f'{p}.restartPolicy: Unsupported value: "{restart}": supported values: "Always"')
        if c.get("name") in names:
            errs.append(f'{p}.name: Duplicate value: "{c.get("name")}"')
        elif c.get("name"):
            names.add(c.get("name"))
        # Init containers run one by one: host ports are checked per container.
        errs += check_host_port_conflicts([c], path)
        if restart == "Always":
            if c.get("lifecycle") is not None:
                errs += validate_lifecycle(c["lifecycle"], grace, f"{p}.lifecycle")
            errs += validate_liveness_probe(c.get("livenessProbe"), grace, f"{p}.livenessProbe")
            errs += validate_readiness_probe(c.get("readinessProbe"), grace, f"{p}.readinessProbe")
            errs += validate_startup_probe(c.get("startupProbe"), grace, f"{p}.startupProbe")
        else:
            for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(field) is not None:
                    errs.append(f"{p}.{field}: Forbidden: may not be set for init containers without restartPolicy=Always")
    return errs


def validate_ephemeral_containers(ephemeral: list[dict[str, Any]], containers: list[dict[str, Any]], inits: list[dict[str, Any]], volumes: set[str], path: str) -> list[str]:
    """validateEphemeralContainers: names unique across all three lists, the target container
    exists, and the fields outside allowedEphemeralContainerFields are forbidden."""
    errs: list[str] = []
    others = {c.get("name") for c in containers} | {c.get("name") for c in inits}
    names = set(others)
    for i, c in enumerate(ephemeral):
        p = f"{path}[{i}]"
        errs += validate_container_common(c, volumes, p)
        if c.get("name") in names:
            errs.append(f'{p}.name: Duplicate value: "{c.get("name")}"')
        names.add(c.get("name"))
        target = c.get("targetContainerName")
        if target and target not in others:
            errs.append(f'{p}.targetContainerName: Not found: "{target}"')
        for field in EPHEMERAL_FORBIDDEN:
            if c.get(field):
                errs.append(f"{p}.{field}: Forbidden: cannot be set for an Ephemeral Container")
    return errs


def validate_volumes(volumes: list[dict[str, Any]], path: str) -> tuple[set[str], list[str]]:
    """ValidateVolumes: names are DNS labels and unique; exactly one source each."""
    errs: list[str] = []
    names: set[str] = set()
    for i, vol in enumerate(volumes):
        p = f"{path}[{i}]"
        name = vol.get("name", "")
        if not name:
            errs.append(f"{p}.name: Required value")
        elif not _is_dns1123_label(name):
            errs.append(f'{p}.name: Invalid value: "{name}": a lowercase RFC 1123 label')
        elif name in names:
            errs.append(f'{p}.name: Duplicate value: "{name}"')
        names.add(name)
        sources = [k for k in vol if k != "name"]
        if len(sources) > 1:
            errs.append(f"{p}: Forbidden: may not specify more than 1 volume type")
        # A volume without a source is defaulted to an emptyDir (SetDefaults_Volume).
    return names, errs


# ---------------------------------------------------------------------------------------------
# Runtime rules of the kubelet that the API server does not check
# ---------------------------------------------------------------------------------------------


def unresolvable_named_ports(c: dict[str, Any], path: str) -> list[str]:
    """A probe or hook that names a port the container does not declare can never run: the
    kubelet resolves a named port in the container's own ports only (pkg/kubelet/prober/prober.go
    via probe.ResolveContainerPort for probes, resolvePort in pkg/kubelet/lifecycle/handlers.go for
    hooks) and fails with "couldn't find port". The API server accepts such a pod."""
    names = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
    errs: list[str] = []
    handlers = [(f"{path}.{k}", c.get(k)) for k in ("livenessProbe", "readinessProbe", "startupProbe")]
    lifecycle = c.get("lifecycle") or {}
    handlers += [(f"{path}.lifecycle.{k}", lifecycle.get(k)) for k in ("postStart", "preStop")]
    for hpath, handler in handlers:
        if not handler:
            continue
        for kind in ("httpGet", "tcpSocket"):
            action = handler.get(kind)
            if not action:
                continue
            port = action.get("port")
            if isinstance(port, str) and not port.isdigit() and port not in names:
                errs.append(f'{hpath}.{kind}.port: Not found: named port "{port}" is not declared by this container')
    return errs


# ---------------------------------------------------------------------------------------------
# The pod
# ---------------------------------------------------------------------------------------------


def grace_period(spec: dict[str, Any]) -> int:
    """The pod's terminationGracePeriodSeconds after defaulting (SetDefaults_PodSpec)."""
    value = spec.get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE if value is None else value


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(value: Any) -> float:
    """resource.ParseQuantity's value, as a float (enough to compare requests)."""
    found = _QUANTITY.match(str(value).strip())
    if not found:
        raise ValueError(f"not a quantity: {value!r}")
    return float(found.group(1)) * _SUFFIX[found.group(2)]


def _aggregate_requests(spec: dict[str, Any]) -> dict[str, float]:
    """resourcehelper.AggregateContainerRequests: the regular containers and the native sidecars
    add up; a plain init container runs alone beside the sidecars started before it."""
    def requests(c: dict[str, Any]) -> dict[str, float]:
        return {k: quantity(v) for k, v in ((c.get("resources") or {}).get("requests") or {}).items()}

    total: dict[str, float] = {}
    for c in spec.get("containers") or []:
        for k, v in requests(c).items():
            total[k] = total.get(k, 0) + v
    sidecars: dict[str, float] = {}
    peak: dict[str, float] = {}
    for c in spec.get("initContainers") or []:
        own = requests(c)
        if c.get("restartPolicy") == "Always":
            for k, v in own.items():
                sidecars[k] = sidecars.get(k, 0) + v
                total[k] = total.get(k, 0) + v
        else:
            for k, v in own.items():
                peak[k] = max(peak.get(k, 0), v + sidecars.get(k, 0))
    return {k: max(total.get(k, 0), peak.get(k, 0)) for k in total.keys() | peak.keys()}


def validate_pod_resources(spec: dict[str, Any]) -> list[str]:
    """validatePodResourceConsistency (PodLevelResources, beta and on by default since 1.34):
    pod-level requests cover the containers' aggregate requests, and no regular container's
    limit exceeds the pod-level limit."""
    pod = spec.get("resources") or {}
    errs: list[str] = []
    for name, total in sorted(_aggregate_requests(spec).items()):
        if name in (pod.get("requests") or {}) and total > quantity(pod["requests"][name]):
            errs.append(f"spec.resources.requests[{name}]: Invalid value: \"{pod['requests'][name]}\": must be greater than or equal to aggregate container requests")
    for i, c in enumerate(spec.get("containers") or []):
        for name, limit in ((c.get("resources") or {}).get("limits") or {}).items():
            if name in (pod.get("limits") or {}) and quantity(limit) > quantity(pod["limits"][name]):
                errs.append(f"spec.containers[{i}].resources.limits[{name}]: Invalid value: \"{limit}\": must be less than or equal to pod limits")
    return errs


def validate_pod(meta: dict[str, Any], spec: dict[str, Any], claim_templates: tuple[str, ...] | list[str] = ()) -> list[str]:
    """ValidatePodSpec on a pod (template) after defaulting, plus the kubelet's named-port rule.

    `claim_templates` are a StatefulSet's volumeClaimTemplates names: the StatefulSet controller
    adds each as a persistentVolumeClaim volume of the same name to the pods it creates
    (pkg/controller/statefulset/stateful_set_utils.go, updateStorage), so mounts may use them.
    """
    errs: list[str] = []
    grace = grace_period(spec)
    # A negative grace period is not rejected any more but rewritten to 1 with a warning
    # (pkg/api/pod/warnings.go, pkg/registry/core/pod/strategy.go): a webhook must never write one.
    if grace < 0:
        errs.append(f"spec.terminationGracePeriodSeconds: Invalid value: {grace}: must be >= 0")
    volume_names, verrs = validate_volumes(spec.get("volumes") or [], "spec.volumes")
    errs += verrs
    volume_names |= set(claim_templates)
    containers = spec.get("containers") or []
    inits = spec.get("initContainers") or []
    ephemeral = spec.get("ephemeralContainers") or []
    errs += validate_containers(containers, volume_names, grace, "spec.containers")
    errs += validate_init_containers(inits, containers, volume_names, grace, "spec.initContainers")
    errs += validate_ephemeral_containers(ephemeral, containers, inits, volume_names, "spec.ephemeralContainers")
    errs += validate_pod_resources(spec)
    restart = spec.get("restartPolicy", "Always")
    if restart not in ("Always", "OnFailure", "Never"):
        errs.append(f'spec.restartPolicy: Unsupported value: "{restart}"')
    for i, c in enumerate(containers):
        errs += unresolvable_named_ports(c, f"spec.containers[{i}]")
    for i, c in enumerate(inits):
        if c.get("restartPolicy") == "Always":
            errs += unresolvable_named_ports(c, f"spec.initContainers[{i}]")
    return errs


def added_duplicate_env(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Env names that appear more than once in a container after mutation but did not before.
    The API accepts duplicates (the last wins), which is why a webhook that adds `POD_IP` next to
    the user's own silently overrides it: podgrace promises never to duplicate a variable."""
    errs: list[str] = []
    for field in ("containers", "initContainers"):
        old = {c.get("name"): c for c in before.get(field) or []}
        for c in after.get(field) or []:
            names = [e.get("name") for e in c.get("env") or []]
            old_names = [e.get("name") for e in (old.get(c.get("name")) or {}).get("env") or []]
            for name in sorted(set(names)):
                if names.count(name) > 1 and old_names.count(name) < names.count(name):
                    errs.append(f'spec.{field}[name={c.get("name")}].env: "{name}" defined {names.count(name)} times')
    return errs
