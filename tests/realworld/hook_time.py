"""How long a user's own preStop hook will run, where that can be read exactly from the manifest.

Used by the grace-period acceptance test: a kept hook runs in full before SIGTERM, so the grace
period must cover it plus the app's shutdown. Only hooks whose duration is certain are estimated
(a native sleep; `sleep N`; `curl -m/--max-time N`; `timeout N cmd`; `kill`/`echo`, instant; and
`&&`, `;` or newline sequences of those). Anything else (a script, an HTTP call, a custom binary)
returns None: the test then has no independent figure and relies on podgrace's own annotation.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "busybox"})
SLEEPS = frozenset({"sleep"})
INSTANT = frozenset({"kill", "echo", "true", ":"})
_DURATION = re.compile(r"^(\d+)(s?)$")


def _seconds(word: str) -> int | None:
    m = _DURATION.match(word)
    return int(m.group(1)) if m else None


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _simple_command(argv: list[str]) -> int | None:
    """Seconds one simple command takes at most, or None when unknown."""
    if not argv:
        return 0
    cmd = _base(argv[0])
    if cmd in SLEEPS and len(argv) == 2:
        return _seconds(argv[1])
    if cmd in INSTANT:
        return 0
    if cmd == "timeout":
        # `timeout [-s SIG] [-k K] N cmd...`: at most N (plus K after the signal).
        rest = [a for a in argv[1:] if not a.startswith("-")]
        return _seconds(rest[0]) if rest else None
    if cmd == "curl":
        for i, a in enumerate(argv):
            if a in ("-m", "--max-time") and i + 1 < len(argv):
                return _seconds(argv[i + 1])
            if a.startswith("--max-time="):
                return _seconds(a.split("=", 1)[1])
        return None
    return None


def script_seconds(script: str) -> int | None:
    """A `sh -c` script: the sum of its commands separated by `&&`, `||`, `;` or newlines."""
    total = 0
    for part in re.split(r"&&|\|\||;|\n", script):
        part = part.strip()
        if not part:
            continue
        try:
            argv = shlex.split(part)
        except ValueError:
            return None
        seconds = _simple_command(argv)
        if seconds is None:
            return None
        total += seconds
    return total


def hook_seconds(handler: dict[str, Any] | None) -> int | None:
    """Seconds a LifecycleHandler runs at most, when they can be read exactly."""
    if not handler:
        return 0
    if handler.get("sleep") is not None:
        return handler["sleep"].get("seconds")
    argv = (handler.get("exec") or {}).get("command")
    if not argv:
        return None
    if _base(argv[0]) in SHELLS and len(argv) >= 3 and argv[1] == "-c":
        return script_seconds(argv[2])
    return _simple_command(list(argv))
