#!/usr/bin/env bash
# Call-rate benchmark: SIPp UAC -> tandem (release, media anchored) -> SIPp UAS.
# Usage: benches/sipp-call-rate.sh [CALLS] [RATE] [udp|tcp] [anchored|direct] [DIALPLAN.lua|EXTRA.toml]
# With a dial plan, every call runs it (`{{UAS}}` in the script is replaced
# by the callee's host:port); a .toml file is added to the configuration
# (`{{UAS}}`, `{{UAS_ADDR}}` = host:port only, `{{ROOT}}` = this checkout),
# e.g. benches/lcr.toml for the LCR plugin (run plugins/build.sh first);
# without either the static route is used. LUA_STATES=N sets the dial
# plan's Lua states (default 2). TANDEM_BIN=PATH runs that binary instead of
# building target/release/tandem (for A/B comparisons). MEDIA_PORTS=LO-HI
# sets Tandem's RTP port range (two runs at once need ranges apart). TANDEM_WRAP="CMD"
# runs Tandem under CMD (e.g. "valgrind --tool=callgrind --callgrind-out-file=F"
# to count instructions per call: deterministic where CPU time is not).
# WARMUP=SECONDS first runs that many seconds of calls at the same rate
# and counts only the CPU of the measured calls after them (steady state:
# use 35 or more, past the 32 s a completed transaction is kept).
# Each call is INVITE/100/180/200/ACK/BYE/200 on both legs. Prints the
# answered calls, failures, the achieved rate, Tandem's CPU per call
# (user and system) and its page faults per call.
# Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-20000}
rate=${2:-1000}
proto=${3:-udp}
media=${4:-anchored}
dialplan=${5:-}
command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
bin=${TANDEM_BIN:-./target/release/tandem}
[ -n "${TANDEM_BIN:-}" ] || cargo build --release -q -p tandem
work=$(mktemp -d)
tflag=u1; transport=""; [ "$proto" = tcp ] && { tflag=t1; transport=";transport=tcp"; }
# Ports on 127.0.0.1, one bind check for both uses: `ports pick` prints
# one free for UDP and TCP alike, above the RTP ranges (30000-49999);
# `ports held PORT` succeeds when something holds PORT for the
# benchmark's transport.
ports() {
  python3 - "$@" <<PY
import random, socket, sys
def free(port, kinds):
    try:
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True
if sys.argv[1] == "pick":
    for _ in range(500):
        port = random.randint(50000, 60999)
        if free(port, (socket.SOCK_DGRAM, socket.SOCK_STREAM)):
            print(port)
            break
else:
    kind = socket.SOCK_STREAM if "$proto" == "tcp" else socket.SOCK_DGRAM
    sys.exit(1 if free(int(sys.argv[2]), (kind,)) else 0)
PY
}
pids=()
uas_port=""
# Tandem, and the SIPp callee (a daemon of its own with -bg), go with the script.
stop_uas_on() { pkill -f "sipp -sn uas -t $tflag -i 127.0.0.1 -p $1 -nostdin" || true; }
cleanup() { kill "${pids[@]}" 2>/dev/null || true; [ -z "$uas_port" ] || stop_uas_on "$uas_port"; rm -rf "$work"; }
trap cleanup EXIT
# The callee first, on a port it holds before Tandem binds its own (port
# 0): a free port handed back and then taken by Tandem would make Tandem
# call itself. Checked, and another port tried, when SIPp could not bind.
for _ in $(seq 20); do
  p=$(ports pick)
  sipp -sn uas -t "$tflag" -i 127.0.0.1 -p "$p" -nostdin -bg >/dev/null 2>&1 || true
  for _ in $(seq 20); do
    ports held "$p" && { uas_port=$p; break; }
    sleep 0.05
  done
  [ -n "$uas_port" ] && break
  stop_uas_on "$p"
done
[ -n "$uas_port" ] || { echo "the SIPp callee could not bind a port" >&2; exit 1; }
base=$(( (RANDOM % 200) * 100 + 30000 ))
media_ports=${MEDIA_PORTS:-$base-$((base + 9999))}
cat > "$work/tandem.toml" <<TOML
listen = ["$proto:127.0.0.1:0"]
[[routes]]
targets = ["sip:\${user}@127.0.0.1:$uas_port$transport"]
[media]
mode = "$media"
ports = "$media_ports"
[limits]
max_calls = 100000
[status]
interval_s = 0
TOML
case "$dialplan" in
  "") ;;
  *.toml)
    sed -e "s|{{UAS}}|127.0.0.1:$uas_port$transport|g" -e "s|{{UAS_ADDR}}|127.0.0.1:$uas_port|g" \
      -e "s|{{ROOT}}|$PWD|g" "$dialplan" >> "$work/tandem.toml" ;;
  *)
    sed "s/{{UAS}}/127.0.0.1:$uas_port$transport/g" "$dialplan" > "$work/dialplan.lua"
    printf '[dialplan]\nscript = "%s"\nwatch = false\nstates = %s\n' "$work/dialplan.lua" \
      "${LUA_STATES:-2}" >> "$work/tandem.toml" ;;
