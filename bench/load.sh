#!/usr/bin/env bash
# Load benchmark: podgrace against the floor server (bench/floor.rs: same axum + rustls stack,
# parses the review, answers a constant "allowed") in one run, over HTTPS keep-alive with the
# captured AdmissionReview as the body. Reports requests/s and p50/p99/p99.9 at fixed
# concurrency (saturation) and at a fixed rate (tail latency), server CPU per request, and RSS.
#
#   bench/load.sh                 # 5 rounds of 10 s per scenario and server (about 5 minutes,
#                                 # after a release build of up to 6 minutes)
#   DURATION=30s ROUNDS=7 bench/load.sh
#   KUBE_EXAMPLE=/path/to/admission_controller bench/load.sh    # a third server, see below
#   PODGRACE_BIN=/tmp/podgrace-old FLOOR_BIN=/tmp/floor-old bench/load.sh   # saved builds, no build
#   BASELINE_BIN=/tmp/podgrace-old bench/load.sh   # an earlier podgrace as a further server, in
#                                                  # the same run (before and after a change)
#
# The servers are measured alternately, ROUNDS times per scenario, and the median round is
# reported, with every round's ratio: on a shared 2-core machine single runs vary by 20 %.
#
# KUBE_EXAMPLE names a release build of kube-rs's `admission_controller` example, built outside
# this repository (never commit it):
#   git clone https://github.com/kube-rs/kube /work/kube-example && cd /work/kube-example &&
#   cargo build --release -p kube-examples --example admission_controller
# It listens on $ADMISSION_PRIVATE_IP:8443 (the port is fixed) with admission-controller-tls.crt
# and .key from its working directory: this script makes them with `podgrace certs` in a
# temporary directory and starts it there, as it is, logging as it does by default.
#
# CPU per request: the server's utime + stime from /proc/PID/stat before and after each run,
# divided by the responses that run received.
#
# Needs oha (installed with `cargo install oha --locked` if missing). Results: bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
RATE=${RATE:-2000}
KUBE_EXAMPLE=${KUBE_EXAMPLE:-}
BASELINE_BIN=${BASELINE_BIN:-}
OUT=bench/out
BODY=tests/fixtures/admission/pod-create-kubectl-apply.json
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.cpu

command -v oha >/dev/null 2>&1 || cargo install oha --locked
if [[ -z ${PODGRACE_BIN:-} || -z ${FLOOR_BIN:-} ]]; then
  cargo build --release --bin podgrace --example floor
fi
PODGRACE_BIN=${PODGRACE_BIN:-./target/release/podgrace}
FLOOR_BIN=${FLOOR_BIN:-./target/release/examples/floor}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
targets=(podgrace:18443 floor:19443)
if [[ -n $BASELINE_BIN ]]; then targets+=(baseline:17443); fi
if [[ -n $KUBE_EXAMPLE ]]; then targets+=(kube:8443); fi
for target in "${targets[@]}"; do
  if listening "${target##*:}"; then echo "port ${target##*:} is taken" >&2; exit 1; fi
done

pids=()
kube_dir=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $kube_dir ]]; then rm -rf "$kube_dir"; fi
}
trap cleanup EXIT
declare -A pid_of

"$PODGRACE_BIN" serve --standalone --listen 127.0.0.1:18443 --ca-out "$OUT/podgrace-ca.pem" \
  --cluster-policy tests/fixtures/policies/cluster.yaml >"$OUT/podgrace.log" 2>&1 &
pids+=($!); pid_of[podgrace]=$!
if [[ -n $BASELINE_BIN ]]; then
  "$BASELINE_BIN" serve --standalone --listen 127.0.0.1:17443 --ca-out "$OUT/baseline-ca.pem" \
    --cluster-policy tests/fixtures/policies/cluster.yaml >"$OUT/baseline.log" 2>&1 &
  pids+=($!); pid_of[baseline]=$!
fi
"$FLOOR_BIN" 127.0.0.1:19443 "$OUT/floor-ca.pem" >"$OUT/floor.log" 2>&1 &
pids+=($!); pid_of[floor]=$!
if [[ -n $KUBE_EXAMPLE ]]; then
  kube_bin=$(realpath "$KUBE_EXAMPLE")
  kube_dir=$(mktemp -d)
  "$PODGRACE_BIN" certs --service kube-example --namespace bench --san localhost \
    --san 127.0.0.1 --days 2 --out-dir "$kube_dir" >/dev/null
  mv "$kube_dir/tls.crt" "$kube_dir/admission-controller-tls.crt"
  mv "$kube_dir/tls.key" "$kube_dir/admission-controller-tls.key"
  cp "$kube_dir/ca.crt" "$OUT/kube-ca.pem"
  (cd "$kube_dir" && ADMISSION_PRIVATE_IP=127.0.0.1 exec "$kube_bin") >"$OUT/kube.log" 2>&1 &
  pids+=($!); pid_of[kube]=$!
fi
for target in "${targets[@]}"; do
  for _ in $(seq 100); do listening "${target##*:}" && break; sleep 0.1; done
done
sleep 0.5

