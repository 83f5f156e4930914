//! POSIX shell quoting for the hooks that podgrace writes as `/bin/sh -c` scripts.

/// Quotes `s` as one shell word: single quotes, with embedded `'` written as `'\''`. Nothing
/// inside single quotes is expanded, so any policy value is safe.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Percent-encodes a URL query component (RFC 3986 unreserved characters pass through). The
/// result contains no shell metacharacters either.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `program` (a path or a name) is a POSIX-family shell.
pub fn is_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    matches!(
        name,
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh"
    )
}

/// The script of a `sh -c SCRIPT` argv: the first operand after the options, when `-c` is one
/// of them (flags may be combined, as in `-ec`, or follow it, as in `-c -e`; `--` ends them;
/// `-o NAME` takes a value).
pub fn dash_c_script<S: AsRef<str>>(argv: &[S]) -> Option<&str> {
    let (program, rest) = argv.split_first()?;
    if !is_shell(program.as_ref()) {
        return None;
    }
    let mut dash_c = false;
    let mut words = rest.iter().map(AsRef::as_ref);
    while let Some(word) = words.next() {
        match word {
            "--" => break,
            "-o" | "+o" | "-O" | "+O" => {
                words.next();
            }
            // bash's long options (`--login`, `--norc`).
            long if long.starts_with("--") => {}
            flags if flags.len() > 1 && (flags.starts_with('-') || flags.starts_with('+')) => {
                dash_c |= flags.starts_with('-') && flags.contains('c');
            }
            operand => return dash_c.then_some(operand),
        }
    }
    if dash_c { words.next() } else { None }
}

/// A simple command without the variable assignments it opens with (`OPTS="-Xmx1g" exec app`
/// → `exec app`): POSIX lets any command start with `NAME=value` words, quoted values included.
/// A command of assignments only, or one whose quotes do not close, is returned whole.
pub fn after_assignments(command: &str) -> &str {
    let mut rest = command.trim_start();
    loop {
        let name = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(rest.len());
        let starts_name = rest.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_');
        if !starts_name || !rest[name..].starts_with('=') {
            return rest;
        }
        let value = &rest[name + 1..];
        let (mut quote, mut escaped, mut end) = (None, false, value.len());
        for (i, ch) in value.char_indices() {
            match (quote, ch) {
                _ if escaped => escaped = false,
                (Some('\''), '\'') => quote = None,
                (Some('\''), _) => {}
                (_, '\\') => escaped = true,
                (Some(_), '"') => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(ch),
                (None, ch) if ch.is_whitespace() => {
                    end = i;
                    break;
                }
                (None, _) => {}
            }
        }
        let next = value[end..].trim_start();
        if quote.is_some() || next.is_empty() {
            return command.trim_start();
        }
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoted_words_survive_a_real_shell_unchanged() {
        for word in [
            "plain",
            "it's",
            "$(rm -rf /)",
            "a b\tc\nd",
            "`x`",
            "\\",
            "\"q\"",
            "",
            "*",
        ] {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(word)))
                .output()
                .expect("run /bin/sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), word, "{word:?}");
        }
    }

    #[test]
    fn the_script_is_the_first_operand_after_the_options() {
        let script = |argv: &[&str]| dash_c_script(argv).map(str::to_owned);
        let sleep = Some("sleep 40".to_owned());
        assert_eq!(script(&["/bin/sh", "-c", "sleep 40"]), sleep);
        assert_eq!(script(&["sh", "-ec", "sleep 40"]), sleep);
        assert_eq!(script(&["/bin/sh", "-c", "--", "sleep 40"]), sleep);
        assert_eq!(script(&["bash", "--login", "-c", "-e", "sleep 40"]), sleep);
        assert_eq!(script(&["sh", "-o", "pipefail", "-c", "sleep 40"]), sleep);
        assert_eq!(script(&["sh", "-c"]), None);
        // A script file, not a `-c` string.
        assert_eq!(script(&["sh", "-e", "/hooks/stop.sh"]), None);
        assert_eq!(script(&["sleep", "-c", "40"]), None);
    }

    #[test]
    fn assignments_before_a_command_are_not_the_command() {
        assert_eq!(
            after_assignments(r#"OPTS="${OPTS} -Dx=1" exec bin/pulsar broker"#),
            "exec bin/pulsar broker"
        );
        assert_eq!(
            after_assignments("A=1 B='x y' C=a\\ b  exec app"),
            "exec app"
        );
        assert_eq!(after_assignments("exec app"), "exec app");
        assert_eq!(
            after_assignments("  java -Da=b -jar app.jar"),
            "java -Da=b -jar app.jar"
        );
        // Not assignments: a name must start with a letter or `_`, and be followed by `=`.
        assert_eq!(after_assignments("1A=2 exec app"), "1A=2 exec app");
        assert_eq!(after_assignments("--opt=1 exec app"), "--opt=1 exec app");
        // Only assignments, or a quote left open: the command as it is.
        assert_eq!(after_assignments("A=1 B=2"), "A=1 B=2");
        assert_eq!(
            after_assignments(r#"A="open exec app"#),
            r#"A="open exec app"#
        );
    }

    #[test]
    fn url_encoding_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(url_encode("DEFAULT_GROUP"), "DEFAULT_GROUP");
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
