#!/bin/sh
# bench-db.sh: cfrollback database backup / check --quick against the sqlite3 CLI on the
# same generated database, side by side in one run. Usage: scripts/bench-db.sh [SIZE_MB]
# Needs sqlite3 and go. Works in a temp dir; touches nothing else.
set -eu
size_mb=${1:-500}
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
ls -l "$db" >&2
export CFROLLBACK_INSTALL_DIR="$work/app" CFROLLBACK_DATABASE_BACKUP_DIR="$work/db" NO_COLOR=1
t() { # t LABEL CMD...: wall seconds of CMD (page cache warm: the file was just written)
	s=$(date +%s.%N); "$@" >/dev/null 2>&1 || echo "$1 FAILED" >&2; e=$(date +%s.%N)
	printf '%-48s %6.2f s\n' "$label" "$(echo "$e - $s" | bc)"
}
for i in 1 2; do
	label="sqlite3 .backup (run $i)"; t sqlite3 "$db" ".backup $work/cli-$i.db"
	label="cfrollback database backup (run $i)"; t "$work/cfrollback" database backup --db memory --output "$work/cfr-$i.db"
	"$work/cfrollback" database backup --db memory --output "$work/cfrj-$i.db" --json 2>/dev/null |
		sed -n 's/.*"\(copy_ms\|check_ms\|duration_ms\)": \([0-9]*\).*/    cfrollback \1=\2/p'
	label="sqlite3 PRAGMA quick_check (run $i)"; t sqlite3 "$db" "PRAGMA quick_check"
	label="cfrollback database check --quick (run $i)"; t "$work/cfrollback" database check --db memory --quick
	label="sqlite3 PRAGMA integrity_check (run $i)"; t sqlite3 "$db" "PRAGMA integrity_check"
	label="cfrollback database check (run $i)"; t "$work/cfrollback" database check --db memory
done
