#!/usr/bin/env bash
# make-fixtures.sh: rebuild the archive fixtures that internal/archive's tests
# extract: gnutar.tar.gz (GNU tar, gnu format: ././@LongLink names) and
# bsdtar.tar.gz (libarchive, restricted pax), both of one source tree, and
# fixture-tree.txt, that tree's listing as stat(1) and sha256sum(1) see it.
# The listing comes from the tree itself, not from our code, so the tests
# compare the extractor against an independent account of what it should make.
#
# Deterministic: fixed contents, modes and mtimes, sorted entries, owner 0,
# gzip -n. Needs GNU tar, bsdtar (libarchive-tools), GNU coreutils; run as any
# user. Run it again only to change the fixtures, then commit all three files.
set -euo pipefail
cd "$(dirname "$0")"
umask 022
export LC_ALL=C

work=$(mktemp -d)
trap 'chmod -R u+rwx "$work"; rm -rf "$work"' EXIT
src=$work/src
long_dir=$(printf 'd%.0s' {1..100})
long_file=$(printf 'f%.0s' {1..150}).txt
long_top=$(printf 'l%.0s' {1..120}).txt

mkdir -p "$src/bin" "$src/data/empty-dir" "$src/ro" "$src/$long_dir"
printf 'hello\n' >"$src/hello.txt"
printf 'password=hunter2\n' >"$src/secret.conf"
printf '#!/bin/sh\necho run\n' >"$src/bin/run.sh"
: >"$src/empty-file"
printf 'unicode\n' >"$src/héllo wörld ☃.txt"
printf 'name over 100 bytes\n' >"$src/$long_top"
printf 'path over 255 bytes\n' >"$src/$long_dir/$long_file"
printf 'one inode, two names\n' >"$src/data/hard-a.txt"
ln "$src/data/hard-a.txt" "$src/data/hard-b.txt"
printf 'inside a read-only dir\n' >"$src/ro/inside.txt"
ln -s run.sh "$src/bin/run-link"
ln -s bin "$src/bin-link"
ln -s ../hello.txt "$src/data/up-link"
ln -s does-not-exist "$src/dangling"

chmod 0640 "$src/secret.conf"
chmod 0755 "$src/bin/run.sh"
chmod 0600 "$src/empty-file"
chmod 0444 "$src/ro/inside.txt"
chmod 0700 "$src/data/empty-dir"
chmod 0555 "$src/ro"
chmod 0750 "$src"

# Every path gets its own whole-second mtime. Reverse sorting lists children
# before their parent, so touching a child never moves a parent's mtime later.
i=0
while IFS= read -r -d '' p; do
  touch -h -d "@$((1700000000 + i * 61))" "$p"
  i=$((i + 1))
done < <(find "$src" -print0 | sort -rz)

tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner -C "$src" -cf - . |
  gzip -n -9 >gnutar.tar.gz
(cd "$src" && find . -print0 | sort -z |
  LC_ALL=C.UTF-8 bsdtar --uid 0 --gid 0 --numeric-owner --null -n -T - -cf -) |
  gzip -n -9 >bsdtar.tar.gz

# One line per path, sorted by path:
#   d MODE MTIME PATH
#   f MODE MTIME NLINK SIZE SHA256 PATH
#   l MTIME PATH -> TARGET
(cd "$src" && find . -print0 | sort -z | while IFS= read -r -d '' p; do
  case $(stat -c %F "$p") in
    directory) printf 'd %s %s\n' "$(stat -c '%a %Y' "$p")" "$p" ;;
    'regular file' | 'regular empty file')
      printf 'f %s %s %s\n' "$(stat -c '%a %Y %h %s' "$p")" "$(sha256sum <"$p" | cut -d' ' -f1)" "$p" ;;
    'symbolic link') printf 'l %s %s -> %s\n' "$(stat -c %Y "$p")" "$p" "$(readlink "$p")" ;;
    *) echo "make-fixtures: unexpected type of $p" >&2; exit 1 ;;
  esac
done) >fixture-tree.txt

echo "make-fixtures: wrote gnutar.tar.gz bsdtar.tar.gz fixture-tree.txt" >&2
