#!/usr/bin/env bash
# bench-downtime.sh: command -> healthy and downtime of `cfrollback emergency` (cold and warm),
# the seed runbook's shell procedure (as written and without its sleep 10) and a plain restart
# (the floor), side by side: same fixture, same service manager (the `command` manager running
# the drill app), rounds alternating the procedures. An independent prober
# (scripts/bench-probe.py) polls the health URL every 10 ms during every run. Prints a Markdown
# table and the ratios of issue 16's goals for docs/BENCHMARKS.md.
#
#   scripts/bench-downtime.sh [SIZES] [ROUNDS]     SIZES: any of "small large xl" (default
#                                                   "small large"), ROUNDS: 3; the binary:
#                                                   BIN=path (default bin/cfrollback)
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
# Needs root (the standby's read-only mount), python3, curl, GNU tar and gzip, mountpoint, pgrep and
# /usr/bin/time; the fixture, service and probe helpers are in scripts/bench-lib.sh.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_require_root "$BENCH_ROOT_FOR_STANDBY"
bench_require python3 curl tar gzip mountpoint umount pgrep /usr/bin/time
BIN=$(bench_abs_bin "${BIN:-$(dirname "$0")/../bin/cfrollback}")
cd "$(dirname "$0")/.."
SIZES=${1:-"small large"}
ROUNDS=${2:-3}
for size in $SIZES; do bench_size_ok "$size" || bench_die "unknown size: $size (small, large, xl)"; done
bench_service_init "$(mktemp -d /tmp/cfrollback-bench-XXXXXX)" "$BIN"
WARM=yes
bounded 60 "$BIN standby --help" "$BIN" standby --help >/dev/null 2>&1 || WARM=

# Each procedure sets RES to "wall_ms rss_kb" (rss_kb: tar's or cfrollback's peak RSS, 0 for none).
# They run in this shell, not in a $(...) subshell, so that Ctrl-C's cleanup knows what runs.
restart_procedure() { # the floor: stop, start, poll until the health URL passes
  local t0; t0=$(now_ms)
  stop_app; start_app
  wait_for "the restarted app to pass" passes
  RES="$(($(now_ms) - t0)) 0"
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
  RES="$(($(now_ms) - t0)) $(cat "$W/rss")"
}

cfrollback_emergency() { # $1 = cold|warm
  local t0 standby=false; t0=$(now_ms)
  if [ "$1" = warm ]; then standby=true; fi
  CFROLLBACK_STANDBY_ENABLED=$standby bounded 600 "cfrollback emergency ($1)" \
    /usr/bin/time -f %M -o "$W/rss" "$BIN" emergency --json >"$W/out.json" 2>"$W/err.txt" ||
    { echo "cfrollback emergency ($1) failed:" >&2; cat "$W/out.json" "$W/err.txt" >&2; exit 1; }
  RES="$(($(now_ms) - t0)) $(cat "$W/rss")"
  if [ "$1" = warm ]; then
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); s=r.get("standby") or {}; print("used, " + (s.get("proof") or "proof not reported") + ((" (not by the mount: " + s["not_by_mount"] + ")") if s.get("not_by_mount") else "") if s.get("used") else "not used: " + (s.get("reason") or "no standby"))' "$W/out.json" >>"$W/standby-use"
  fi
}

run() { # $1 = procedure name: sets up (untimed), runs it under the prober, appends "c2h down wall rss"
  case $1 in
    restart) install_version good ;;
    warm) install_version broken; refresh_standby "$BIN" ;;
    *) install_version broken ;;
  esac
  start_prober
  local t0; t0=$(now_ms)
  case $1 in
    restart) restart_procedure ;;
    seed10) seed_procedure 10 ;;
    seed0) seed_procedure 0 ;;
    cold) cfrollback_emergency cold ;;
    warm) cfrollback_emergency warm ;;
  esac
  stop_prober "$t0"
  echo "$PROBE_C2H $PROBE_DOWN $RES" >>"$W/$1"
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
