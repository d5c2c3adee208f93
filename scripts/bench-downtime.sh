#!/usr/bin/env bash
# bench-downtime.sh: downtime of `cfrollback emergency` vs the seed runbook's shell procedure,
# side by side, same fixture, same service manager (the `command` manager running the drill
# app), alternating, several rounds. Prints a Markdown table for docs/BENCHMARKS.md.
#
#   scripts/bench-downtime.sh [SIZES] [ROUNDS]     SIZES: any of "small large xl" (default
#                                                   "small large"), ROUNDS: 3
#
# small ~ 10 MB, large ~ 500 MB (half incompressible, half text, 2000 files), xl ~ 1.7 GB in
# ~60k files of mixed sizes (many small text modules, fewer medium and large blobs; 2 GB in
# ~200k files takes too long to generate and copy for a benchmark run). xl needs ~8 GB of free
# space under /tmp. Everything lives in a temp dir that is removed on exit; the app listens on
# loopback; only processes this script started are ended.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin/cfrollback}
SIZES=${1:-"small large"}
ROUNDS=${2:-3}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
W=$(mktemp -d /tmp/cfrollback-bench-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/health"
INSTALL=$W/opt/claude-flow
PIDF=$W/run/app.pid
mkdir -p "$W/opt" "$W/run" "$W/backups" "$W/log"
cleanup() { [ -f "$PIDF" ] && kill "$(cat "$PIDF")" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

start_app() { nohup "$BIN" drill-app --install "$INSTALL" --addr "127.0.0.1:$PORT" --pidfile "$PIDF" >>"$W/run/app.log" 2>&1 </dev/null & }
stop_app() { [ -f "$PIDF" ] && kill "$(cat "$PIDF")" 2>/dev/null; while [ -f "$PIDF" ]; do sleep 0.01; done; }
export CFROLLBACK_INSTALL_DIR=$INSTALL CFROLLBACK_BACKUP_DIR=$W/backups CFROLLBACK_JOURNAL=$W/log/journal.jsonl \
  CFROLLBACK_LOCK=$W/run/lock CFROLLBACK_LOG_DIR=$W/log CFROLLBACK_BACKUP_STATE=$W/state/backups.json CFROLLBACK_SERVICE_MANAGER=command \
  CFROLLBACK_SERVICE_START_COMMAND="nohup '$BIN' drill-app --install '$INSTALL' --addr 127.0.0.1:$PORT --pidfile '$PIDF' >>'$W/run/app.log' 2>&1 </dev/null &" \
  CFROLLBACK_SERVICE_STOP_COMMAND="[ -f '$PIDF' ] && kill \$(cat '$PIDF') 2>/dev/null; true" \
  CFROLLBACK_SERVICE_STATUS_COMMAND="[ -f '$PIDF' ] && kill -0 \$(cat '$PIDF') 2>/dev/null" \
  CFROLLBACK_HEALTH_URL=$URL CFROLLBACK_HEALTH_INTERVAL=50ms CFROLLBACK_HEALTH_CONSECUTIVE=1 \
  CFROLLBACK_CONFIG=$W/none.yaml NO_COLOR=1
echo '{}' >"$W/none.yaml"

make_xl_tree() { # $1 = dir; ~1.7 GB in ~60k files: what a big node_modules looks like
  python3 - "$1" <<'PY'
import os, sys, random
root = sys.argv[1]
rng = random.Random(7)  # same tree every run
# (count, min bytes, max bytes): small modules, medium files, a few large blobs
tiers = [(56000, 512, 8192), (3800, 128 << 10, 384 << 10), (200, 2 << 20, 3 << 20)]
n = 0
for count, lo, hi in tiers:
    for _ in range(count):
        n += 1
        d = os.path.join(root, "pkg%d" % (n % 1500), "lib%d" % (n % 7))
        os.makedirs(d, exist_ok=True)
        size = rng.randint(lo, hi)
        if n % 2 == 0:
            data, name = os.urandom(size), "blob%d.bin" % n
        else:
            line = b"module.exports = function f%d(a, b) { return a + b + %d; };\n" % (n, n)
            data, name = (line * (size // len(line) + 1))[:size], "mod%d.js" % n
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
PY
}

make_fixture() { # $1 = size name; builds $W/good (v1) and its backup
  rm -rf "$W/good" "$W/backups"/*; mkdir -p "$W/good/app" "$W/good/node_modules" "$W/good/.swarm"
  echo 1.0.0 >"$W/good/app/VERSION"; echo yes >"$W/good/app/healthy"
  local files kb
  case $1 in
    small) files=40 kb=256 ;;
    large) files=2000 kb=256 ;;
    xl) make_xl_tree "$W/good/node_modules"; files=0 ;;
    *) echo "unknown size: $1 (small, large, xl)" >&2; exit 2 ;;
  esac
  for i in $(seq 1 "$files"); do
    d=$W/good/node_modules/pkg$((i % 50)); mkdir -p "$d"
    if [ $((i % 2)) = 0 ]; then head -c $((kb * 1024)) /dev/urandom >"$d/blob$i.bin"
    else { yes "module.exports = function f$i(a, b) { return a + b + $i; };" || true; } | head -c $((kb * 1024)) >"$d/mod$i.js"; fi
  done
  tar -C "$W/good" -czf "$W/backups/backup-20250104-140000.tar.gz" .
}

deploy_broken() { # install = v1 content with v2 broken markers, plus live data; app running
  stop_app
  rm -rf "$INSTALL" "$INSTALL"-failed-* "$INSTALL".staging-*
  cp -a "$W/good" "$INSTALL"
  echo 2.0.0-phase2 >"$INSTALL/app/VERSION"; echo no >"$INSTALL/app/healthy"
  start_app
  until curl -s -o /dev/null "$URL"; do sleep 0.05; done
  sync
}

now_ms() { date +%s%3N; }

seed_procedure() { # the seed's "Emergency Rollback Script", steps as written; prints "downtime total rss"
  local sleep_s=$1 t0 t1
  t0=$(now_ms)
  stop_app                                                    # systemctl stop || pm2 stop
  cp -r "$INSTALL" "$INSTALL-failed-$(date +%Y%m%d-%H%M%S)"   # backup failed deployment
  LATEST=$(ls -t "$W/backups"/backup-*.tar.gz 2>/dev/null | head -1)
  (cd "$INSTALL" && /usr/bin/time -f %M -o "$W/rss" tar -xzf "$LATEST" --overwrite)   # restore backup
  start_app                                                   # systemctl start || pm2 start
  sleep "$sleep_s"                                            # wait for service to stabilize
  until curl -fs -o /dev/null "$URL"; do sleep 0.05; done     # health-check --critical-only
  t1=$(now_ms)
  echo "$((t1 - t0)) $((t1 - t0)) $(cat "$W/rss")"
}

cfrollback_emergency() { # prints "downtime total rss"
  local out
  out=$(/usr/bin/time -f %M -o "$W/rss" "$BIN" emergency --json 2>/dev/null)
  echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["downtime_ms"], r["duration_ms"], end=" ")'
  cat "$W/rss"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

echo "| install | backup (gz) | procedure | downtime ms, median of $ROUNDS | total wall ms, median | peak RSS MiB (tar / cfrollback) | downtime, all rounds |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
col() { awk -v c="$1" '{print $c}'; }
for size in $SIZES; do
  make_fixture "$size"
  isize=$(du -sh "$W/good" | cut -f1); bsize=$(du -sh "$W/backups"/backup-*.tar.gz | cut -f1)
  : >"$W/seed10"; : >"$W/seed0"; : >"$W/cfr"
  for r in $(seq 1 "$ROUNDS"); do
    deploy_broken; seed_procedure 10 >>"$W/seed10"
    deploy_broken; cfrollback_emergency >>"$W/cfr"
    deploy_broken; seed_procedure 0 >>"$W/seed0"
  done
  for row in "seed10|seed shell procedure (as written, sleep 10)" "seed0|seed shell procedure without the sleep 10" "cfr|cfrollback emergency"; do
    f=$W/${row%%|*}; name=${row#*|}
    down=$(col 1 <"$f" | median); total=$(col 2 <"$f" | median); rss=$(col 3 <"$f" | median)
    all=$(col 1 <"$f" | paste -sd, | sed 's/,/, /g')
    echo "| $size ($isize) | $bsize | $name | $down | $total | $((rss / 1024)) | $all |"
  done
done
stop_app
