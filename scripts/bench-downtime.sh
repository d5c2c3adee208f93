#!/usr/bin/env bash
# bench-downtime.sh: command -> healthy and downtime of `cfrollback emergency` (cold and warm),
# the seed runbook's shell procedure (as written and without its sleep 10) and a plain restart
# (the floor), side by side: same fixture, same service manager (the `command` manager running
# the drill app), rounds alternating the procedures. An independent prober
# (scripts/bench-probe.py) polls the health URL every 10 ms during every run. Prints a Markdown
# table and the ratios of issue 16's goals for docs/BENCHMARKS.md.
#
#   scripts/bench-downtime.sh [SIZES] [ROUNDS]     SIZES: any of "small large xl" (default
#                                                   "small large"), ROUNDS: 3
#
# small ~ 10 MB (40 files), large ~ 500 MB in 20,000 files (half incompressible, half text, 200
# dirs), xl ~ 1.9 GB in ~60k files of mixed sizes (many small text modules, fewer medium and
# large blobs). xl needs ~10 GB of free space under /tmp. Everything lives in a temp dir that is
# removed on exit; the app listens on loopback; only processes this script started are ended.
#
# Per run, measured by the prober from the moment the procedure starts (T0):
#   command -> healthy  T0 to the first passing (2xx) probe after a failing one;
#   downtime            the last probe that got an answer (the broken app's 503, the healthy
#                       app's 200) before the app stopped answering, to that first passing probe;
#   command wall        T0 to the procedure's end (the seed's sleep 10 is in it; cfrollback's
#                       further health passes and its standby refresh after a healthy end too).
# Procedures: restart (healthy app: stop, start, poll until it passes), seed10 / seed0 (the seed's
# steps with and without its sleep 10), cold (`cfrollback emergency`, CFROLLBACK_STANDBY_ENABLED=
# false), warm (`cfrollback emergency` after an untimed `cfrollback standby refresh`; "n/a" when
# the binary has no standby command).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin/cfrollback}
PROBE=$PWD/scripts/bench-probe.py
SIZES=${1:-"small large"}
ROUNDS=${2:-3}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
W=$(mktemp -d /tmp/cfrollback-bench-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/health"
INSTALL=$W/opt/claude-flow
PIDF=$W/run/app.pid
PROBER=
mkdir -p "$W/opt" "$W/run" "$W/backups" "$W/log"
cleanup() {
  if [ -n "$PROBER" ]; then kill "$PROBER" 2>/dev/null || true; fi
  if [ -f "$PIDF" ]; then kill "$(cat "$PIDF")" 2>/dev/null || true; fi
  unmount_standby
  rm -rf "$W"
}
# A refreshed standby is a read-only bind mount of itself (standby.read_only_mount): take it off
# before removing the tree, or rm fails with EROFS (the mount was made by a cfrollback run here).
unmount_standby() { local i; for i in 1 2 3; do mountpoint -q "$INSTALL.standby" && umount "$INSTALL.standby"; done; return 0; }
trap cleanup EXIT

start_app() { nohup "$BIN" drill-app --install "$INSTALL" --addr "127.0.0.1:$PORT" --pidfile "$PIDF" >>"$W/run/app.log" 2>&1 </dev/null & }
wait_for() { # $1 = what, then a command; polls it every 10 ms for at most 60 s
  local what=$1 i; shift
  for i in $(seq 6000); do "$@" && return 0; sleep 0.01; done
  echo "gave up after 60 s waiting for $what" >&2; exit 1
}
no_pidfile() { [ ! -f "$PIDF" ]; }
stop_app() { [ -f "$PIDF" ] && kill "$(cat "$PIDF")" 2>/dev/null; wait_for "the app to stop" no_pidfile; }
answers() { curl -s -o /dev/null "$URL"; }
passes() { curl -fs -o /dev/null "$URL"; }
export CFROLLBACK_INSTALL_DIR=$INSTALL CFROLLBACK_BACKUP_DIR=$W/backups CFROLLBACK_JOURNAL=$W/log/journal.jsonl \
  CFROLLBACK_LOCK=$W/run/lock CFROLLBACK_LOG_DIR=$W/log CFROLLBACK_BACKUP_STATE=$W/state/backups.json CFROLLBACK_SERVICE_MANAGER=command \
  CFROLLBACK_SERVICE_START_COMMAND="nohup '$BIN' drill-app --install '$INSTALL' --addr 127.0.0.1:$PORT --pidfile '$PIDF' >>'$W/run/app.log' 2>&1 </dev/null &" \
  CFROLLBACK_SERVICE_STOP_COMMAND="[ -f '$PIDF' ] && kill \$(cat '$PIDF') 2>/dev/null; true" \
  CFROLLBACK_SERVICE_STATUS_COMMAND="[ -f '$PIDF' ] && kill -0 \$(cat '$PIDF') 2>/dev/null" \
  CFROLLBACK_HEALTH_URL=$URL CFROLLBACK_HEALTH_INTERVAL=50ms CFROLLBACK_HEALTH_CONSECUTIVE=1 \
  CFROLLBACK_CONFIG=$W/none.yaml NO_COLOR=1
echo '{}' >"$W/none.yaml"
WARM=yes
"$BIN" standby --help >/dev/null 2>&1 || WARM=

make_tree() { # $1 = dir, $2 = small|large|xl: half random, half JavaScript-like text
  python3 - "$@" <<'PY'
import os, sys, random
root, size_name = sys.argv[1], sys.argv[2]
rng = random.Random(7)  # same tree every run
# (count, min bytes, max bytes) tiers and the directory of file n
if size_name == "xl":  # ~1.7 GB in 60k files, what a big node_modules looks like
    tiers = [(56000, 512, 8192), (3800, 128 << 10, 384 << 10), (200, 2 << 20, 3 << 20)]
    where = lambda n: os.path.join("pkg%d" % (n % 1500), "lib%d" % (n % 7))
elif size_name == "large":  # 500 MB in 20,000 files of 25 KiB, 200 dirs
    tiers, where = [(20000, 25 << 10, 25 << 10)], lambda n: "pkg%d" % (n % 200)
else:  # 10 MB in 40 files of 256 KiB
    tiers, where = [(40, 256 << 10, 256 << 10)], lambda n: "pkg%d" % (n % 50)
n = 0
for count, lo, hi in tiers:
    for _ in range(count):
        n += 1
        d = os.path.join(root, where(n))
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
  case $1 in
    small | large | xl) make_tree "$W/good/node_modules" "$1" ;;
    *) echo "unknown size: $1 (small, large, xl)" >&2; exit 2 ;;
  esac
  tar -C "$W/good" -czf "$W/backups/backup-20250104-140000.tar.gz" .
}

