package appconfig

import (
	"context"
	"os"
	"path/filepath"
)

// SetReport is every agent definition of a dir checked and, when asked, the app's runtime
// agents counted by status from <install>/.hive-mind/hive.db ('agents status').
type SetReport struct {
	Dir    string        `json:"dir"`
	OK     bool          `json:"ok"`
	Agents []AgentStatus `json:"agents"`
	Hive   *HiveStatus   `json:"hive,omitempty"`
	// Valid is how many definitions are valid agents.
	Valid int `json:"-"`
}

// HiveStatus is hive.db's agents by status; Present false: there is no hive.db.
type HiveStatus struct {
	Path     string         `json:"path"`
	Present  bool           `json:"present"`
	ByStatus map[string]int `json:"by_status,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// CheckAgents checks dir's set (SetStatus) and, with hive, counts hive.db's agents (a
// hive.db that cannot be read makes the report not OK).
func CheckAgents(ctx context.Context, dir, installDir string, hive bool) (SetReport, error) {
	rep := SetReport{Dir: dir, Agents: []AgentStatus{}}
	sts, valid, ok, err := SetStatus(dir)
	if err != nil {
		return rep, err
	}
	rep.Agents, rep.OK, rep.Valid = sts, ok, valid
	if hive {
		h := &HiveStatus{Path: filepath.Join(installDir, ".hive-mind", "hive.db")}
		if _, err := os.Stat(h.Path); err == nil {
			h.Present = true
			if h.ByStatus, err = HiveCounts(ctx, h.Path); err != nil {
				h.Error, rep.OK = err.Error(), false
			}
		}
		rep.Hive = h
	}
	return rep, nil
}
