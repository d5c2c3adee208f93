#!/usr/bin/env bash
# setup-deps.sh: install what `make test` and `make demo` need on a fresh Debian machine.
# Idempotent: it only installs what is missing. pm2 goes into ./tools/pm2 (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
command -v bsdtar >/dev/null || need_apt+=(libarchive-tools)
command -v tar >/dev/null || need_apt+=(tar)
command -v gzip >/dev/null || need_apt+=(gzip)
command -v node >/dev/null || need_apt+=(nodejs npm)
if [ "$(id -u)" = 0 ]; then
  [ -x /lib/systemd/systemd ] || need_apt+=(systemd)
  command -v dbus-daemon >/dev/null || need_apt+=(dbus)
  command -v unshare >/dev/null || need_apt+=(util-linux)
  command -v pgrep >/dev/null || need_apt+=(procps)
  command -v ansible-playbook >/dev/null || need_apt+=(ansible-core)
  command -v ansible-lint >/dev/null || need_apt+=(ansible-lint)
  command -v dpkg >/dev/null || need_apt+=(dpkg)
  command -v man >/dev/null || need_apt+=(man-db)
  command -v mount >/dev/null || need_apt+=(mount)
  command -v nsenter >/dev/null || need_apt+=(util-linux)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup-deps: apt-get install ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup-deps: missing ${need_apt[*]} and cannot apt-get (not root); tests needing them will skip (or fail with CI=true)" >&2
  fi
fi

# One setup-deps at a time per tools folder (worktrees share it through a link): two at once
# would each remove the other's half-done .tmp-<version> install. apt-get has its own lock.
mkdir -p tools
if command -v flock >/dev/null; then
  exec 9>tools/.setup-deps.lock
  flock -w 1800 9 || { echo "setup-deps: another setup-deps has held tools/.setup-deps.lock for 30 minutes; is one stuck?" >&2; exit 1; }
fi

PM2_VERSION=${PM2_VERSION:-7.0.4}
if [ ! -x tools/pm2/node_modules/.bin/pm2 ] && command -v npm >/dev/null; then
  echo "setup-deps: npm install pm2@$PM2_VERSION into tools/pm2" >&2
  mkdir -p tools/pm2
  (cd tools/pm2 && { [ -f package.json ] || echo '{"name":"cfrollback-tools","private":true}' >package.json; } \
    && npm install --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" >/dev/null) \
    || echo "setup-deps: pm2 install failed; pm2 tests will skip (or fail with CI=true)" >&2
fi

# The real Claude Flow, the reference service of the end-to-end tests: two published versions
# from the npm registry, each in tools/claude-flow/<version> (an npm prefix, laid out like a host
# install's node_modules). The first is the known-good release, the second the new deploy.
# Installing the first compiles better-sqlite3 with node-gyp (about 2-3 minutes on 2 cores);
# the second starts from a copy of the first and lets npm change only what differs, so when
# both use the same better-sqlite3 nothing is compiled twice. A version counts as cached only
# when its .cfrollback-ok marker exists (written after `claude-flow --version` answered it),
# so an install killed half way is redone, never used.
CLAUDE_FLOW_VERSIONS=${CLAUDE_FLOW_VERSIONS:-"2.0.0-alpha.113 2.0.0"}
cf_install() { # version [copy-from-dir]
  local v=$1 from=${2:-} dir=tools/claude-flow/$1 tmp=tools/claude-flow/.tmp-$1
  rm -rf "$tmp"
  if [ -n "$from" ]; then cp -a "$from" "$tmp" && rm -f "$tmp/.cfrollback-ok"; else mkdir -p "$tmp"; fi
  (cd "$tmp" && { [ -f package.json ] || echo '{"name":"cfrollback-tools-claude-flow","private":true}' >package.json; } \
    && JOBS=max npm install --prefer-offline --no-audit --no-fund --save-exact --loglevel=error "claude-flow@$v" >/dev/null) || return 1
  local got
  got=$(cd "$tmp" && node_modules/.bin/claude-flow --version 2>/dev/null | head -1) || return 1
  [ "$got" = "v$v" ] || { echo "setup-deps: claude-flow@$v answers --version with '$got'" >&2; return 1; }
  echo "$v" >"$tmp/.cfrollback-ok"
  rm -rf "$dir" && mv "$tmp" "$dir"
}
if command -v npm >/dev/null; then
  prev=
  for v in $CLAUDE_FLOW_VERSIONS; do
    if [ ! -f "tools/claude-flow/$v/.cfrollback-ok" ]; then
      echo "setup-deps: npm install claude-flow@$v into tools/claude-flow/$v${prev:+ (from a copy of $prev)}" >&2
      start=$(date +%s)
      if cf_install "$v" "${prev:+tools/claude-flow/$prev}"; then
        echo "setup-deps: claude-flow@$v installed in $(( $(date +%s) - start )) s" >&2
      else
        rm -rf "tools/claude-flow/.tmp-$v"
        echo "setup-deps: claude-flow@$v install failed; real-app tests will skip (or fail with CI=true)" >&2
      fi
    fi
    [ -f "tools/claude-flow/$v/.cfrollback-ok" ] && prev=$v
  done
fi

# golangci-lint for `make lint` (part of `make test`), pinned: a new release brings new checks,
# so it is upgraded on purpose, with the findings fixed in the same commit.
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
if [ ! -x tools/gobin/golangci-lint ] || ! tools/gobin/golangci-lint version 2>/dev/null | grep -q "version ${GOLANGCI_LINT_VERSION#v} "; then
  echo "setup-deps: go install golangci-lint@$GOLANGCI_LINT_VERSION into tools/gobin (a few minutes on a fresh machine)" >&2
  GOBIN="$PWD/tools/gobin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION" \
    || echo "setup-deps: golangci-lint install failed; make lint will fail" >&2
fi
exit 0
