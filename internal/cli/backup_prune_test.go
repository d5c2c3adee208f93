package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/backup"
	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/ui"
)

// A reason or a name with a second line stays on its item's row: the ACTION of the rows
// after it is not shifted onto another backup.
func TestPrintPruneOneLinePerItem(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	res := &runbook.PruneResult{Keep: 1, MaxAge: "7d",
		Backups: []backup.PruneItem{
			{ID: "20250110-000000", Time: now.Add(-12 * time.Hour), Size: 1536, Reason: "one of the newest 1"},
			{ID: "20250101-000000", Time: now.Add(-9*24*time.Hour - 12*time.Hour), Size: 3 << 30, Delete: true,
				Reason: "in use by run r1\nand a second line"},
			{ID: "20241201-000000", Time: now.Add(-40 * 24 * time.Hour), Size: 512, Delete: true, Reason: "5w5d old, older than 7d"},
		},
		FailedDirs: []backup.PruneItem{{ID: "app-failed-\n20250101", Time: now.Add(-24 * time.Hour), Reason: "failed dirs are deleted only with --failed-older-than"}},
		Deleted:    2, Freed: 3<<30 + 512,
	}
	var out bytes.Buffer
	printPrune(&ui.IO{Out: &out}, res, now)
	want := []string{
		"ACTION  ID                    AGE          SIZE     WHY",
		"keep    20250110-000000       12h ago      1.5 KiB  one of the newest 1",
		"delete  20250101-000000       9d12h ago    3.0 GiB  in use by run r1; and a second line",
		"delete  20241201-000000       5w5d ago     512 B    5w5d old, older than 7d",
		"keep    app-failed-; 20250101  1d ago       0 B      failed dirs are deleted only with --failed-older-than",
		"deleted 2, freed 3.0 GiB",
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if strings.Join(strings.Fields(got[i]), " ") != strings.Join(strings.Fields(want[i]), " ") {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, got[i], want[i])
		}
	}
	// ACTION, ID, AGE, SIZE and WHY start at the same column on every row
	for _, h := range []string{"ID", "AGE", "SIZE", "WHY"} {
		col := strings.Index(got[0], h)
		for _, l := range got[1:5] {
			if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("column %s (at %d) shifted: %q", h, col, l)
			}
		}
	}
}
