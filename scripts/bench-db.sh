#!/bin/bash
# bench-db.sh: cfrollback database backup / check against the sqlite3 CLI on the same
# generated WAL database, side by side in one run.
#
# Usage: scripts/bench-db.sh [SIZE_MB] [RUNS]     (defaults: 500 MB, 5 runs)
#
# Each command is timed RUNS times, the contenders alternating, and the median is
# reported. Before every timed command the page cache is flushed with sync(1) (not
# timed), so no command pays for the writeback of the one before it; the database itself
# stays in the page cache (warm), as on a host where the service uses it.
#
# Rows:
#   sqlite3 .backup                 the issue's reference: online copy + fdatasync
#   cfrollback database backup      copy + fsync + integrity_check of the copy + sha256 sidecar
#                                   (its --json phases: copy_ms, durable_ms = copy + fsync)
#   sqlite3 .backup + check + sha   the same work as cfrollback done with the CLI tools
#   quick_check / integrity_check   sqlite3 CLI against `cfrollback database check [--quick]`
#
# Needs sqlite3, sha256sum, bc, go. Works in a temp dir; touches nothing else.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_require sqlite3 sha256sum bc go
size_mb=${1:-500}
runs=${2:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-db.XXXXXX")
trap 'rm -rf "$work"' EXIT
repo=$(cd "$(dirname "$0")/.." && pwd)
(cd "$repo" && go build -o "$work/cfrollback" ./cmd/cfrollback)
mkdir -p "$work/app/.swarm" "$work/db"
db="$work/app/.swarm/memory.db"
rows=$((size_mb * 1024 * 1024 / 1100))
echo "generating ~${size_mb} MB ($rows rows) in WAL mode..." >&2
sqlite3 "$db" "PRAGMA journal_mode=WAL; CREATE TABLE memory(id INTEGER PRIMARY KEY, key TEXT UNIQUE, value TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<$rows)
INSERT INTO memory(key, value) SELECT printf('key-%09d', x), randomblob(500) || hex(randomblob(250)) FROM c;" >/dev/null
export CFROLLBACK_INSTALL_DIR="$work/app" CFROLLBACK_DATABASE_BACKUP_DIR="$work/db" NO_COLOR=1
cfr="$work/cfrollback"

now() { date +%s%N; }
# timed NAME CMD...: sync (untimed), run CMD, append its wall milliseconds to $work/NAME.
timed() {
	local name=$1 s e
	shift
	sync
	s=$(now)
	if ! "$@" >"$work/out" 2>&1; then
		echo "$name FAILED:" >&2
		cat "$work/out" >&2
		exit 1
	fi
	e=$(now)
	echo $(((e - s) / 1000000)) >>"$work/$name"
}
median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
all() { sort -n "$work/$1" | paste -sd' ' -; }

shell_equivalent() { # what cfrollback's backup does, with the CLI tools
	sqlite3 "$db" ".backup $1" &&
		[ "$(sqlite3 "$1" 'PRAGMA integrity_check')" = ok ] &&
		sha256sum "$1" >"$1.sha256"
}

ls -l "$db" >&2
for i in $(seq "$runs"); do
	echo "run $i/$runs" >&2
	rm -f "$work"/b-*
	timed cli_backup sqlite3 "$db" ".backup $work/b-cli.db"
	rm -f "$work"/b-*
	timed cfr_backup "$cfr" database backup --db memory --output "$work/b-cfr.db" --json
	for k in copy_ms durable_ms check_ms checksum_ms; do
		sed -n "s/.*\"$k\": \([0-9]*\).*/\1/p" "$work/out"
	done | paste -sd' ' - >>"$work/cfr_phases"
	rm -f "$work"/b-*
	timed shell_backup shell_equivalent "$work/b-sh.db"
	rm -f "$work"/b-*
	timed cli_quick sqlite3 "$db" "PRAGMA quick_check"
	timed cfr_quick "$cfr" database check --db memory --quick
	timed cli_integrity sqlite3 "$db" "PRAGMA integrity_check"
	timed cfr_integrity "$cfr" database check --db memory
done

# A live writer: a separate sqlite3 process (WAL, synchronous=NORMAL, as the service)
# commits a row every few ms while one backup runs: `sqlite3 .backup` once (it restarts its
# copy whenever another process commits, so it is given 20 s), then cfrollback 3 times, a
# fresh writer each time. The writer checkpoints every 20 pages instead of 1000, so that its
# fsyncs fall inside every backup: a backup that floods the page cache shows up as a stall.
# Reported per backup: the writer's longest commit (sqlite3's own .timer), whether the
# backup finished, and whether it holds every row committed before it started.
writer_rows() { sqlite3 "$1" "SELECT count(*) FROM memory WHERE key LIKE 'writer-%'" 2>/dev/null || echo 0; }
live() { # live NAME OUTPUT CMD...: one backup under a live writer; appends to $work/NAME
	local name=$1 out=$2 writer before held stall s e fin=finished
	shift 2
	rm -f "$work"/b-*
	sync
	touch "$work/writer.on"
	(
		i=0
		while [ -e "$work/writer.on" ]; do
			echo "INSERT INTO memory(key, value) VALUES('writer-$name-$RANDOM-$i', 'x');"
			i=$((i + 1))
			sleep 0.002
		done
	) | sqlite3 -cmd "PRAGMA busy_timeout=10000" -cmd "PRAGMA synchronous=NORMAL" \
		-cmd "PRAGMA wal_autocheckpoint=20" -cmd ".timer on" "$db" >"$work/writer.log" 2>&1 &
	writer=$!
	sleep 0.5
	before=$(writer_rows "$db")
	s=$(now)
	timeout 20 "$@" >/dev/null 2>&1 || fin="did not finish in 20 s"
	e=$(now)
	sleep 0.3
	rm -f "$work/writer.on"
	wait "$writer" || true
	held=$(writer_rows "$out")
	stall=$(sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p' "$work/writer.log" | sort -n | tail -1)
	printf '    %-28s %5d ms, longest commit %4d ms, %s, %s\n' "$name" $(((e - s) / 1000000)) \
		"$(echo "$stall * 1000 / 1" | bc)" "$fin" \
		"$([ "$held" -ge "$before" ] && echo "holds every row committed before it started" || echo "MISSING ROWS ($held < $before)")" >>"$work/live"
}
echo "live writer runs" >&2
live "sqlite3 .backup" "$work/b-cli.db" sqlite3 "$db" ".backup $work/b-cli.db"
for i in 1 2 3; do
	live "cfrollback database backup" "$work/b-cfr.db" "$cfr" database backup --db memory --output "$work/b-cfr.db"
done

row() { # row LABEL NAME [REF]
	local m
	m=$(median "$2")
	if [ -n "${3:-}" ]; then
		printf '%-44s %6d ms  %5sx   (%s)\n' "$1" "$m" "$(echo "scale=2; $m / $(median "$3")" | bc)" "$(all "$2")"
	else
		printf '%-44s %6d ms          (%s)\n' "$1" "$m" "$(all "$2")"
	fi
}
echo
echo "database: $(du -m "$db" | cut -f1) MB, $runs runs, median (all runs, sorted)"
row "sqlite3 DB .backup FILE" cli_backup
row "cfrollback database backup" cfr_backup cli_backup
col() { cut -d' ' -f"$1" "$work/cfr_phases" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "    phases, median: copy done at $(col 1) ms, copy fsynced (what .backup does) at $(col 2) ms;"
echo "    after the copy, side by side: integrity_check $(col 3) ms, sha256 $(col 4) ms, fsync"
row ".backup + integrity_check + sha256sum" shell_backup cli_backup
row "sqlite3 DB 'PRAGMA quick_check'" cli_quick
row "cfrollback database check --quick" cfr_quick cli_quick
row "sqlite3 DB 'PRAGMA integrity_check'" cli_integrity
row "cfrollback database check" cfr_integrity cli_integrity
echo "live writer (a sqlite3 process committing every few ms, checkpointing every 20 pages):"
cat "$work/live"
