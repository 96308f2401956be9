#!/usr/bin/env bash
# Registration benchmark: SIPp registers and unregisters one user with
# digest authentication (tests/sipp/register_auth.xml: REGISTER, 401,
# REGISTER with credentials, 200, then the same with Expires: 0), against
# tandem (release). Usage: benches/sipp-register-rate.sh [SCENARIOS] [RATE]
# Each scenario is 4 REGISTER transactions. Prints the failures and
# Tandem's CPU per REGISTER. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scenarios=${1:-20000}
rate=${2:-1000}
command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
bin=${TANDEM_BIN:-./target/release/tandem}
[ -n "${TANDEM_BIN:-}" ] || cargo build --release -q -p tandem
work=$(mktemp -d)
cat > "$work/tandem.toml" <<TOML
listen = ["udp:127.0.0.1:0"]
[auth]
realm = "tandem.test"
[[users]]
name = "alice"
password = "wonderland"
[status]
interval_s = 0
TOML
"$bin" --config "$work/tandem.toml" --log-level warn,tandem=info 2>"$work/tandem.log" &
tandem=$!
trap 'kill $tandem 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q "Listening" "$work/tandem.log" && break; sleep 0.1; done
port=$(grep -o "udp:127.0.0.1:[0-9]*" "$work/tandem.log" | head -1 | cut -d: -f3)
cpu0=$(awk '{print $14+$15}' /proc/$tandem/stat)
start=$(date +%s.%N)
status=0
sipp "127.0.0.1:$port" -sf tests/sipp/register_auth.xml -s alice -au alice -ap wonderland \
  -m "$scenarios" -r "$rate" -l 500 -i 127.0.0.1 -p 0 -nostdin -timeout 120s \
  -trace_stat -stf "$work/stat.csv" >"$work/sipp.out" 2>&1 || status=$?
end=$(date +%s.%N)
cpu1=$(awk '{print $14+$15}' /proc/$tandem/stat)
failed=$(tail -1 "$work/stat.csv" | awk -F';' '{print $18}')
python3 - "$scenarios" "$rate" "$cpu0" "$cpu1" "$start" "$end" "$(getconf CLK_TCK)" "$status" "${failed:-?}" <<'PY'
import sys
n, rate, c0, c1, s, e, hz, status, failed = sys.argv[1:]
n = int(n); wall = float(e) - float(s); cpu = (int(c1) - int(c0)) / int(hz)
print(f"{n} scenarios ({4*n} REGISTERs) at {rate}/s: sipp exit {status}, failed {failed}, "
      f"{wall:.1f} s wall, {4*n/wall:.0f} REGISTERs/s; tandem used {cpu:.2f} CPU-s, "
      f"{cpu/(4*n)*1e6:.1f} CPU-us per REGISTER")
PY
