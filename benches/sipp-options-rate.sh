#!/usr/bin/env bash
# OPTIONS-rate benchmark: the release binary on loopback, driven by SIPp.
# Usage: benches/sipp-options-rate.sh [CALLS] [RATE] [udp|tcp]
# Prints SIPp's totals and the achieved rate. Talks to 127.0.0.1 only and
# stops by itself (SIPp -m CALLS, -timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-50000}
rate=${2:-10000}
proto=${3:-udp}
command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
cargo build --release -q -p tandem
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
./target/release/tandem --listen "$proto:127.0.0.1:0" --log-level warn,tandem=info 2>"$work/tandem.log" &
pid=$!
for _ in $(seq 50); do grep -q 'listen=' "$work/tandem.log" && break; sleep 0.1; done
port=$(grep -o 'listen=[a-z]*:127.0.0.1:[0-9]*' "$work/tandem.log" | head -1 | sed 's/.*://')
local_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tflag=u1; [ "$proto" = tcp ] && tflag=t1
start=$(date +%s.%N)
sipp 127.0.0.1:"$port" -sf benches/sipp/options.xml -t "$tflag" -i 127.0.0.1 -p "$local_port" \
  -m "$calls" -r "$rate" -l 2000 -nostdin -timeout 120s -timeout_error \
  -trace_stat -stf "$work/stat.csv" >/dev/null 2>"$work/sipp.err" || true
end=$(date +%s.%N)
ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
python3 - "$work/stat.csv" "$calls" "$start" "$end" "$rate" "$proto" "$ticks" "$(getconf CLK_TCK)" <<'PY'
import sys
path, calls, start, end, rate, proto, ticks, hz = sys.argv[1:]
lines = [l.rstrip(";\n").split(";") for l in open(path) if l.strip()]
head, last = lines[0], lines[-1]
ok = int(last[head.index("SuccessfulCall(C)")])
failed = int(last[head.index("FailedCall(C)")])
wall = float(end) - float(start)
print(f"{proto}: {ok} of {calls} OPTIONS answered 200, {failed} failed, "
      f"{wall:.1f} s wall, {ok / wall:.0f} OPTIONS/s (offered {rate}/s); "
      f"tandem used {int(ticks) / int(hz):.2f} CPU-s, "
      f"{int(ticks) / int(hz) / max(ok, 1) * 1e6:.1f} CPU-us per OPTIONS")
PY
