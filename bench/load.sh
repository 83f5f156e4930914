#!/usr/bin/env bash
# Load benchmark: podgrace against the floor server (bench/floor.rs: same axum + rustls stack,
# parses the review, answers a constant "allowed") in one run, over HTTPS keep-alive with the
# captured AdmissionReview as the body. Reports requests/s and p50/p99/p99.9 at fixed
# concurrency (saturation) and at a fixed rate (tail latency), plus RSS.
#
#   bench/load.sh                 # 5 rounds of 10 s per scenario and server (about 5 minutes,
#                                 # after a release build of up to 6 minutes)
#   DURATION=30s ROUNDS=7 bench/load.sh
#
# The two servers are measured alternately, ROUNDS times per scenario, and the median round is
# reported, with every round's ratio: on a shared 2-core machine single runs vary by 20 %.
#
# Needs oha (installed with `cargo install oha --locked` if missing). Results: bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
RATE=${RATE:-2000}
OUT=bench/out
BODY=tests/fixtures/admission/pod-create-kubectl-apply.json
mkdir -p "$OUT"

command -v oha >/dev/null 2>&1 || cargo install oha --locked
cargo build --release --bin podgrace --example floor

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

./target/release/podgrace serve --standalone --listen 127.0.0.1:18443 --ca-out "$OUT/podgrace-ca.pem" \
  --cluster-policy tests/fixtures/policies/cluster.yaml >"$OUT/podgrace.log" 2>&1 &
pids+=($!); podgrace_pid=$!
./target/release/examples/floor 127.0.0.1:19443 "$OUT/floor-ca.pem" >"$OUT/floor.log" 2>&1 &
pids+=($!); floor_pid=$!
for port in 18443 19443; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
sleep 0.5

run() { # name port ca label round extra-args...
  local name=$1 port=$2 ca=$3 label=$4 round=$5; shift 5
  oha --no-tui --output-format json -z "$DURATION" -m POST -T application/json -D "$BODY" \
    --cacert "$ca" "$@" "https://localhost:$port/mutate" >"$OUT/$name-$label-$round.json"
}
rss() { awk '/VmRSS|VmHWM/ {printf "%s %d\n", $1, $2}' "/proc/$1/status"; }

for target in podgrace:18443 floor:19443; do  # warm-up
  name=${target%%:*}; port=${target##*:}
  oha --no-tui --output-format quiet -n 3000 -c 8 -m POST -T application/json -D "$BODY" \
    --cacert "$OUT/$name-ca.pem" "https://localhost:$port/mutate"
done
for round in $(seq "$ROUNDS"); do
  for scenario in "c16 -c 16" "c64 -c 64" "rate -c 16 -q $RATE --latency-correction"; do
    label=${scenario%% *}; args=${scenario#* }
    for target in podgrace:18443 floor:19443; do
      name=${target%%:*}; port=${target##*:}
      # shellcheck disable=SC2086
      run "$name" "$port" "$OUT/$name-ca.pem" "$label" "$round" $args
    done
  done
done
rss "$podgrace_pid" >"$OUT/podgrace-rss.txt"
rss "$floor_pid" >"$OUT/floor-rss.txt"

python3 - "$OUT" "$RATE" "$ROUNDS" <<'PY'
import json, sys, pathlib
out, rate, rounds = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
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
    return s["requestsPerSec"], ms("p50"), ms("p99"), ms("p99.9"), errors
def rss(name):
    kv = dict(l.split() for l in (out / f"{name}-rss.txt").read_text().splitlines())
    return int(kv["VmRSS:"]) / 1024, int(kv["VmHWM:"]) / 1024
lines = [f"median of {rounds} alternating rounds", "", "| server | scenario | req/s | p50 ms | p99 ms | p99.9 ms | non-200/errors |", "|---|---|---|---|---|---|---|"]
for label, title in [("c16", "16 connections, saturation"), ("c64", "64 connections, saturation"), ("rate", f"{rate} req/s fixed, 16 connections")]:
    for name in ["podgrace", "floor"]:
        r, p50, p99, p999, err = load(name, label)
        lines.append(f"| {name} | {title} | {r:,.0f} | {p50:.3f} | {p99:.3f} | {p999:.3f} | {err} |")
for name in ["podgrace", "floor"]:
    now, peak = rss(name)
    lines.append(f"\n{name} RSS after the run: {now:.1f} MiB (peak {peak:.1f} MiB)")
ratio = [load("podgrace", l)[0] / load("floor", l)[0] for l in ("c16", "c64")]
lines.append(f"\npodgrace / floor throughput: {ratio[0]:.0%} at 16 connections, {ratio[1]:.0%} at 64")
# Round by round (each podgrace run next to the floor run that followed it): the spread says how
# far one round can be trusted on this machine.
for label in ("c16", "c64"):
    per = [one("podgrace", label, r)[0] / one("floor", label, r)[0] for r in range(1, rounds + 1)]
    lines.append(f"  rounds at {label}: " + ", ".join(f"{x:.0%}" for x in per))
p99s = [f"{one('podgrace', 'rate', r)[2]:.2f}/{one('floor', 'rate', r)[2]:.2f}" for r in range(1, rounds + 1)]
lines.append(f"  p99 ms at {rate} req/s, podgrace/floor, rounds: " + ", ".join(p99s))
text = "\n".join(lines)
(out / "results.md").write_text(text + "\n")
print(text)
PY
