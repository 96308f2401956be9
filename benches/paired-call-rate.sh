#!/usr/bin/env bash
# Paired call-rate benchmark: what a dial plan or plugin costs per call
# over the static route, measured on a shared, noisy machine.
# Usage: benches/paired-call-rate.sh [ROUNDS] [CALLS] [RATE] [DIALPLAN.lua|EXTRA.toml]
# Each round runs two Tandems at the same time, each with its own SIPp
# caller and callee (benches/sipp-call-rate.sh): one on the static route,
# one with the dial plan or plugin. Both see the same machine at the same
# moment, so a slow spell of the VM slows both, and the difference in CPU
# per call between them is what the dial plan costs. Rounds alternate
# which one starts first. Prints every round and the median difference.
# TANDEM_BIN=PATH uses that binary (otherwise target/release/tandem is
# built). To compare two builds instead, BASE_BIN=PATH runs the first
# Tandem of each pair from another binary, and BASE_EXTRA=FILE gives it a
# dial plan or plugin too (e.g. the same one: then the difference is
# what the build changed). Defaults: 5 rounds of 15000 calls at 1000/s each (2000 calls/s
# through the machine in all). WARMUP=SECONDS is passed on to both runs
# (benches/sipp-call-rate.sh): steady-state figures without the growth of
# a fresh process. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
calls=${2:-15000}
rate=${3:-1000}
extra=${4:-benches/dialplan.lua}
if [ -z "${TANDEM_BIN:-}" ]; then
  cargo build --release -q -p tandem
  export TANDEM_BIN=./target/release/tandem
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run_static() {
  MEDIA_PORTS=30000-39999 TANDEM_BIN=${BASE_BIN:-$TANDEM_BIN} \
    benches/sipp-call-rate.sh "$calls" "$rate" udp anchored ${BASE_EXTRA:-} >"$work/a" 2>&1 &
}
run_extra() {
  MEDIA_PORTS=40000-49999 benches/sipp-call-rate.sh "$calls" "$rate" udp anchored "$extra" \
    >"$work/b" 2>&1 &
}
cpu_ms() { grep -o '[0-9.]* CPU-ms per call' "$1" | cut -d' ' -f1; }
# Every call of the run completed (a round with failed calls measures
# something else).
complete() { grep -q "$calls of $calls calls completed, 0 failed" "$1"; }
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    run_static; run_extra
  else
    run_extra; run_static
  fi
  wait
  a=$(cpu_ms "$work/a"); b=$(cpu_ms "$work/b")
  if [ -z "$a" ] || [ -z "$b" ] || ! complete "$work/a" || ! complete "$work/b"; then
    echo "round $r: a run failed" >&2
    cat "$work/a" "$work/b" >&2
    exit 1
  fi
  echo "round $r: static $(tail -1 "$work/a" | cut -d: -f2-)"
  echo "round $r: $(basename "$extra") $(tail -1 "$work/b" | cut -d: -f2-)"
  echo "$a $b" >>"$work/pairs"
done
base="the static route"
if [ -n "${BASE_BIN:-}${BASE_EXTRA:-}" ]; then base="${BASE_BIN:-$TANDEM_BIN} ${BASE_EXTRA:-static}"; fi
python3 - "$work/pairs" "$extra" "$base" <<'PY'
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
d = sorted((b - a) * 1000 for a, b in pairs)
print(f"{sys.argv[2]}: CPU per call over {sys.argv[3]}, {len(d)} paired rounds: "
      f"median {statistics.median(d):+.1f} µs (rounds: {', '.join(f'{x:+.0f}' for x in d)}); "
      f"base median {statistics.median(a for a, _ in pairs) * 1000:.0f} µs per call")
PY
