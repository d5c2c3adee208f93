package appconfig

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidateSetAndPlanReplace(t *testing.T) {
	files, err := Template("executive-assistant")
	if err != nil {
		t.Fatal(err)
	}
	n, err := ValidateSet(files)
	if err != nil || n == 0 {
		t.Fatalf("the template: %d agents, %v", n, err)
	}
	dup := append(slices.Clone(files), BundleFile{Path: "copy-" + files[0].Path, Mode: files[0].Mode, SHA256: files[0].SHA256, Size: files[0].Size, Content: files[0].Content})
	if _, err := ValidateSet(dup); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("a set with a duplicate name: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "agents")
	plan, err := PlanReplace(dir, files)
	if err != nil || len(plan.Added) != len(files) || len(plan.Changed)+len(plan.Removed)+plan.Same != 0 {
		t.Fatalf("into a missing dir: %+v %v", plan, err)
	}
	if err := ReplaceDir(dir, files, time.Now()); err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(files[:len(files)-1])
	changed[0].Mode = "0600"
	plan, err = PlanReplace(dir, changed)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Added) != 0 || len(plan.Changed) != 1 || plan.Changed[0] != files[0].Path || len(plan.Removed) != 1 ||
		plan.Removed[0] != files[len(files)-1].Path || plan.Same != len(files)-2 {
		t.Errorf("a mode changed and a file dropped: %+v", plan)
	}
	sts, valid, ok, err := SetStatus(dir)
	if err != nil || !ok || valid != n || len(sts) != len(files) {
		t.Errorf("status: %d statuses, %d valid, ok %v, %v", len(sts), valid, ok, err)
	}
	if _, valid, ok, err := SetStatus(filepath.Join(dir, "nope")); err != nil || ok || valid != 0 {
		t.Errorf("a missing dir is not ok: %d %v %v", valid, ok, err)
	}
}