install_version() { # $1 = good|broken: the install is v1 (broken: with v2's broken markers), app running
  stop_app
  unmount_standby
  rm -rf "$INSTALL" "$INSTALL"-failed-* "$INSTALL".staging-* "$INSTALL".standby*
  cp -a "$W/good" "$INSTALL"
  if [ "$1" = broken ]; then echo 2.0.0-phase2 >"$INSTALL/app/VERSION"; echo no >"$INSTALL/app/healthy"; fi
  start_app
  wait_for "the app to answer" answers
  sync
}

now_ms() { date +%s%3N; }

start_prober() {
  : >"$W/probe.log"
  python3 "$PROBE" probe "$URL" "$W/probe.log" 10 & PROBER=$!
  wait_for "the prober's first probe" test -s "$W/probe.log"
}
stop_prober() { # $1 = T0; waits (bounded) for the first passing probe after it, prints "c2h downtime"
  local i m
  for i in $(seq 500); do
    m=$(python3 "$PROBE" measure "$W/probe.log" "$1")
    [ "$m" != "- -" ] && break
    sleep 0.01
  done
  kill "$PROBER" 2>/dev/null; wait "$PROBER" 2>/dev/null || true; PROBER=
  echo "$m"
}

# Each procedure prints "wall_ms rss_kb" (rss_kb: tar's or cfrollback's peak RSS, 0 for none).
restart_procedure() { # the floor: stop, start, poll until the health URL passes
  local t0; t0=$(now_ms)
  stop_app; start_app
  wait_for "the restarted app to pass" passes
  echo "$(($(now_ms) - t0)) 0"
}

seed_procedure() { # the seed's "Emergency Rollback Script", steps as written
  local sleep_s=$1 t0 latest; t0=$(now_ms)
  stop_app                                                    # systemctl stop || pm2 stop
  cp -r "$INSTALL" "$INSTALL-failed-$(date +%Y%m%d-%H%M%S)"   # backup failed deployment
  latest=$(ls -t "$W/backups"/backup-*.tar.gz 2>/dev/null | head -1)
  (cd "$INSTALL" && /usr/bin/time -f %M -o "$W/rss" tar -xzf "$latest" --overwrite)   # restore backup
  start_app                                                   # systemctl start || pm2 start
  sleep "$sleep_s"                                            # wait for service to stabilize
  wait_for "the seed's health check" passes                   # health-check --critical-only
  echo "$(($(now_ms) - t0)) $(cat "$W/rss")"
}

