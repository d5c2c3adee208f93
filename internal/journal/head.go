package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// head is the sidecar that names the last record, so that a journal cut
// short at a line boundary can be told from a complete one.
type head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// Open is the seq from which a run can still be unfinished: the intent of the oldest
	// run without an outcome, else the last record (Seq); At is the byte offset of that
	// record's line. 0 (a head of an earlier cfrollback, or a journal whose runs Open could
	// not tell) means unknown: a reader reads the whole journal. See ReadRecent.
	Open int64 `json:"open,omitempty"`
	At   int64 `json:"at,omitempty"`
}

// from returns where the head says a reader of unfinished runs may start, and false when
// it does not say, or says something no Journal writes.
func (h *head) from() (mark, bool) {
	if h == nil || h.Open < 1 || h.Open > h.Seq || h.At < 0 || (h.At == 0 && h.Open != 1) {
		return mark{}, false
	}
	return mark{Seq: h.Open, At: h.At}, true
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

// headSize is the size every head is written at: its JSON padded with spaces (which JSON
// readers skip) and a newline. A fixed size lets Append overwrite it in place.
const headSize = 128

func encodeHead(h head) ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(b) >= headSize && h.Open != 0 {
		// (a seq and an offset of 30 digits together) the pointer is an optimisation:
		// without it readers read the whole journal
		h.Open, h.At = 0, 0
		if b, err = json.Marshal(h); err != nil {
			return nil, err
		}
	}
	if len(b) >= headSize {
		return nil, fmt.Errorf("journal head %s is longer than %d bytes", b, headSize-1)
	}
	pad := make([]byte, headSize)
	copy(pad, b)
	for i := len(b); i < headSize-1; i++ {
		pad[i] = ' '
	}
	pad[headSize-1] = '\n'
	return pad, nil
}

// headWriter rewrites the head after each append. The first write replaces the file
// (temp file, fsync, rename, fsync of the directory); later ones overwrite its headSize bytes in place through the descriptor
// that write left (pwrite at 0, fdatasync): one fsync instead of a new file, its fsync, a
// rename and the directory's fsync, about half the cost of an append. The overwrite is
// one write of 128 bytes inside the file's first 512-byte sector, which a disk writes
// whole or not at all, the assumption PostgreSQL makes for its pg_control file; if it were
// torn all the same, the head would not parse and the next Open would report the journal
// damaged, which a rollback sets aside without stopping (runbook).
type headWriter struct {
	journal string
	f       *os.File // nil until the first write, and after one that failed
}

func (w *headWriter) write(h head) error {
	b, err := encodeHead(h)
	if err != nil {
		return err
	}
	if w.f != nil {
		if _, err := w.f.WriteAt(b, 0); err != nil {
			w.close()
			return fmt.Errorf("write journal head: %w", err)
		}
		if err := syscall.Fdatasync(int(w.f.Fd())); err != nil {
			w.close()
			return fmt.Errorf("write journal head: fdatasync: %w", err)
		}
		return nil
	}
	if err := fsutil.WriteFile(headPath(w.journal), b, 0o600); err != nil {
		return err
	}
	w.f = openHeadInPlace(headPath(w.journal))
	return nil
}

// openHeadInPlace opens the head just written for overwriting: never through a symlink,
// only a regular file of headSize bytes; nil when it is not that (each write then
// replaces the file again).
func openHeadInPlace(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != headSize {
		_ = f.Close()
		return nil
	}
	return f
}

func (w *headWriter) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
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
