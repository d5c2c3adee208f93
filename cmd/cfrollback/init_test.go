package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// initLine is one line of GODEBUG=inittrace=1: "init PKG @T ms, C ms clock, B bytes, N allocs".
var initLine = regexp.MustCompile(`^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes, (\d+) allocs$`)

// TestOwnPackageInitIsSmall holds cfrollback's own package-level work at start to what every
// command needs: a regexp, map or table that only some commands use is made at first use
// (sync.OnceValue), not in package init, which runs at every start of every command, the
// emergency's too (docs/BENCHMARKS.md, "Where a warm emergency's fixed time goes"). Before:
// 188 KB allocated by internal/*'s init in the stamped binary (runbook, appconfig, sqlitedb,
// assess, logs); after: 14 KB, 31 KB here, where the binary is not stamped and cli reads its
// build info. It runs this test binary, which links every package cfrollback does, with no
// test selected.
func TestOwnPackageInitIsSmall(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s -test.run=^$: %v\n%s", os.Args[0], err, stderr.String())
	}
	const limit = 40 << 10
	total, seen := 0, 0
	var own []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		m := initLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		seen++
		if !strings.HasPrefix(m[1], "github.com/cfrollback/cfrollback/internal/") { // not this test's own package
			continue
		}
		n, _ := strconv.Atoi(m[2])
		total += n
		own = append(own, m[1]+" "+m[2]+" bytes")
	}
	if seen < 50 || len(own) < 5 {
		t.Fatalf("%d init lines, %d of ours: is GODEBUG=inittrace=1's format still the one parsed?\n%s", seen, len(own), stderr.String())
	}
	if total > limit {
		t.Errorf("cfrollback's own packages allocate %d bytes in package init (limit %d): make what only some commands need lazy (sync.OnceValue)\n%s",
			total, limit, strings.Join(own, "\n"))
	}
	t.Logf("own package init: %d bytes in %d packages", total, len(own))
}
