package appconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// ValidateSet checks a new agent set as a whole (each definition, names unique) and counts
// its agent definitions; an invalid set is an error naming every problem.
func ValidateSet(files []BundleFile) (agents int, err error) {
	var problems []string
	for _, s := range CheckSet(files) {
		for _, e := range s.Errors {
			problems = append(problems, s.File+": "+e)
		}
		if s.OK() && s.Agent != nil {
			agents++
		}
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("the new agent set is invalid, nothing was changed: %s", strings.Join(problems, "; "))
	}
	return agents, nil
}

// ReplacePlan is what replacing dir's set with a new one would do: the files it adds,
// changes (content or mode) and removes, and how many stay the same.
type ReplacePlan struct {
	Added   []string `json:"added"`
	Changed []string `json:"changed"`
	Removed []string `json:"removed"`
	Same    int      `json:"unchanged"`
}

// PlanReplace compares files with the set in dir (a missing dir holds none).
func PlanReplace(dir string, files []BundleFile) (ReplacePlan, error) {
	cur, err := ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ReplacePlan{}, fmt.Errorf("read the current set: %w", err)
	}
	plan := ReplacePlan{Added: []string{}, Changed: []string{}, Removed: []string{}}
	old := map[string]BundleFile{}
	for _, f := range cur {
		old[f.Path] = f
	}
	for _, f := range files {
		c, ok := old[f.Path]
		switch {
		case !ok:
			plan.Added = append(plan.Added, f.Path)
		case c.SHA256 != f.SHA256 || c.Mode != f.Mode:
			plan.Changed = append(plan.Changed, f.Path)
		default:
			plan.Same++
		}
		delete(old, f.Path)
	}
	for p := range old {
		plan.Removed = append(plan.Removed, p)
	}
	sort.Strings(plan.Removed)
	return plan, nil
}

// SetStatus is every definition in dir checked, and how many are valid agents; OK only when
// every one is valid and there is at least one.
func SetStatus(dir string) (sts []AgentStatus, valid int, ok bool, err error) {
	files, err := ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, false, fmt.Errorf("read agents dir: %w", err)
	}
	sts = []AgentStatus{}
	if s := CheckSet(files); s != nil {
		sts = s
	}
	ok = true
	for _, s := range sts {
		if !s.OK() {
			ok = false
		} else if s.Agent != nil {
			valid++
		}
	}
	return sts, valid, ok && valid > 0, nil
}
