#!/usr/bin/env bash
# time-journal-recovery.sh: what a long journal costs each `cfrollback emergency` before its
# preflight, per binary given, rounds alternating the binaries. Each run starts from the same
# journal of RECORDS records of closed emergency runs (made once, hashed as internal/journal
# does; a warm-up run per binary first, so a head of an earlier format is already upgraded),
# its own copy per binary. There is no backup, so the run ends at its preflight: measured
# from its journal records are exec -> intent (Go start, settings, lock, journal Open, the
# intent record) and intent -> preflight start (recovery: reading the journal for an
# interrupted run), and the whole run's wall time. docs/BENCHMARKS.md "Recovery reads from
# the oldest unfinished run".
#
#   scripts/time-journal-recovery.sh ROUNDS RECORDS BIN [BIN...]   # RECORDS 0: a new journal
#
# Everything lives in a temp dir removed on exit; no service is started (the `command`
# manager's status command is `true`).
set -euo pipefail
ROUNDS=${1:?rounds} RECORDS=${2:?records}; shift 2
[ $# -ge 1 ] || { echo "usage: $0 ROUNDS RECORDS BIN [BIN...]" >&2; exit 2; }
W=$(mktemp -d /tmp/cfrollback-jrecov-XXXXXX)
trap 'rm -rf "$W"' EXIT
python3 - "$RECORDS" "$W/seed.jsonl" <<'PY'
import datetime, hashlib, json, sys
n, out = int(sys.argv[1]), sys.argv[2]
t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
lines, prev, seq = [], "", 0
def add(run, event, step, data):
    global prev, seq
    seq += 1
    rec = {"seq": seq, "time": (t0 + datetime.timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%SZ"), "run_id": run, "event": event}
    if step: rec["step"] = step
    if data is not None: rec["data"] = data
    rec["prev"], rec["hash"] = prev, ""
    rec["hash"] = hashlib.sha256(json.dumps(rec, separators=(",", ":")).encode()).hexdigest()
    lines.append(json.dumps(rec, separators=(",", ":")))
    prev = rec["hash"]
r = 0
while seq < n:
    run = "20260101-%06d-%06x" % (r, r); r += 1
    add(run, "intent", "", {"command": "emergency", "user": "root", "host": "bench", "pid": 1234, "service": "claude-flow",
        "install_dir": "/opt/claude-flow", "staging_dir": "/opt/claude-flow.staging-" + run, "failed_dir": "/opt/claude-flow-failed-" + run})
    for s in ["preflight", "stop", "carry_over", "check_data", "swap", "keep_failed", "start", "health"]:
        if seq >= n - 1: break
        add(run, "step_start", s, None)
        add(run, "step_done", s, {"duration_ms": 12, "detail": "step " + s + " done", "data": {"backup": "/var/backups/claude-flow/backup-20250104-140000.tar.gz", "entries": 44}})
    add(run, "outcome", "", {"outcome": "ok", "backup": "/var/backups/claude-flow/backup-20250104-140000.tar.gz", "downtime_ms": 300, "duration_ms": 900})
if n == 0: sys.exit(0)  # each binary starts a new journal
open(out, "w").write("\n".join(lines) + "\n")
open(out + ".head", "w").write(json.dumps({"seq": seq, "hash": prev}, separators=(",", ":")) + "\n")
PY
mkdir -p "$W/opt/claude-flow" "$W/backups" "$W/run"
echo '{}' >"$W/none.yaml"
export CFROLLBACK_INSTALL_DIR=$W/opt/claude-flow CFROLLBACK_BACKUP_DIR=$W/backups CFROLLBACK_LOCK=$W/run/lock \
  CFROLLBACK_BACKUP_STATE=$W/state/backups.json CFROLLBACK_SERVICE_MANAGER=command CFROLLBACK_SERVICE_STATUS_COMMAND=true \
  CFROLLBACK_SERVICE_START_COMMAND=true CFROLLBACK_SERVICE_STOP_COMMAND=true CFROLLBACK_CONFIG=$W/none.yaml NO_COLOR=1 \
  CFROLLBACK_STANDBY_ENABLED=false
i=0
for bin in "$@"; do
  i=$((i + 1)); mkdir -p "$W/j$i"
  if [ "$RECORDS" -gt 0 ]; then cp "$W/seed.jsonl" "$W/j$i/journal.jsonl"; cp "$W/seed.jsonl.head" "$W/j$i/journal.jsonl.head"; fi
  CFROLLBACK_JOURNAL=$W/j$i/journal.jsonl CFROLLBACK_LOG_DIR=$W/j$i "$bin" emergency --json >/dev/null 2>&1 || true
done
: >"$W/results"
for r in $(seq "$ROUNDS"); do
  i=0
  for bin in "$@"; do
    i=$((i + 1)); j=$W/j$i/journal.jsonl
    t0=$(date +%s%N)
    CFROLLBACK_JOURNAL=$j CFROLLBACK_LOG_DIR=$W/j$i "$bin" emergency --json >"$W/out.json" 2>/dev/null || true
    t1=$(date +%s%N)
    python3 - "$t0" "$t1" "$W/out.json" "$j" "$i:$bin" <<'PY' | tee -a "$W/results"
import datetime, json, sys
t0, t1 = int(sys.argv[1]) / 1e9, int(sys.argv[2]) / 1e9
rid = json.load(open(sys.argv[3]))["run_id"]
def at(s):
    a, _, frac = s.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(a + "+00:00").timestamp() + float("0." + (frac or "0"))
recs = [r for r in map(json.loads, open(sys.argv[4])) if r["run_id"] == rid]
intent = at(recs[0]["time"])
pre = next(at(r["time"]) for r in recs if r["event"] == "step_start" and r["step"] == "preflight")
print("%s records=%d exec_to_intent=%.1f recovery=%.1f wall=%.1f" % (sys.argv[5], recs[0]["seq"], (intent - t0) * 1000, (pre - intent) * 1000, (t1 - t0) * 1000))
PY
  done
done
echo; echo "medians of $ROUNDS rounds (ms):"
python3 - "$W/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    for f in fields:
        k, _, v = f.partition("=")
        rows.setdefault(name, {}).setdefault(k, []).append(float(v))
for name, cols in rows.items():
    print(name, " ".join("%s=%g" % (k, statistics.median(v)) for k, v in cols.items() if k != "records"))
PY
