#!/usr/bin/env bash
# bench-realapp.sh [ROUNDS]: the real claude-flow (npm, tools/claude-flow) as the service, under
# the systemd sandbox and under pm2: a plain restart (the floor: command -> healthy) against
# `cfrollback emergency` (downtime_ms, and command -> healthy) on the same install, per round.
# Runs the real-app emergency tests (internal/integration/realapp_test.go) ROUNDS times each and
# prints their FIGURES lines. Needs root (systemd sandbox) and scripts/setup-deps.sh's installs.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_require_root "the real-app tests run claude-flow under the systemd sandbox (scripts/systemd-sandbox)"
bench_require go
cd "$(dirname "$0")/.."
rounds=${1:-3}
bash scripts/setup-deps.sh
for i in $(seq "$rounds"); do
  for t in TestRealClaudeFlowEmergencySystemd TestRealClaudeFlowEmergencyPM2; do
    CI=true go test -count=1 -timeout 20m -run "^$t\$" -v ./internal/integration/ 2>&1 |
      grep -E 'FIGURES|emergency steps|^(--- |FAIL|ok )' | sed "s/^/round $i: /"
  done
done
