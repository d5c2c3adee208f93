package archive

import (
	"context"
	"fmt"
	"io"
)

// Verify reads the archive at path to its last byte and applies every rule
// Extract applies, without writing anything. A nil error means Extract with the
// same limits would restore the archive whole, barring disk errors or a file
// that changes in between (compare Summary.SHA256 to be sure it did not).
//
// Errors match ErrCorrupt for damaged data and ErrUnsafe (as an
// *UnsafeEntryError) for entries cfrollback refuses to restore; a cancelled
// ctx returns ctx's error.
func Verify(ctx context.Context, path string, lim Limits, progress Progress) (Summary, error) {
	sum, err := scan(ctx, path, lim, progress, func(e entry, data io.Reader) error {
		if e.kind != kindFile {
			return nil
		}
		// Reading the data is the point: a truncated entry or a bad gzip
		// checksum only shows when the bytes are actually decompressed.
		_, err := copyData(io.Discard, data)
		return err
	})
	if err != nil {
		return Summary{}, fmt.Errorf("%s: %w", path, err)
	}
	return sum, nil
}
