package journal

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func headInode(t *testing.T, path string) (uint64, []byte) {
	t.Helper()
	fi, err := os.Lstat(headPath(path))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(headPath(path))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino, b
}

// After its first head write a Journal overwrites the head in place: the same file (no
// temp file, no rename), always headSize bytes, naming the last record.
func TestHeadOverwrittenInPlace(t *testing.T) {
	path := newPath(t)
	j := openT(t, path)
	appendT(t, j, "r", "intent", "", nil)
	ino, _ := headInode(t, path)
	var last Record
	for range 3 {
		last = appendT(t, j, "r", "step_start", "stop", nil)
		got, b := headInode(t, path)
		if got != ino {
			t.Fatalf("head replaced by another file (inode %d, was %d): want it overwritten in place", got, ino)
		}
		if len(b) != headSize {
			t.Fatalf("head is %d bytes, want %d: %q", len(b), headSize, b)
		}
	}
	hd, err := readHead(path)
	if err != nil || hd.Seq != last.Seq || hd.Hash != last.Hash {
		t.Fatalf("head = %+v, %v; want seq %d hash %s", hd, err, last.Seq, last.Hash)
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("verify: %v", p)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("the journal's dir holds %d entries, want the journal and its head (no temp files left)", len(entries))
	}
}

// A head written by an earlier cfrollback (its JSON and a newline, no padding) is read as
// before, and the next append replaces it with a padded one.
func TestHeadOfEarlierFormatIsReadAndReplaced(t *testing.T) {
	path := writeJournal(t, 2)
	hd, err := readHead(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, headPath(path), []byte(`{"seq":2,"hash":"`+hd.Hash+`"}`+"\n"))
	j := openT(t, path)
	rec := appendT(t, j, "r", "note", "", nil)
	_, b := headInode(t, path)
	if len(b) != headSize {
		t.Fatalf("head is %d bytes after an append, want %d", len(b), headSize)
	}
	if hd, err := readHead(path); err != nil || hd.Seq != rec.Seq {
		t.Fatalf("head = %+v, %v; want seq %d", hd, err, rec.Seq)
	}
	if p := verifyT(t, path); len(p) != 0 {
		t.Fatalf("verify: %v", p)
	}
}
