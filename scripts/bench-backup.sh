#!/usr/bin/env bash
# Side-by-side timing of cfrollback backup create/verify against GNU tar + gzip
# on a generated install tree (issue 3's speed targets).
# Usage: scripts/bench-backup.sh [MB] [FILES]   (default 500 MB, 20000 files)
# Needs: go, GNU tar, gzip, /usr/bin/time. Everything lives under a temp dir.
set -euo pipefail
MB=${1:-500}
FILES=${2:-20000}
root=$(mktemp -d /var/tmp/cfrollback-bench.XXXXXX)
trap 'rm -rf "$root"' EXIT
bin=$root/cfrollback
go build -o "$bin" ./cmd/cfrollback

install=$root/app
mkdir -p "$install"
# Half compressible text (repeated JS-like lines), half incompressible bytes.
per=$(( MB * 1024 * 1024 / FILES ))
python3 - "$install" "$FILES" "$per" <<'PY'
import os, sys
root, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line = b"export function handler(req, res) { return res.json({ ok: true, ts: Date.now() }); }\n"
for i in range(n):
    d = os.path.join(root, "pkg%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(per) if i % 2 else (line * (per // len(line) + 1))[:per])
PY
sync
export CFROLLBACK_INSTALL_DIR=$install CFROLLBACK_BACKUP_DIR=$root/backups \
  CFROLLBACK_BACKUP_STATE=$root/state/backups.json CFROLLBACK_JOURNAL=$root/j.jsonl CFROLLBACK_LOCK=$root/lock
t() { /usr/bin/time -f "%e s wall, %M KiB max RSS" "$@" 2>&1 >/dev/null | tail -1; }

echo "tree: $(du -sm "$install" | cut -f1) MB, $FILES files, $(nproc) cores"
echo "tar -czf:                $(t tar -C "$install" -czf "$root/gnu.tar.gz" .)   size $(stat -c %s "$root/gnu.tar.gz")"
echo "cfrollback backup create: $(t "$bin" backup create)   size $(stat -c %s "$root"/backups/backup-*.tar.gz)"
a=$(ls "$root"/backups/backup-*.tar.gz)
echo "gzip -t + tar -tzf:      $(t sh -c "gzip -t '$a' && tar -tzf '$a'")"
echo "cfrollback backup verify: $(t "$bin" backup verify --all)"
echo "tar -xzf:                $(t sh -c "mkdir '$root/x1' && tar -xzf '$a' -C '$root/x1'")"
echo "cfrollback verify --deep: $(t "$bin" backup verify --all --deep)   (verify + extract to a temp dir)"
