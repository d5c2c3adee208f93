package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
)

// An unreadable checkpoint's error with a second line stays on its row: the checkpoints
// after it keep their own app version, reason and file.
func TestPrintCheckpointsOneLinePerCheckpoint(t *testing.T) {
	now := time.Date(2025, 1, 4, 14, 0, 0, 0, time.Local)
	list := []appconfig.CheckpointInfo{
		{Path: "/b/config/config-checkpoint-20250104-135900.json", Time: now.Add(-time.Minute), AppVersion: "2.0.0-alpha.83",
			Reason: "before set claude.baseUrl", User: "root", SHA256: strings.Repeat("ab", 32)},
		{Path: "/b/config/config-checkpoint-20250104-120000.json", Time: now.Add(-2 * time.Hour),
			Error: "decode: invalid character 'x'\nat line 3, column 4"},
		{Path: "/b/config/config-checkpoint-20250101-000000.json", Time: now.Add(-3*24*time.Hour - 14*time.Hour), AppVersion: "2.0.0-alpha.82",
			Reason: "config backup", User: "ops", SHA256: strings.Repeat("cd", 32)},
	}
	var out bytes.Buffer
	if err := printCheckpoints(&out, list, now); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != 4 {
		t.Fatalf("%d lines, want a header and 3 rows:\n%s", len(got), out.String())
	}
	for i, want := range []string{
		"TIME AGE APP VERSION REASON USER SHA256 FILE",
		"2025-01-04 13:59:00 1m ago 2.0.0-alpha.83 before set claude.baseUrl root abababababab config-checkpoint-20250104-135900.json",
		"2025-01-04 12:00:00 2h ago - UNREADABLE: decode: invalid character 'x'; at line 3, column 4 - - config-checkpoint-20250104-120000.json",
		"2025-01-01 00:00:00 3d14h ago 2.0.0-alpha.82 config backup ops cdcdcdcdcdcd config-checkpoint-20250101-000000.json",
	} {
		if strings.Join(strings.Fields(got[i]), " ") != want {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, got[i], want)
		}
	}
	// the FILE column starts at the same place on every row
	col := strings.Index(got[0], "FILE")
	for _, l := range got[1:] {
		if !strings.HasPrefix(l[col:], "config-checkpoint-") {
			t.Errorf("FILE column (at %d) shifted: %q", col, l)
		}
	}
}
