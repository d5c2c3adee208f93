#!/usr/bin/env bash
# bench-warm-breakdown.sh: where a warm `cfrollback emergency`'s fixed time goes, against the
# plain restart, on bench-downtime.sh's small fixture (40 files of 256 KiB) and its service
# (the `command` manager running the drill app on loopback), rounds alternating the plain
# restart and each binary given. Per run: command -> healthy and downtime from the independent
# prober (scripts/bench-probe.py, every 10 ms), and from the run's own journal records the time
# from exec to the intent record, each step's duration_ms, and the rest ("journal and glue":
# the records' writes and fsyncs between the steps, the progress events). Prints one line per
# run and the medians per procedure. docs/BENCHMARKS.md "Where a warm emergency's fixed time goes".
#
#   scripts/bench-warm-breakdown.sh ROUNDS BIN [BIN...]
#
# The drill app is always started from the first BIN, so every procedure starts the same app.
# Everything lives in a temp dir removed on exit; only processes this script started are ended.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBE=$PWD/scripts/bench-probe.py
ROUNDS=${1:?rounds}; shift
[ $# -ge 1 ] || { echo "usage: $0 ROUNDS BIN [BIN...]" >&2; exit 2; }
APPBIN=$1
W=$(mktemp -d /tmp/cfrollback-warmfix-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/health" INSTALL=$W/opt/claude-flow PIDF=$W/run/app.pid PROBER=
cleanup() {
  if [ -n "$PROBER" ]; then kill "$PROBER" 2>/dev/null || true; fi
  if [ -f "$PIDF" ]; then kill "$(cat "$PIDF")" 2>/dev/null || true; fi
  unmount_standby
  rm -rf "$W"
}
# A standby is a read-only bind mount of itself since standby.read_only_mount: take it off
# before removing the tree (it was mounted by a cfrollback this script ran).
unmount_standby() { local i; for i in 1 2 3; do mountpoint -q "$INSTALL.standby" && umount "$INSTALL.standby"; done; return 0; }
trap cleanup EXIT
mkdir -p "$W/opt" "$W/run" "$W/backups" "$W/log" "$W/good/app" "$W/good/node_modules" "$W/good/.swarm"
export CFROLLBACK_INSTALL_DIR=$INSTALL CFROLLBACK_BACKUP_DIR=$W/backups CFROLLBACK_JOURNAL=$W/log/journal.jsonl \
  CFROLLBACK_LOCK=$W/run/lock CFROLLBACK_LOG_DIR=$W/log CFROLLBACK_BACKUP_STATE=$W/state/backups.json CFROLLBACK_SERVICE_MANAGER=command \
  CFROLLBACK_SERVICE_START_COMMAND="nohup '$APPBIN' drill-app --install '$INSTALL' --addr 127.0.0.1:$PORT --pidfile '$PIDF' >>'$W/run/app.log' 2>&1 </dev/null &" \
  CFROLLBACK_SERVICE_STOP_COMMAND="[ -f '$PIDF' ] && kill \$(cat '$PIDF') 2>/dev/null; true" \
  CFROLLBACK_SERVICE_STATUS_COMMAND="[ -f '$PIDF' ] && kill -0 \$(cat '$PIDF') 2>/dev/null" \
  CFROLLBACK_HEALTH_URL=$URL CFROLLBACK_HEALTH_INTERVAL=50ms CFROLLBACK_HEALTH_CONSECUTIVE=1 \
  CFROLLBACK_CONFIG=$W/none.yaml NO_COLOR=1 CFROLLBACK_STANDBY_ENABLED=true
echo '{}' >"$W/none.yaml"

# bench-downtime.sh's small tree, made the same way (same seed, same names and sizes)
echo 1.0.0 >"$W/good/app/VERSION"; echo yes >"$W/good/app/healthy"
python3 - "$W/good/node_modules" <<'PY'
import os, sys
root = sys.argv[1]
for n in range(1, 41):
    d = os.path.join(root, "pkg%d" % (n % 50)); os.makedirs(d, exist_ok=True)
    size = 256 << 10
    if n % 2 == 0:
        data, name = os.urandom(size), "blob%d.bin" % n
    else:
        line = b"module.exports = function f%d(a, b) { return a + b + %d; };\n" % (n, n)
        data, name = (line * (size // len(line) + 1))[:size], "mod%d.js" % n
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
PY
tar -C "$W/good" -czf "$W/backups/backup-20250104-140000.tar.gz" .

wait_for() { local i; for i in $(seq 6000); do "$@" && return 0; sleep 0.01; done; echo "gave up waiting for $*" >&2; exit 1; }
no_pidfile() { [ ! -f "$PIDF" ]; }
answers() { curl -s -o /dev/null "$URL"; }
passes() { curl -fs -o /dev/null "$URL"; }
stop_app() { [ -f "$PIDF" ] && kill "$(cat "$PIDF")" 2>/dev/null; wait_for no_pidfile; }
start_app() { nohup "$APPBIN" drill-app --install "$INSTALL" --addr "127.0.0.1:$PORT" --pidfile "$PIDF" >>"$W/run/app.log" 2>&1 </dev/null & }
install_version() { # $1 = good|broken, app running
  stop_app; unmount_standby
  rm -rf "$INSTALL" "$INSTALL"-failed-* "$INSTALL".staging-* "$INSTALL".standby*
  cp -a "$W/good" "$INSTALL"
  if [ "$1" = broken ]; then echo 2.0.0-phase2 >"$INSTALL/app/VERSION"; echo no >"$INSTALL/app/healthy"; fi
  start_app; wait_for answers
}
start_prober() { : >"$W/probe.log"; python3 "$PROBE" probe "$URL" "$W/probe.log" 10 & PROBER=$!; wait_for test -s "$W/probe.log"; }
stop_prober() { # $1 = T0 ms: sets MEASURED to "c2h=MS downtime=MS" (not in a subshell: PROBER is reset here)
  local i m
  for i in $(seq 500); do m=$(python3 "$PROBE" measure "$W/probe.log" "$1"); [ "$m" != "- -" ] && break; sleep 0.01; done
  kill "$PROBER" 2>/dev/null || true; wait "$PROBER" 2>/dev/null || true; PROBER=
  MEASURED="c2h=${m% *} downtime=${m#* }"
}
breakdown() { # $1 = T0 ms, $2 = the run's JSON result: the steps from its journal records
  python3 - "$1" "$2" "$W/log/journal.jsonl" <<'PY'
import datetime, json, sys
t0, rid = int(sys.argv[1]) / 1000.0, json.load(open(sys.argv[2]))["run_id"]
def at(s):
    a, _, frac = s.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(a + "+00:00").timestamp() + float("0." + (frac or "0"))
recs = [r for r in map(json.loads, open(sys.argv[3])) if r["run_id"] == rid]
done = {r["step"]: (r.get("data") or {}).get("duration_ms", 0) for r in recs if r["event"] == "step_done"}
end = next(at(r["time"]) for r in recs if r["event"] == "step_done" and r["step"] == "health")
steps = ["preflight", "stop", "carry_over", "check_data", "swap", "keep_failed", "start", "health"]
glue = (end - at(recs[0]["time"])) * 1000 - sum(done.get(s, 0) for s in steps)
print("exec_to_intent=%d preflight=%d stop=%d start=%d health=%d file_steps=%d journal_and_glue=%d" % (
    (at(recs[0]["time"]) - t0) * 1000, done["preflight"], done["stop"], done["start"], done["health"],
    sum(done.get(s, 0) for s in steps[2:6]), glue))
PY
}

: >"$W/results"
for r in $(seq "$ROUNDS"); do
  install_version good; sync; start_prober
  t0=$(date +%s%3N); stop_app; start_app; wait_for passes
  stop_prober "$t0"
  echo "restart $MEASURED load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$W/results"
  for bin in "$@"; do
    install_version broken; "$bin" standby refresh >>"$W/log/refresh.log" 2>&1; sync; start_prober
    t0=$(date +%s%3N)
    "$bin" emergency --json >"$W/out.json" 2>"$W/err.txt" || { echo "$bin emergency failed: $(cat "$W/err.txt")" >&2; exit 1; }
    stop_prober "$t0"
    used=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])).get("standby") or {}; print("used" if s.get("used") else "NOT-USED")' "$W/out.json")
    echo "$bin $MEASURED standby=$used load=$(cut -d' ' -f1 /proc/loadavg) $(breakdown "$t0" "$W/out.json")" | tee -a "$W/results"
  done
done
echo
echo "medians of $ROUNDS rounds:"
python3 - "$W/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    for f in fields:
        k, _, v = f.partition("=")
        if v.lstrip("-").replace(".", "", 1).isdigit():
            rows.setdefault(name, {}).setdefault(k, []).append(float(v))
for name, cols in rows.items():
    print(name, " ".join("%s=%g" % (k, statistics.median(v)) for k, v in cols.items()))
PY
