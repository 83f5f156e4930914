#!/bin/sh
# Time and peak memory of `podgrace mutate -o diff|patch|pod` and `podgrace audit` on one
# manifest file of about 1, 4 and 20 MB (Deployments as bench/audit_manifests.py shapes them, all
# in one stream), for bench/results/mutate-large.md. Each run is bounded to
# 120 s; a run killed by the bound prints "killed".
#
# Usage: bench/mutate_large.sh PODGRACE [BASELINE_PODGRACE]
# (two binaries: the figures of both, from the same run, side by side). Needs python3 and
# /usr/bin/time (GNU).
set -eu
new=$1
base=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
here=$(dirname "$0")

# Deployments per size: about 1.9 kB each.
for spec in 1:530 4:2120 20:10600; do
  mb=${spec%%:*}
  n=${spec#*:}
  python3 "$here/audit_manifests.py" "$work/dir-$mb" "$n" 100 "$n" >/dev/null
  # One stream: the files' documents joined by `---`.
  first=1
  for f in "$work/dir-$mb"/*.yaml; do
    if [ $first -eq 0 ]; then echo "---"; fi
    cat "$f"
    first=0
  done > "$work/$mb.yaml"
done

run() { # binary label args...
  bin=$1; shift
  label=$1; shift
  full=$(/usr/bin/time -f '%e s, %M kB' timeout 120 "$bin" "$@" 2>&1 >/dev/null || true)
  out=$(printf '%s\n' "$full" | tail -1)
  case "$full" in
    *"status 124"*) out="killed after 120 s" ;;
  esac
  printf '%-9s %-24s %s\n' "$label" "$*" "$out" | sed "s|$work/||"
}

for mb in 1 4 20; do
  f="$work/$mb.yaml"
  printf '%s MB (%s bytes)\n' "$mb" "$(wc -c < "$f")"
  for args in "mutate -f $f -o diff" "mutate -f $f -o patch" "mutate -f $f -o pod" "audit -f $f -o json"; do
    # shellcheck disable=SC2086
    run "$new" new $args
    # shellcheck disable=SC2086
    if [ -n "$base" ]; then run "$base" baseline $args; fi
  done
done
