#!/usr/bin/env bash
# bench-warm-breakdown.sh: where a warm `cfrollback emergency`'s fixed time goes, against the
# plain restart, on one of bench-downtime.sh's fixtures and its service (the `command` manager
# running the drill app on loopback), rounds alternating the plain restart and each binary given.
# Per run: command -> healthy and downtime from the independent prober (scripts/bench-probe.py,
# every 10 ms), and from the run's own journal records the time from exec to the intent record,
# each step's duration_ms, and the rest ("journal and glue": the records' writes and fsyncs
# between the steps, the progress events). Prints one line per run and the medians per
# procedure. docs/BENCHMARKS.md "Where a warm emergency's fixed time goes".
#
#   [SIZE=small|large|xl] [FLOOR=1] scripts/bench-warm-breakdown.sh ROUNDS BIN [BIN...]
#
# FLOOR=1 adds a third procedure to every round, "floor": scripts/bench-floor (built here with
# go), the least a warm rollback that keeps cfrollback's rules can do (lock, four fsynced
# write-ahead records, the operator's status, stop and start commands through /bin/sh, the
# swap and the failed install's rename), against the same standby made by `cp -a`: what any
# tool pays over a plain restart, whatever its size.
#
# SIZE is bench-downtime.sh's fixture (default small: 40 files of 256 KiB; large: 500 MB in
# 20,000 files; xl: 1.9 GB in 72,000 entries, which needs ~10 GB under /tmp). The drill app is
# always started from the first BIN, so every procedure starts the same app. Needs root (the
# standby's read-only mount), python3, curl, GNU tar and gzip, mountpoint, pgrep; the fixture, service
# and probe helpers are in scripts/bench-lib.sh. Everything lives in a temp dir removed on exit;
# only processes this script started are ended.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_require_root "$BENCH_ROOT_FOR_STANDBY"
bench_require python3 curl tar gzip mountpoint umount pgrep
[ $# -ge 2 ] || bench_die "usage: [SIZE=small|large|xl] $0 ROUNDS BIN [BIN...]"
ROUNDS=$1
shift
SIZE=${SIZE:-small}
bench_size_ok "$SIZE" || bench_die "SIZE=$SIZE: not a fixture size (small, large, xl)"
BINS=() # each BIN given, as given (the result lines name it so) and absolute (to run it)
for bin in "$@"; do BINS+=("$(bench_abs_bin "$bin")"); done
cd "$(dirname "$0")/.."
bench_service_init "$(mktemp -d /tmp/cfrollback-warmfix-XXXXXX)" "${BINS[0]}"
export CFROLLBACK_STANDBY_ENABLED=true
make_fixture "$SIZE"
if [ -n "${FLOOR:-}" ]; then
  bench_require go
  CGO_ENABLED=0 go build -trimpath -buildmode=pie -ldflags "-s -w" -o "$W/bench-floor" ./scripts/bench-floor
fi

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
  install_version good
  start_prober
  t0=$(now_ms)
  stop_app
  start_app
  wait_for "the restarted app to pass" passes
  stop_prober "$t0"
  echo "restart c2h=$PROBE_C2H downtime=$PROBE_DOWN load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$W/results"
  if [ -n "${FLOOR:-}" ]; then
    install_version broken
    cp -a "$W/good" "$INSTALL.standby"
    sync
    quiet_disk
    start_prober
    t0=$(now_ms)
    bounded 60 "bench-floor" "$W/bench-floor" || { echo "bench-floor failed" >&2; exit 1; }
    stop_prober "$t0"
    echo "floor c2h=$PROBE_C2H downtime=$PROBE_DOWN load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$W/results"
  fi
  for i in "${!BINS[@]}"; do
    bin=${BINS[$i]} label=${*:i+1:1}
    install_version broken
    refresh_standby "$bin"
    start_prober
    t0=$(now_ms)
    bounded 600 "$bin emergency" "$bin" emergency --json >"$W/out.json" 2>"$W/err.txt" ||
      { echo "$label emergency failed: $(cat "$W/err.txt")" >&2; exit 1; }
    stop_prober "$t0"
    used=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])).get("standby") or {}; print("used" if s.get("used") else "NOT-USED")' "$W/out.json")
    echo "$label c2h=$PROBE_C2H downtime=$PROBE_DOWN standby=$used load=$(cut -d' ' -f1 /proc/loadavg) $(breakdown "$t0" "$W/out.json")" | tee -a "$W/results"
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