cfrollback_emergency() { # $1 = cold|warm
  local t0 out; t0=$(now_ms)
  if [ "$1" = cold ]; then
    out=$(CFROLLBACK_STANDBY_ENABLED=false /usr/bin/time -f %M -o "$W/rss" "$BIN" emergency --json 2>/dev/null)
  else
    out=$(CFROLLBACK_STANDBY_ENABLED=true /usr/bin/time -f %M -o "$W/rss" "$BIN" emergency --json 2>/dev/null)
  fi
  echo "$(($(now_ms) - t0)) $(cat "$W/rss")"
  if [ "$1" = warm ]; then
    echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); s=r.get("standby") or {}; print("used, " + (s.get("proof") or "proof not reported") + ((" (not by the mount: " + s["not_by_mount"] + ")") if s.get("not_by_mount") else "") if s.get("used") else "not used: " + (s.get("reason") or "no standby"))' >>"$W/standby-use"
  fi
}

run() { # $1 = procedure name: sets up (untimed), runs it under the prober, appends "c2h down wall rss"
  case $1 in
    restart) install_version good ;;
    warm) install_version broken; CFROLLBACK_STANDBY_ENABLED=true "$BIN" standby refresh >>"$W/log/refresh.log" 2>&1; sync ;;
    *) install_version broken ;;
  esac
  start_prober
  local t0 res; t0=$(now_ms)
  case $1 in
    restart) res=$(restart_procedure) ;;
    seed10) res=$(seed_procedure 10) ;;
    seed0) res=$(seed_procedure 0) ;;
    cold) res=$(cfrollback_emergency cold) ;;
    warm) res=$(cfrollback_emergency warm) ;;
  esac
  echo "$(stop_prober "$t0") $res" >>"$W/$1"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
col() { awk -v c="$1" '{print $c}' "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "n/a"}'; }

PROCS="restart seed10 cold seed0"
[ -n "$WARM" ] && PROCS="$PROCS warm"
echo "| install | backup (gz) | procedure | command -> healthy ms, median of $ROUNDS | downtime ms, median | command wall ms, median | peak RSS MiB | command -> healthy, all rounds | downtime, all rounds |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
RATIOS=
for size in $SIZES; do
  make_fixture "$size"
  isize=$(du -sh "$W/good" | cut -f1); bsize=$(du -sh "$W/backups"/backup-*.tar.gz | cut -f1)
  for p in $PROCS; do : >"$W/$p"; done
  : >"$W/standby-use"
  for r in $(seq 1 "$ROUNDS"); do
    for p in $PROCS; do run "$p"; done
  done
  declare -A C2H DOWN
  for row in "restart|plain restart (stop, start, first passing probe)" "seed10|seed shell procedure (as written, sleep 10)" \
    "seed0|seed shell procedure without the sleep 10" "cold|cfrollback emergency, cold (standby off: extracts)" \
    "warm|cfrollback emergency, warm (standby refreshed before)"; do
    p=${row%%|*}; name=${row#*|}
    if [ "$p" = warm ] && [ -z "$WARM" ]; then
      echo "| $size ($isize) | $bsize | $name | n/a (no standby support in this binary) | | | | | |"; continue
    fi
    C2H[$p]=$(col 1 "$W/$p" | median); DOWN[$p]=$(col 2 "$W/$p" | median)
    wall=$(col 3 "$W/$p" | median); rss=$(col 4 "$W/$p" | median)
    echo "| $size ($isize) | $bsize | $name | ${C2H[$p]} | ${DOWN[$p]} | $wall | $((rss / 1024)) | $(col 1 "$W/$p" | paste -sd, | sed 's/,/, /g') | $(col 2 "$W/$p" | paste -sd, | sed 's/,/, /g') |"
  done
  warm_c2h="n/a (no standby support in this binary)" warm_down=$warm_c2h
  if [ -n "$WARM" ]; then
    warm_c2h="$(ratio "${C2H[warm]}" "${C2H[restart]}") (standby $(sort "$W/standby-use" | uniq -c | sed 's/^ *//' | paste -sd, ))"
    warm_down=$(ratio "${DOWN[warm]}" "${DOWN[restart]}")
  fi
  RATIOS+="| $size | $warm_c2h | $(ratio "${C2H[cold]}" "${C2H[seed0]}") | $(ratio "${DOWN[cold]}" "${DOWN[restart]}") | $warm_down |"$'\n'
done
echo
echo "| install | warm command -> healthy / restart's (goal <= 1.5x) | cold command -> healthy / seed without sleep's (goal <= 0.35x at large) | cold downtime / restart's (goal <= 1.2x) | warm downtime / restart's (goal <= 1.2x) |"
echo "| --- | --- | --- | --- | --- |"
printf '%s' "$RATIOS"
stop_app