esac
# shellcheck disable=SC2086 # TANDEM_WRAP is a command line
${TANDEM_WRAP:-} "$bin" --config "$work/tandem.toml" --log-level warn,tandem=info 2>"$work/tandem.log" &
tpid=$!; pids+=("$tpid")
for _ in $(seq 600); do grep -q 'listen=' "$work/tandem.log" && break; sleep 0.1; done
port=$(grep -o 'listen=[a-z]*:127.0.0.1:[0-9]*' "$work/tandem.log" | head -1 | sed 's/.*://')
# The caller's port once Tandem holds its own.
uac_port=$(ports pick)
if [ "${WARMUP:-0}" -gt 0 ]; then
  # Calls at the same rate first, not counted: a fresh Tandem's memory
  # grows until the first completed transactions expire (Timer J/D, 32 s),
  # which costs system calls and page faults that a switch in service
  # has long stopped paying.
  sipp 127.0.0.1:"$port" -sn uac -s 1000 -t "$tflag" -i 127.0.0.1 -p "$uac_port" \
    -m "$((rate * WARMUP))" -r "$rate" -l 5000 -d 0 -nostdin -timeout 300s >/dev/null 2>&1 || true
fi
ticks0=$(awk '{print $14 + $15}' "/proc/$tpid/stat")
user_ticks0=$(awk '{print $14}' "/proc/$tpid/stat")
faults0=$(awk '{print $10}' "/proc/$tpid/stat")
start=$(date +%s.%N)
sipp 127.0.0.1:"$port" -sn uac -s 1000 -t "$tflag" -i 127.0.0.1 -p "$uac_port" \
  -m "$calls" -r "$rate" -l 5000 -d 0 -nostdin -timeout 300s -timeout_error \
  -trace_stat -stf "$work/stat.csv" -trace_err -error_file "$work/errors.log" \
  >/dev/null 2>"$work/sipp.err" || true
end=$(date +%s.%N)
# Why calls failed, when some did (SIPp's error log, shortened).
if [ -s "$work/errors.log" ]; then
  grep -o "while expecting '[^']*' ([^)]*), received '[^']*\|retransmission[^.]*" \
    "$work/errors.log" | sort | uniq -c | sort -rn | head -5 >&2 || true
fi
ticks=$(($(awk '{print $14 + $15}' "/proc/$tpid/stat") - ticks0))
user_ticks=$(($(awk '{print $14}' "/proc/$tpid/stat") - user_ticks0))
faults=$(($(awk '{print $10}' "/proc/$tpid/stat") - faults0))
if [ -n "${TANDEM_WRAP:-}" ]; then kill -TERM "$tpid"; wait "$tpid" 2>/dev/null || true; fi
stop_uas_on "$uas_port"
python3 - "$work/stat.csv" "$calls" "$start" "$end" "$rate" "$proto" "$media" "$ticks" "$(getconf CLK_TCK)" "$user_ticks" "$faults" "$dialplan" <<'PY'
import sys
path, calls, start, end, rate, proto, media, ticks, hz, user_ticks, faults = sys.argv[1:12]
lines = [l.rstrip(";\n").split(";") for l in open(path) if l.strip()]
head, last = lines[0], lines[-1]
ok = int(last[head.index("SuccessfulCall(C)")])
failed = int(last[head.index("FailedCall(C)")])
wall = float(end) - float(start)
cpu = int(ticks) / int(hz)
extra = sys.argv[12] if len(sys.argv) > 12 else ""
user = int(user_ticks) / int(hz)
label = f" + {extra.rsplit('/', 1)[-1]}" if extra else ""
print(f"{proto}/{media}{label}: {ok} of {calls} calls completed, {failed} failed, {wall:.1f} s wall, "
      f"{ok / wall:.0f} calls/s (offered {rate}/s); tandem used {cpu:.2f} CPU-s, "
      f"{cpu / max(ok, 1) * 1e3:.3f} CPU-ms per call ({user / max(ok, 1) * 1e3:.3f} user, "
      f"{(cpu - user) / max(ok, 1) * 1e3:.3f} system, {int(faults) / max(ok, 1):.1f} page faults)")
PY
