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

PM2_VERSION=${PM2_VERSION:-7.0.4}
if [ ! -x tools/pm2/node_modules/.bin/pm2 ] && command -v npm >/dev/null; then
  echo "setup-deps: npm install pm2@$PM2_VERSION into tools/pm2" >&2
  mkdir -p tools/pm2
  (cd tools/pm2 && { [ -f package.json ] || echo '{"name":"cfrollback-tools","private":true}' >package.json; } \
    && npm install --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" >/dev/null) \
    || echo "setup-deps: pm2 install failed; pm2 tests will skip (or fail with CI=true)" >&2
fi
exit 0