ticks() { awk '{ sub(/^.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
run() { # name port ca label round extra-args...
  local name=$1 port=$2 ca=$3 label=$4 round=$5; shift 5
  local before; before=$(ticks "${pid_of[$name]}")
  oha --no-tui --output-format json -z "$DURATION" -m POST -T application/json -D "$BODY" \
    --cacert "$ca" "$@" "https://localhost:$port/mutate" >"$OUT/$name-$label-$round.json"
  echo $(($(ticks "${pid_of[$name]}") - before)) >"$OUT/$name-$label-$round.cpu"
}
rss() { awk '/VmRSS|VmHWM/ {printf "%s %d\n", $1, $2}' "/proc/$1/status"; }

for target in "${targets[@]}"; do  # warm-up
  name=${target%%:*}; port=${target##*:}
  oha --no-tui --output-format quiet -n 3000 -c 8 -m POST -T application/json -D "$BODY" \
    --cacert "$OUT/$name-ca.pem" "https://localhost:$port/mutate"
done
for round in $(seq "$ROUNDS"); do
  for scenario in "c16 -c 16" "c64 -c 64" "rate -c 16 -q $RATE --latency-correction"; do
    label=${scenario%% *}; args=${scenario#* }
    for target in "${targets[@]}"; do
      name=${target%%:*}; port=${target##*:}
      # shellcheck disable=SC2086
      run "$name" "$port" "$OUT/$name-ca.pem" "$label" "$round" $args
    done
  done
done
names=()
for target in "${targets[@]}"; do
  name=${target%%:*}; names+=("$name")
  rss "${pid_of[$name]}" >"$OUT/$name-rss.txt"
done

python3 - "$OUT" "$RATE" "$ROUNDS" "$(getconf CLK_TCK)" "${names[@]}" <<'PY'
import json, sys, pathlib
out, rate, rounds, hz = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = sys.argv[5:]
title = {"podgrace": "podgrace", "floor": "floor", "kube": "kube-rs example", "baseline": "podgrace baseline"}
def load(name, label):
    # The round with the median throughput (for the fixed rate: the median p99).
    runs = [one(name, label, r) for r in range(1, rounds + 1)]
    key = (lambda x: x[2]) if label == "rate" else (lambda x: x[0])
    return sorted(runs, key=key)[len(runs) // 2]
def one(name, label, r):
    d = json.loads((out / f"{name}-{label}-{r}.json").read_text())
    s, p = d["summary"], d["latencyPercentiles"]
    codes = d.get("statusCodeDistribution", {})
    # oha aborts the requests still in flight when the duration ends; those are not failures.
    errors = sum(v for k, v in codes.items() if k != "200") + sum(v for k, v in d.get("errorDistribution", {}).items() if k != "aborted due to deadline")
    ms = lambda k: (p.get(k) or 0) * 1000
    ticks = int((out / f"{name}-{label}-{r}.cpu").read_text())
    cpu_us = ticks / hz * 1e6 / max(sum(codes.values()), 1)
    return s["requestsPerSec"], ms("p50"), ms("p99"), ms("p99.9"), errors, cpu_us
def rss(name):
    kv = dict(l.split() for l in (out / f"{name}-rss.txt").read_text().splitlines())
    return int(kv["VmRSS:"]) / 1024, int(kv["VmHWM:"]) / 1024
lines = [f"median of {rounds} alternating rounds", "", "| server | scenario | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | non-200/errors |", "|---|---|---|---|---|---|---|---|"]
for label, what in [("c16", "16 connections, saturation"), ("c64", "64 connections, saturation"), ("rate", f"{rate} req/s fixed, 16 connections")]:
    for name in names:
        r, p50, p99, p999, err, cpu = load(name, label)
        lines.append(f"| {title[name]} | {what} | {r:,.0f} | {p50:.3f} | {p99:.3f} | {p999:.3f} | {cpu:.1f} | {err} |")
lines.append("")
for name in names:
    now, peak = rss(name)
    lines.append(f"{title[name]} RSS after the run: {now:.1f} MiB (peak {peak:.1f} MiB)")
# Ratios, and round by round (each podgrace run next to the runs that followed it in the same
# round): the spread says how far one round can be trusted on this machine.
for other in names[1:]:
    ratio = [load("podgrace", l)[0] / load(other, l)[0] for l in ("c16", "c64")]
    lines.append(f"\npodgrace / {title[other]} throughput: {ratio[0]:.0%} at 16 connections, {ratio[1]:.0%} at 64")
    for label in ("c16", "c64"):
        per = [one("podgrace", label, r)[0] / one(other, label, r)[0] for r in range(1, rounds + 1)]
        lines.append(f"  rounds at {label}: " + ", ".join(f"{x:.0%}" for x in per))
p99s = ["/".join(f"{one(n, 'rate', r)[2]:.2f}" for n in names) for r in range(1, rounds + 1)]
lines.append(f"\np99 ms at {rate} req/s, " + "/".join(title[n] for n in names) + ", rounds: " + ", ".join(p99s))
for label in ("c16", "c64", "rate"):
    cpus = ["/".join(f"{one(n, label, r)[5]:.1f}" for n in names) for r in range(1, rounds + 1)]
    lines.append(f"CPU µs/request at {label}, " + "/".join(title[n] for n in names) + ", rounds: " + ", ".join(cpus))
text = "\n".join(lines)
(out / "results.md").write_text(text + "\n")
print(text)
PY
