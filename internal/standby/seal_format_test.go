package standby

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// A seal written by an older cfrollback (format 1, JSON) is not trusted: the error says
// what to do, and Check does not vouch for the tree.
func TestReadRefusesOldFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app.standby")
	must(t, os.MkdirAll(dir, 0o755))
	s, err := Make(context.Background(), dir, Backup{Path: "/b"}, 0, 0, time.Now(), "r")
	must(t, err)
	s.Version = 1
	old, err := json.Marshal(s)
	must(t, err)
	must(t, os.WriteFile(SealPath(dir), old, 0o600))
	if _, err := Read(SealPath(dir)); err == nil || !strings.Contains(err.Error(), "standby refresh") {
		t.Fatalf("a format-1 seal: %v", err)
	}
	if _, err := Check(context.Background(), dir, Want{Backup: Backup{Path: "/b"}}); err == nil {
		t.Fatal("Check vouched for a tree with a format-1 seal")
	}
	s.Version = sealVersion
	must(t, Write(SealPath(dir), s))
	got, err := Read(SealPath(dir))
	if err != nil || got.Entries != s.Entries || got.Root != s.Tree[0] || len(got.Tree) != 0 || !got.Created.Equal(s.Created) {
		t.Fatalf("round trip, header: %v %+v", err, got)
	}
	if err := got.loadTree(); err != nil || len(got.Tree) != s.Entries || got.Tree[0] != s.Tree[0] {
		t.Fatalf("round trip, tree: %v %+v", err, got.Tree)
	}
}

// decodeSeal never panics on what a file may hold, and what it accepts is consistent.
func FuzzDecodeSeal(f *testing.F) {
	f.Add([]byte(sealMagic))
	f.Add([]byte("{}"))
	f.Add([]byte(sealMagic + "\x00\x01\x02"))
	valid, err := encodeSeal(bigSeal(3))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSeal(b)
		if err == nil && (s.Version != sealVersion || s.Root.Path != ".") {
			t.Fatalf("accepted an inconsistent seal header: %+v", s)
		}
		if err == nil && s.loadTree() == nil && (s.Entries != len(s.Tree) || s.Tree[0] != s.Root) {
			t.Fatalf("accepted an inconsistent seal tree: %+v", s)
		}
	})
}

// bigSeal is a seal of n entries shaped like a node_modules tree.
func bigSeal(n int) *Seal {
	s := &Seal{Version: sealVersion, Dir: "/opt/app.standby", Entries: n}
	for i := range n {
		s.Tree = append(s.Tree, Entry{
			Path: fmt.Sprintf("node_modules/p%03d/lib%02d/f%02d.js", i/100, i/10%10, i%10), Mode: 0o100644, UID: 1000, GID: 1000,
			Size: 10000, MtimeNS: 1732900000123456789 + int64(i), CtimeNS: 1732900000123456789 + int64(i), Ino: uint64(1000000 + i), Nlink: 1,
		})
	}
	s.Tree[0].Path, s.Tree[0].Mode = ".", 0o40755
	s.Root = s.Tree[0]
	return s
}

// BenchmarkSealDecode decodes a 22,200 entry seal as format 1 (JSON) did, as format 2 (one
// gob value) did, and as format 3 does: its header (all a check by the read-only mount
// reads) and header plus tree (a check by the walk):
// go test -run '^$' -bench SealDecode ./internal/standby
func BenchmarkSealDecode(b *testing.B) {
	s := bigSeal(22200)
	js, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	var gb bytes.Buffer
	if err := gob.NewEncoder(&gb).Encode(s); err != nil {
		b.Fatal(err)
	}
	v3, err := encodeSeal(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("json_format1", func(b *testing.B) {
		b.ReportMetric(float64(len(js)), "file-bytes")
		for range b.N {
			var got Seal
			if err := json.Unmarshal(js, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gob_format2", func(b *testing.B) {
		b.ReportMetric(float64(gb.Len()), "file-bytes")
		for range b.N {
			var got Seal
			if err := gob.NewDecoder(bytes.NewReader(gb.Bytes())).Decode(&got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("format3_header", func(b *testing.B) {
		b.ReportMetric(float64(len(v3)), "file-bytes")
		for range b.N {
			if _, err := decodeSeal(v3); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("format3_header_and_tree", func(b *testing.B) {
		for range b.N {
			got, err := decodeSeal(v3)
			if err == nil {
				err = got.loadTree()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Read decodes the header only; the tree is read later from that same file, and not from a
// seal written over it meanwhile (another refresh's, for another tree).
func TestReadTreeOnlyFromTheSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.standby.seal")
	if err := Write(path, bigSeal(50)); err != nil {
		t.Fatal(err)
	}
	s, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tree) != 0 || s.Entries != 50 {
		t.Fatalf("Read decoded %d tree entries (want none yet), header says %d", len(s.Tree), s.Entries)
	}
	if err := s.loadTree(); err != nil || len(s.Tree) != 50 || s.Tree[0] != s.Root {
		t.Fatalf("loadTree: %v, %d entries", err, len(s.Tree))
	}

	s2, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(path, bigSeal(60)); err != nil { // replaced: another inode
		t.Fatal(err)
	}
	if err := s2.loadTree(); err == nil || !strings.Contains(err.Error(), "changed since its header was read") {
		t.Fatalf("loadTree of a replaced seal: %v, %d entries; want it refused", err, len(s2.Tree))
	}
}

// BenchmarkSealRead reads a 72,000-entry seal file (the 1.9 GB install of
// scripts/bench-downtime.sh) as an emergency's check by the read-only mount does: its header.
// go test -run '^$' -bench SealRead -benchmem ./internal/standby
func BenchmarkSealRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "x.standby.seal")
	if err := Write(path, bigSeal(72000)); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("header", func(b *testing.B) {
		b.ReportMetric(float64(fi.Size()), "file-bytes")
		for range b.N {
			if _, err := Read(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole_file_then_header", func(b *testing.B) { // what Read did before
		for range b.N {
			raw, err := fsutil.ReadFile(path, fsutil.MaxLargeFile)
			if err == nil {
				_, err = decodeSeal(raw)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
