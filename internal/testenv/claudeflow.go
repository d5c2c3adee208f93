package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The two published claude-flow versions scripts/setup-deps.sh installs from the npm registry:
// the known-good release and the new deploy of the end-to-end tests.
const (
	ClaudeFlowGood = "2.0.0-alpha.113"
	ClaudeFlowNew  = "2.0.0"
)

// ClaudeFlow returns the npm prefix that holds the real claude-flow@version (its
// node_modules, with better-sqlite3 compiled) as scripts/setup-deps.sh installs it at
// <repo>/tools/claude-flow/<version>. A prefix counts only when setup-deps finished it (its
// .cfrollback-ok marker names the version); node must be in PATH to run it. Require
// semantics: skipped locally, failed with CI=true.
//
// The prefix is a shared cache: copy it (CopyTree) into a test's install dir, never run the
// app or npm in it.
func ClaudeFlow(t testing.TB, version string) string {
	t.Helper()
	RequireTool(t, "node")
	RequireTool(t, "npm")
	dir := filepath.Join(RepoRoot(t), "tools", "claude-flow", version)
	mark, err := os.ReadFile(filepath.Join(dir, ".cfrollback-ok"))
	ok := err == nil && strings.TrimSpace(string(mark)) == version &&
		isExecutable(filepath.Join(dir, "node_modules", ".bin", "claude-flow"))
	Require(t, ok, "claude-flow@"+version+" in tools/claude-flow/"+version,
		"run scripts/setup-deps.sh (it installs claude-flow "+ClaudeFlowGood+" and "+ClaudeFlowNew+" from the npm registry)")
	return dir
}
