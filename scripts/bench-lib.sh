# bench-lib.sh: what the bench scripts share, sourced by them (scripts/bench-*.sh). Sourcing it
# only defines functions (and one message); nothing runs until a script calls them.
#
#   bench_require_root WHY, bench_require TOOL...  refuse to start, with a clear message
#   bench_abs_bin PATH                          a cfrollback binary given on the command line, as
#                                               an absolute path (the service's start command
#                                               runs it from another directory)
#   bench_service_init DIR APPBIN               the fixture of bench-downtime.sh and
#                                               bench-warm-breakdown.sh: a temp dir, the drill app
#                                               (run from APPBIN) as a `command`-manager service on
#                                               a free loopback port, cfrollback's settings in the
#                                               environment, and the cleanup at exit
#   make_fixture small|large|xl                 the good install (v1) in DIR/good and its backup
#   install_version good|broken                 a fresh copy of v1 as the install, the app running
#   start_prober / stop_prober T0               the independent prober (scripts/bench-probe.py)
#   bounded SECONDS WHAT CMD...                 runs CMD, waiting for it at most SECONDS
#
# Every wait is bounded: the polls give up after 60 s, each curl after 2 s, a cfrollback run
# after the SECONDS given to bounded; Ctrl-C ends the bench, and the cleanup ends what it started
# (by pid), takes the standby's read-only mount off and removes the temp dir.

bench_die() { echo "$(basename "$0"): $*" >&2; exit 2; }

bench_require_root() { # $1 = why root is needed
  [ "$(id -u)" = 0 ] || bench_die "must run as root: $1. Run it with sudo."
}
# why bench-downtime.sh and bench-warm-breakdown.sh need root
BENCH_ROOT_FOR_STANDBY="cfrollback's standby is a read-only bind mount (standby.read_only_mount), \
which only root can make and take off; as another user a warm run would prove the standby by a \
walk instead and measure something else"

bench_require() { # TOOL...: each a command on PATH (or an executable path), else refuse to start
  local tool missing= pkgs=
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 && continue
    missing+=" $tool"
    case $tool in # the Debian/Ubuntu package that has it
      mountpoint) pkgs+=" util-linux" ;;
      umount) pkgs+=" mount" ;;
      /usr/bin/time) pkgs+=" time" ;;
      go) pkgs+=" golang-go" ;;
      sha256sum) pkgs+=" coreutils" ;;
      pgrep) pkgs+=" procps" ;;
      *) pkgs+=" $tool" ;;
    esac
  done
  [ -z "$missing" ] || bench_die "needs${missing}, not found (PATH=$PATH); install what is missing and run again \
(Debian/Ubuntu: apt-get install$(echo "$pkgs" | tr ' ' '\n' | sort -u | paste -sd' '))"
}

