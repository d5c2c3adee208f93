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
	if err != nil || got.Entries != s.Entries || got.Tree[0] != s.Tree[0] || !got.Created.Equal(s.Created) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
}

// decodeSeal never panics on what a file may hold, and what it accepts is consistent.
func FuzzDecodeSeal(f *testing.F) {
	f.Add([]byte(sealMagic))
	f.Add([]byte("{}"))
	f.Add([]byte(sealMagic + "\x00\x01\x02"))
	var valid bytes.Buffer
	valid.WriteString(sealMagic)
	if err := gob.NewEncoder(&valid).Encode(bigSeal(3)); err != nil {
		f.Fatal(err)
	}
	f.Add(valid.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSeal(b)
		if err == nil && (s.Version != sealVersion || s.Entries != len(s.Tree)) {
			t.Fatalf("accepted an inconsistent seal: %+v", s)
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
	return s
}

// BenchmarkSealDecode decodes a 22,200 entry seal as format 1 (JSON) did and as format 2
// (gob) does: go test -run '^$' -bench SealDecode ./internal/standby
func BenchmarkSealDecode(b *testing.B) {
	s := bigSeal(22200)
	js, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	var gb bytes.Buffer
	gb.WriteString(sealMagic)
	if err := gob.NewEncoder(&gb).Encode(s); err != nil {
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
			if _, err := decodeSeal(gb.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
