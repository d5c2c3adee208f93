#!/usr/bin/env bash
# Side-by-side timing of cfrollback's backup create / verify / extract against
# GNU tar + gzip on a generated install tree (issue 3's speed and memory
# targets), in one run, alternating the tools within each round.
#
# Usage: scripts/bench-backup.sh [MB] [FILES] [ROUNDS]   (default 500 MB, 20000 files, 3 rounds)
# Needs: go, GNU tar, gzip, python3, /usr/bin/time. Everything lives under a
# new temp dir in ${TMPDIR:-/tmp} (give TMPDIR on the disk you care about),
# removed at the end. Prints a markdown table of medians (wall) and maxima
# (peak RSS) over the rounds.
#
# What each row runs (the archive is cfrollback's own backup of the round):
#   tar -czf            tar -C TREE -czf gnu.tar.gz .
#   backup create       cfrollback backup create  (manifest with per-file sha256, fsync, rename)
#   gzip -t + tar -tzf  gzip -t A && tar -tzf A >/dev/null
#   backup verify       cfrollback backup verify ID  (every entry checked, every file's sha256
#                       compared with the manifest)
#   tar -xzf            mkdir X && tar -xzf A -C X   (then 'sync -f X', timed apart: tar leaves
#                       the data dirty in the page cache, cfrollback's extract ends with syncfs)
#   extract             archive.Extract into a fresh dir, as emergency extracts into staging:
#                       "extract_ms" of 'cfrollback test backup-restore --json' (it includes the
#                       syncfs); its peak RSS is the whole drill's (extract, then re-reading
#                       and hashing every restored file)
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_require go tar gzip python3 /usr/bin/time
MB=${1:-500}
FILES=${2:-20000}
ROUNDS=${3:-3}
root=$(mktemp -d "${TMPDIR:-/tmp}/cfrollback-bench.XXXXXX")
trap 'rm -rf "$root"' EXIT
bin=$root/cfrollback
go build -o "$bin" ./cmd/cfrollback

install=$root/app
mkdir -p "$install" "$root/backups"
# Half compressible text (JS-like lines with varying numbers), half
# incompressible bytes, in 200 directories.
per=$((MB * 1024 * 1024 / FILES))
python3 - "$install" "$FILES" "$per" <<'PY'
import os, sys
root, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "pkg%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.%s" % (i, "bin" if i % 2 else "js")), "wb") as f:
        if i % 2:
            f.write(os.urandom(per))
        else:
            lines, k = [], 0
            while sum(map(len, lines)) < per:
                lines.append(b"export function handler%d(req, res) { return res.json({ ok: true, id: %d, ts: Date.now() }); }\n" % (k, i * 7919 + k))
                k += 1
            f.write(b"".join(lines)[:per])
PY
sync
export CFROLLBACK_INSTALL_DIR=$install CFROLLBACK_BACKUP_DIR=$root/backups \
  CFROLLBACK_BACKUP_STATE=$root/state/backups.json CFROLLBACK_JOURNAL=$root/j.jsonl \
  CFROLLBACK_LOCK=$root/lock CFROLLBACK_STATE_DIR=$root/state CFROLLBACK_LOG_DIR=$root/log \
  CFROLLBACK_DATABASE_BACKUP_DIR=$root/dbbackups NO_COLOR=1
results=$root/results
: >"$results"

# measure LABEL CMD...: sync, run CMD once (stdout to $root/out), record wall s and peak RSS KiB.
# With NOSYNC=1 the sync before is left out (to time a sync of what the previous step left).
measure() {
  local label=$1
  shift
  [ -n "${NOSYNC:-}" ] || sync
  if ! /usr/bin/time -f "%e %M" -o "$root/time" "$@" >"$root/out" 2>"$root/err"; then
    echo "$label failed:" >&2
    cat "$root/err" >&2
    exit 1
  fi
  echo "$label $(tail -1 "$root/time")" >>"$results"
}

