#!/usr/bin/env bash
# bench-realapp.sh [ROUNDS]: the real claude-flow (npm, tools/claude-flow) as the service, under
# the systemd sandbox and under pm2: a plain restart of the healthy app (the floor) against
# `cfrollback emergency` cold (no standby: it extracts the backup) and warm (from the standby
# `standby refresh` left), on the same install, per round. A prober polling the health URL
# every 10 ms from the command times each: command -> healthy (c2h: the first passing probe
# after a failing one) and downtime (first failing probe -> that passing one); the emergency's
# own downtime_ms and whole command time are printed too.
# Runs the real-app emergency tests (internal/integration/realapp_test.go) ROUNDS times each,
# prints their FIGURES, step and timeline lines, then a table of the figures. Needs root (systemd
# sandbox) and scripts/setup-deps.sh's installs.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_require_root "the real-app tests run claude-flow under the systemd sandbox (scripts/systemd-sandbox)"
bench_require go
cd "$(dirname "$0")/.."
rounds=${1:-3}
bash scripts/setup-deps.sh
figures=$(mktemp)
trap 'rm -f "$figures"' EXIT
echo "load before: $(cat /proc/loadavg)"
for i in $(seq "$rounds"); do
  for t in TestRealClaudeFlowEmergencySystemd TestRealClaudeFlowEmergencyPM2; do
    CI=true go test -count=1 -timeout 20m -run "^$t\$" -v ./internal/integration/ 2>&1 |
      grep -E 'FIGURES|emergency (steps|timeline)|^(--- |FAIL|ok )' | sed "s/^/round $i: /" | tee -a "$figures"
  done
done
echo "load after: $(cat /proc/loadavg)"
echo
# One row per FIGURES line: c2h and downtime as the prober saw them, the emergency's own
# downtime_ms (stop -> its first passing probe), and the ratios of c2h to the restart's.
printf '%-8s %5s %10s %10s %10s %10s %10s %10s %10s %9s %9s\n' manager round restart cold cold_down \
  cold_dt_ms warm warm_down warm_dt_ms warm/rst cold/rst
grep FIGURES "$figures" | perl -ne '
  /^round (\d+):.* under (\S+): restart c2h (\d+) ms .*; cold c2h (\d+) ms \(downtime (\d+) ms\), downtime_ms (\d+),.*; warm c2h (\d+) ms \(downtime (\d+) ms\), downtime_ms (\d+),.*warm\/restart ([\d.]+x), cold\/restart ([\d.]+x)/ and
    printf "%-8s %5s %10s %10s %10s %10s %10s %10s %10s %9s %9s\n", $2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11'
