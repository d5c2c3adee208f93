package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// head is the sidecar that names the last record, so that a journal cut
// short at a line boundary can be told from a complete one.
type head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

func headPath(journal string) string { return journal + ".head" }

// readHead returns nil, nil when there is no head. A head that exists but
// does not parse is a *CorruptError.
func readHead(journal string) (*head, error) {
	b, err := fsutil.ReadFile(headPath(journal), fsutil.MaxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal head: %w", err)
	}
	var h head
	if err := json.Unmarshal(b, &h); err != nil || h.Seq < 1 || h.Hash == "" {
		return nil, &CorruptError{Path: journal, Reason: fmt.Sprintf("its head %s is unreadable: %q", headPath(journal), truncate(b, 80))}
	}
	return &h, nil
}

// writeHead replaces the head atomically: a temp file in the same
// directory, fsync, rename, fsync the directory.
func writeHead(journal string, h head) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	return fsutil.WriteFile(headPath(journal), b, 0o600)
}

// mkdirAllSynced is os.MkdirAll that also fsyncs the parent of every
// directory it creates, so a new journal's path survives a crash. The dir,
// new or not, must be one other users cannot write (fsutil.CheckTrustedDir):
// root appends to the journal and replaces its head there.
func mkdirAllSynced(dir string, perm fs.FileMode) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return fsutil.CheckTrustedDir(dir)
	}
	if err := fsutil.MkdirTrusted(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsutil.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
