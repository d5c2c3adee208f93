package sqlitedb

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A healthy WAL database whose -wal or -shm is not a regular file: check, backup and repair
// name the sidecar and change nothing, instead of calling the database corrupt (which would
// advise replacing a good database).
func TestSpecialSidecarIsNamedNotCalledCorrupt(t *testing.T) {
	for _, side := range []string{"-wal", "-shm"} {
		for _, kind := range []string{"fifo", "dir", "devzero"} {
			t.Run(side+"-"+kind, func(t *testing.T) {
				path := tempDB(t, "memory.db")
				db := openWriter(t, path, true)
				insertRows(t, db, 0, 10)
				if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					t.Fatal(err)
				}
				db.Close()
				_ = os.Remove(path + side)
				switch kind {
				case "fifo":
					mustNil(t, syscall.Mkfifo(path+side, 0o600))
				case "dir":
					mustNil(t, os.Mkdir(path+side, 0o700))
				case "devzero":
					mustNil(t, os.Symlink("/dev/zero", path+side))
				}
				before, err := os.ReadFile(path)
				mustNil(t, err)
				ctx := context.Background()
				_, cerr := Check(ctx, path, CheckOptions{})
				_, berr := Backup(ctx, path, path+".bak", BackupOptions{})
				_, rerr := Repair(ctx, path, RepairOptions{})
				for name, err := range map[string]error{"check": cerr, "backup": berr, "repair": rerr} {
					if !errors.Is(err, ErrBadSidecar) || !strings.Contains(err.Error(), path+side) || !strings.Contains(err.Error(), "may be intact") {
						t.Errorf("%s: %v, want ErrBadSidecar naming %s", name, err, path+side)
					}
				}
				after, err := os.ReadFile(path)
				mustNil(t, err)
				if string(before) != string(after) || exists(path+".bak") {
					t.Fatal("something was changed")
				}
			})
		}
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
