package backup

import (
	"errors"
	"io/fs"
	"time"
)

// Info is one backup as list shows it.
type Info struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Path       string    `json:"path"`
	Time       time.Time `json:"time"`
	Size       int64     `json:"size"`
	AppVersion string    `json:"app_version,omitempty"`
	Label      string    `json:"label,omitempty"`
	// Manifest is true when the sidecar manifest was read; ManifestProblem says why one that
	// exists could not be (unreadable, not JSON, impossible, no archive digest): a damaged
	// manifest, for which emergency skips the backup unless it is named with --backup.
	Manifest        bool       `json:"manifest"`
	ManifestProblem string     `json:"manifest_problem,omitempty"`
	Verified        string     `json:"verified"` // never | ok | failed
	VerifiedAt      *time.Time `json:"verified_at,omitempty"`
	VerifyErr       string     `json:"verify_error,omitempty"`
	Mark            string     `json:"mark,omitempty"` // good | bad
	MarkReason      string     `json:"mark_reason,omitempty"`
	MarkedAt        *time.Time `json:"marked_at,omitempty"`
	MarkedBy        string     `json:"marked_by,omitempty"`
	// StandbyBytes is the disk the warm standby takes, on the backup it holds (set by the
	// caller from the standby's seal; internal/runbook StandbyInfo).
	StandbyBytes int64 `json:"standby_bytes,omitempty"`
}

// List joins backups (newest first), their manifests and the state.
func List(cands []Candidate, st *State) []Info {
	out := make([]Info, 0, len(cands))
	for _, c := range cands {
		in := Info{ID: ID(c.Name), Name: c.Name, Path: c.Path, Time: c.Time, Size: c.Size, Verified: "never"}
		m, err := c.ManifestHeader()
		switch {
		case err == nil:
			in.Manifest, in.AppVersion, in.Label = true, m.AppVersion, m.Label
		case !errors.Is(err, fs.ErrNotExist):
			in.ManifestProblem = err.Error()
		}
		if c.ManifestProblem != "" {
			// Discover's judgement (manifestDigest: also a manifest without the archive's digest)
			in.Manifest, in.ManifestProblem = false, c.ManifestProblem
		}
		s := st.Get(c.Name)
		if v := s.Verify; v != nil {
			in.Verified = "failed"
			if v.OK {
				in.Verified = "ok"
			}
			t := v.Time
			in.VerifiedAt, in.VerifyErr = &t, v.Error
		}
		if m := s.Mark; m != nil {
			t := m.Time
			in.Mark, in.MarkReason, in.MarkedAt, in.MarkedBy = m.Value, m.Reason, &t, m.By
		}
		out = append(out, in)
	}
	return out
}
