//! The `nacos` preStop as a `/bin/sh -c` script: log in (when credentials are configured), mark
//! the instance `enabled=false`, then sleep while client caches refresh.
//!
//! Every value from the policy is URL-encoded (so it contains no shell metacharacters) and the
//! static parts are single-quoted; only `$POD_IP`, the credentials and the token are expanded,
//! always inside double quotes. Each call is bounded by curl's `--connect-timeout`/`-m`, and a
//! failure is reported on stderr without skipping the drain sleep: the script always sleeps, and
//! only then exits 1 if something failed, so that the kubelet records the output in a
//! FailedPreStopHook event without the hook having been cut short.

use std::fmt::Write;

use crate::engine::shell::{quote, url_encode};
use crate::policy::NacosAction;
use crate::protocols::nacos::{self, Instance};

use crate::protocols::nacos::{PASSWORD_ENV, USERNAME_ENV};

/// Writes the hook script.
pub fn script(action: &NacosAction, instance: &Instance, ip_env: &str, sleep: u32) -> String {
    let t = action.timeout;
    let curl = format!("curl -sS --connect-timeout {t} -m {t}");
    let mut s = String::new();
    let _ = writeln!(s, "ip=\"${{{ip_env}:-}}\"");
    s.push_str("token=\n");
    s.push_str("failed=0\n");
    s.push_str("if ! command -v curl >/dev/null 2>&1; then\n");
    s.push_str(
        "  echo 'podgrace: curl not found in the image: cannot deregister from nacos' >&2; failed=1\n",
    );
    s.push_str("elif [ -z \"$ip\" ]; then\n");
    let _ = writeln!(
        s,
        "  echo {} >&2; failed=1",
        quote(&format!(
            "podgrace: {ip_env} is empty: cannot deregister from nacos"
        ))
    );
    s.push_str("else\n");
    if action.auth.is_some() {
        let login_url = quote(&format!(
            "{}{}",
            action.server,
            nacos::login_path(action.api)
        ));
        let _ = writeln!(s, "  if [ -n \"${{{USERNAME_ENV}:-}}\" ]; then");
        let _ = writeln!(
            s,
            "    resp=$({curl} -X POST --data-urlencode \"username=${USERNAME_ENV}\" --data-urlencode \"password=${{{PASSWORD_ENV}:-}}\" {login_url} 2>&1)"
        );
        s.push_str("    case \"$resp\" in\n");
        s.push_str("      *'\"accessToken\":\"'*) token=${resp#*'\"accessToken\":\"'}; token=${token%%'\"'*} ;;\n");
        s.push_str("      *) echo \"podgrace: nacos login failed: $resp\" >&2; failed=1 ;;\n");
        s.push_str("    esac\n");
        s.push_str("  fi\n");
    }
    // Only "$ip" is expanded: the encoded parameters before and after it are quoted literals.
    let (mut before, mut after, mut seen_ip) = (String::new(), String::new(), false);
    for (k, v) in nacos::update_params(instance, "") {
        if k == "ip" {
            seen_ip = true;
        } else if seen_ip {
            let _ = write!(after, "&{k}={}", url_encode(&v));
        } else {
            let _ = write!(before, "{k}={}&", url_encode(&v));
        }
    }
    let encoded = format!("{before}ip=");
    let url = format!("{}{}", action.server, nacos::update_path(action.api));
    let token_query = "${token:+?accessToken=$token}";
    let status = "-w ' HTTP_STATUS=%{http_code}'";
    if nacos::params_in_body(action.api) {
        let _ = writeln!(
            s,
            "  out=$({curl} {status} -X PUT --data {}\"$ip\"{} {}\"{token_query}\" 2>&1)",
            quote(&encoded),
            quote(&after),
            quote(&url),
        );
        s.push_str("  case \"$out\" in\n");
        s.push_str("    *'\"code\":0'*' HTTP_STATUS=200') echo 'podgrace: nacos instance disabled' >&2 ;;\n");
    } else {
        let _ = writeln!(
            s,
            "  out=$({curl} {status} -X PUT {}\"$ip\"{}\"${{token:+&accessToken=$token}}\" 2>&1)",
            quote(&format!("{url}?{encoded}")),
            quote(&after),
        );
        s.push_str("  case \"$out\" in\n");
        s.push_str("    'ok HTTP_STATUS=200') echo 'podgrace: nacos instance disabled' >&2 ;;\n");
    }
    s.push_str("    *) echo \"podgrace: nacos deregistration failed: $out\" >&2; failed=1 ;;\n");
    s.push_str("  esac\n");
    s.push_str("fi\n");
    if sleep > 0 {
        let _ = writeln!(s, "sleep {sleep}");
    }
    s.push_str("exit \"$failed\"\n");
    s
}