tar_extract() {
  measure tar_xzf sh -c "mkdir '$root/x' && tar -xzf '$a' -C '$root/x'"
  NOSYNC=1 measure tar_sync sync -f "$root/x"
  rm -rf "$root/x"
}
drill_extract() {
  measure restore_test "$bin" test backup-restore "$id" --json
  local ms rss
  ms=$(grep -o '"extract_ms": [0-9]*' "$root/out" | grep -o '[0-9]*$')
  rss=$(awk '$1 == "restore_test" { v = $3 } END { print v }' "$results")
  echo "extract $(awk -v ms="$ms" 'BEGIN { printf "%.2f", ms / 1000 }') $rss" >>"$results"
}

echo "tree: $(du -sm "$install" | cut -f1) MB in $(find "$install" -type f | wc -l) files; $(nproc) cores; $ROUNDS rounds" >&2
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r" >&2
  rm -rf "$root"/backups/* "$root/gnu.tar.gz" "$root/x"
  measure tar_czf tar -C "$install" -czf "$root/gnu.tar.gz" .
  echo "size_tar $(stat -c %s "$root/gnu.tar.gz") 0" >>"$results"
  rm -f "$root/gnu.tar.gz"
  measure create "$bin" backup create --json
  a=$(ls "$root"/backups/backup-*.tar.gz)
  id=$(basename "$a" .tar.gz)
  id=${id#backup-}
  echo "size_create $(stat -c %s "$a") 0" >>"$results"
  measure gzip_t_tar_tzf sh -c "gzip -t '$a' && tar -tzf '$a' >/dev/null"
  measure verify "$bin" backup verify "$id"
  # The two extractions take turns going first: each leaves 500 MB of freed
  # or dirty blocks behind for the filesystem to deal with.
  if [ $((r % 2)) = 1 ]; then
    tar_extract
    drill_extract
  else
    drill_extract
    tar_extract
  fi
  sleep 1 # backup IDs are per second
done

python3 - "$results" "$MB" "$FILES" "$ROUNDS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, wall, rss = line.split()
    rows.setdefault(k, []).append((float(wall), int(rss)))
med = lambda k: statistics.median(w for w, _ in rows[k])
rss = lambda k: max(r for _, r in rows[k]) / 1024
allw = lambda k: ", ".join("%.2f" % w for w, _ in rows[k])
size = lambda k: statistics.median(w for w, _ in rows[k])
print("| | wall, median of %s | ratio | peak RSS | size | all rounds (s) |" % sys.argv[4])
print("| --- | --- | --- | --- | --- | --- |")
print("| `tar -czf` | %.2f s | | %.1f MiB | %.1f MB | %s |" % (med("tar_czf"), rss("tar_czf"), size("size_tar") / 1e6, allw("tar_czf")))
print("| `backup create` | %.2f s | %.2fx tar -czf | %.1f MiB | %.1f MB (%+.1f%%) | %s |" % (med("create"), med("create") / med("tar_czf"), rss("create"),
      size("size_create") / 1e6, 100 * (size("size_create") / size("size_tar") - 1), allw("create")))
print("| `gzip -t` + `tar -tzf` | %.2f s | | %.1f MiB | | %s |" % (med("gzip_t_tar_tzf"), rss("gzip_t_tar_tzf"), allw("gzip_t_tar_tzf")))
print("| `backup verify` | %.2f s | %.1fx faster | %.1f MiB | | %s |" % (med("verify"), med("gzip_t_tar_tzf") / med("verify"), rss("verify"), allw("verify")))
print("| `tar -xzf` | %.2f s | | %.1f MiB | | %s |" % (med("tar_xzf"), rss("tar_xzf"), allw("tar_xzf")))
print("| `tar -xzf` + `sync -f` | %.2f s | | | | sync: %s |" % (statistics.median(a[0] + b[0] for a, b in zip(rows["tar_xzf"], rows["tar_sync"])), allw("tar_sync")))
print("| extract (archive.Extract, syncfs included) | %.2f s | %.2fx tar -xzf | %.1f MiB (whole drill) | | %s |" % (med("extract"), med("extract") / med("tar_xzf"), rss("extract"), allw("extract")))
print("| `test backup-restore` (extract + compare + db checks) | %.2f s | | %.1f MiB | | %s |" % (med("restore_test"), rss("restore_test"), allw("restore_test")))
PY