bench_abs_bin() { # $1 = a cfrollback binary as given (relative to the caller's directory): prints it absolute
  local bin=$1
  case $bin in
    */*) [ -x "$bin" ] && [ -f "$bin" ] && bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;;
    *) bin=$(command -v "$bin") ;;
  esac
  [ -n "$bin" ] && [ -x "$bin" ] || bench_die "$1: not an executable cfrollback (build one first: make build)"
  echo "$bin"
}

bench_service_init() { # $1 = a new empty work dir, $2 = the cfrollback that runs the drill app
  W=$1 APPBIN=$2 PROBER= RUNNING= WATCHDOG=
  INSTALL=$W/opt/claude-flow PIDF=$W/run/app.pid PORT= URL=
  PROBE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench-probe.py
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$PORT/health"
  mkdir -p "$W/opt" "$W/run" "$W/backups" "$W/log"
  export CFROLLBACK_INSTALL_DIR=$INSTALL CFROLLBACK_BACKUP_DIR=$W/backups CFROLLBACK_JOURNAL=$W/log/journal.jsonl \
    CFROLLBACK_LOCK=$W/run/lock CFROLLBACK_LOG_DIR=$W/log CFROLLBACK_BACKUP_STATE=$W/state/backups.json CFROLLBACK_SERVICE_MANAGER=command \
    CFROLLBACK_SERVICE_START_COMMAND="nohup '$APPBIN' drill-app --install '$INSTALL' --addr 127.0.0.1:$PORT --pidfile '$PIDF' >>'$W/run/app.log' 2>&1 </dev/null &" \
    CFROLLBACK_SERVICE_STOP_COMMAND="[ -f '$PIDF' ] && kill \$(cat '$PIDF') 2>/dev/null; true" \
    CFROLLBACK_SERVICE_STATUS_COMMAND="[ -f '$PIDF' ] && kill -0 \$(cat '$PIDF') 2>/dev/null" \
    CFROLLBACK_HEALTH_URL=$URL CFROLLBACK_HEALTH_INTERVAL=50ms CFROLLBACK_HEALTH_CONSECUTIVE=1 \
    CFROLLBACK_CONFIG=$W/none.yaml NO_COLOR=1
  echo '{}' >"$W/none.yaml"
}

bench_cleanup() { # at exit: ends what the bench started (by pid), unmounts the standby, removes the temp dir
  local i pid pids alive
  if [ -n "$WATCHDOG" ]; then kill "$WATCHDOG" 2>/dev/null || true; fi
  if [ -n "$RUNNING" ]; then # a cfrollback run (or /usr/bin/time's, its child): let it stop, 10 s at most
    pids="$(pgrep -P "$RUNNING" || true) $RUNNING"
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for i in $(seq 100); do
      alive=
      for pid in $pids; do if kill -0 "$pid" 2>/dev/null; then alive=$pid; fi; done
      [ -n "$alive" ] || break
      sleep 0.1
    done
  fi
  if [ -n "$PROBER" ]; then kill "$PROBER" 2>/dev/null || true; fi
  if [ -f "$PIDF" ]; then kill "$(cat "$PIDF")" 2>/dev/null || true; fi
  unmount_standby
  rm -rf "$W"
}

# A refreshed standby is a read-only bind mount of itself (standby.read_only_mount): take it off
# before removing the tree, or rm fails with EROFS (the mount was made by a cfrollback run here).
unmount_standby() {
  local i
  for i in 1 2 3; do
    mountpoint -q "$INSTALL.standby" || return 0
    umount "$INSTALL.standby" || true
  done
  if mountpoint -q "$INSTALL.standby"; then echo "still mounted: $INSTALL.standby (umount it by hand)" >&2; fi
  return 0
}

now_ms() { date +%s%3N; }

# quiet_disk: every procedure starts on a quiet disk. After the set-up's copies and deletions
# (up to 6 GB at xl) the disk still writes back, discards the freed blocks and commits ext4's
# journal for a while after `sync` returns; whichever procedure came next paid for it in its
# fsyncs. Waits until the block device under $W has no I/O in flight and has written and
# discarded nothing for 300 ms (its /sys/dev/block/MAJ:MIN/stat), 30 s at most.
quiet_disk() {
  local dev stat prev= now still=0 i f
  dev=$(findmnt -no MAJ:MIN -T "$W" 2>/dev/null | tr -d ' ')
  stat=/sys/dev/block/$dev/stat
  [ -n "$dev" ] && [ -r "$stat" ] || return 0
  for i in $(seq 300); do
    read -r -a f <"$stat"
    now="${f[8]} ${f[6]} ${f[13]:-0}" # in flight, sectors written, sectors discarded
    if [ "${f[8]}" = 0 ] && [ "$now" = "$prev" ]; then
      still=$((still + 1))
      [ "$still" -ge 3 ] && return 0
    else
      still=0
    fi
    prev=$now
    sleep 0.1
  done
  echo "the disk under $W was still busy after 30 s; going on" >&2
}

wait_for() { # $1 = what, then a command: polls it every 10 ms for at most 60 s
  local what=$1 end=$((SECONDS + 60))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || { echo "gave up after 60 s waiting for $what" >&2; exit 1; }
    sleep 0.01
  done
}

# bounded SECONDS WHAT CMD...: runs CMD and waits for it, SECONDS at most (then it is ended and
# the message says so); returns CMD's status. CMD runs in the background so that Ctrl-C's cleanup
# can end it (RUNNING); the watchdog is started after it, so nothing runs between the caller's
# clock and CMD's start that a foreground CMD would not have had.
bounded() {
  local secs=$1 what=$2 rc=0
  shift 2
  "$@" &
  RUNNING=$!
  bench_watchdog "$secs" "$RUNNING" "$what" &
  WATCHDOG=$!
  wait "$RUNNING" || rc=$?
  kill "$WATCHDOG" 2>/dev/null || true # its TERM trap ends its sleep
  RUNNING= WATCHDOG=
  return "$rc"
}
bench_watchdog() { # $1 = seconds, $2 = pid, $3 = what: ends pid once the time is up
  # ended early (TERM, or Ctrl-C's INT, which the sleep ignores as a background job), it ends its
  # sleep too: its only job, which `jobs -p` lists even when the signal comes before $! is read
  trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT HUP
  sleep "$1" &
  wait "$!" || exit 0
  echo "gave up after $1 s waiting for $3; ended it" >&2
  kill "$2" 2>/dev/null || true
  exit 124
}

start_app() { nohup "$APPBIN" drill-app --install "$INSTALL" --addr "127.0.0.1:$PORT" --pidfile "$PIDF" >>"$W/run/app.log" 2>&1 </dev/null & }
no_pidfile() { [ ! -f "$PIDF" ]; }
stop_app() {
  if [ -f "$PIDF" ]; then kill "$(cat "$PIDF")" 2>/dev/null || true; fi
  wait_for "the app to stop" no_pidfile
}
answers() { curl -s --max-time 2 -o /dev/null "$URL"; }
passes() { curl -fs --max-time 2 -o /dev/null "$URL"; }

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

bench_size_ok() { case $1 in small | large | xl) return 0 ;; *) return 1 ;; esac; }

make_fixture() { # $1 = size name; builds $W/good (v1) and its backup
  bench_size_ok "$1" || { echo "unknown size: $1 (small, large, xl)" >&2; exit 2; }
  rm -rf "$W/good" "$W/backups"/*
  mkdir -p "$W/good/app" "$W/good/node_modules" "$W/good/.swarm"
  echo 1.0.0 >"$W/good/app/VERSION"
  echo yes >"$W/good/app/healthy"
  make_tree "$W/good/node_modules" "$1"
  tar -C "$W/good" -czf "$W/backups/backup-20250104-140000.tar.gz" .
}

install_version() { # $1 = good|broken: the install is v1 (broken: with v2's broken markers), app running, synced
  stop_app
  unmount_standby
  rm -rf "$INSTALL" "$INSTALL"-failed-* "$INSTALL".staging-* "$INSTALL".standby*
  cp -a "$W/good" "$INSTALL"
  if [ "$1" = broken ]; then
    echo 2.0.0-phase2 >"$INSTALL/app/VERSION"
    echo no >"$INSTALL/app/healthy"
  fi
  start_app
  wait_for "the app to answer" answers
  sync
  quiet_disk
}

refresh_standby() { # $1 = the cfrollback to refresh with (untimed, before a warm run); its output to $W/log/refresh.log
  CFROLLBACK_STANDBY_ENABLED=true bounded 600 "$1 standby refresh" "$1" standby refresh >>"$W/log/refresh.log" 2>&1 ||
    { echo "$1 standby refresh failed:" >&2; tail -n 20 "$W/log/refresh.log" >&2; exit 1; }
  sync
  quiet_disk
}

start_prober() {
  : >"$W/probe.log"
  python3 "$PROBE" probe "$URL" "$W/probe.log" 10 &
  PROBER=$!
  wait_for "the prober's first probe" test -s "$W/probe.log"
}
stop_prober() { # $1 = T0 ms: waits (bounded) for the first passing probe after it; sets PROBE_C2H and PROBE_DOWN (ms, or -)
  local i m
  for i in $(seq 500); do
    m=$(python3 "$PROBE" measure "$W/probe.log" "$1")
    [ "$m" != "- -" ] && break
    sleep 0.01
  done
  kill "$PROBER" 2>/dev/null || true
  wait "$PROBER" 2>/dev/null || true
  PROBER= PROBE_C2H=${m% *} PROBE_DOWN=${m#* }
}
