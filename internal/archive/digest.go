package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
)

// EntryDigest is one entry of an archive as a manifest records it.
type EntryDigest struct {
	Name   string      // relative, slash-separated, "." for the root
	Type   string      // file, dir, symlink, hardlink
	Mode   fs.FileMode // permission bits as Extract restores them
	Size   int64       // file: bytes of data
	SHA256 string      // file: hex SHA-256 of its data
	Link   string      // symlink target as stored, or the hard link's first name
}

// Digests reads the archive at path to its last byte, applies every rule
// Verify applies, and returns every entry with the SHA-256 of each regular
// file's data: what a manifest's per-file digests are checked against.
func Digests(ctx context.Context, path string, lim Limits, progress Progress) (Summary, []EntryDigest, error) {
	var out []EntryDigest
	h := sha256.New()
	sum, err := scan(ctx, path, lim, progress, func(e entry, data io.Reader) error {
		d := EntryDigest{Name: e.name, Mode: e.mode, Link: e.linkname}
		switch e.kind {
		case kindFile:
			h.Reset()
			n, err := copyData(h, data)
			if err != nil {
				return err
			}
			d.Type, d.Size, d.SHA256 = "file", n, hex.EncodeToString(h.Sum(nil))
		case kindDir:
			d.Type = "dir"
		case kindSymlink:
			d.Type = "symlink"
		case kindHardlink:
			d.Type = "hardlink"
		default:
			return fmt.Errorf("entry %q: unexpected kind %d", e.name, e.kind)
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return Summary{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return sum, out, nil
}
