package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	b, err := os.ReadFile(headPath(journal))
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
	final := headPath(journal)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(final))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAllSynced is os.MkdirAll that also fsyncs the parent of every
// directory it creates, so a new journal's path survives a crash.
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
		return nil
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
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
