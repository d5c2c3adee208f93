package archive

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error caused by damaged archive data: gzip or
// tar format errors, checksum mismatches, truncation and trailing bytes.
var ErrCorrupt = errors.New("archive is corrupt")

// ErrUnsafe matches (errors.Is) every *UnsafeEntryError.
var ErrUnsafe = errors.New("archive has an unsafe entry")

// UnsafeEntryError says which entry made an archive unsafe to restore and why.
// Limit breaches are reported this way too, naming the entry that crossed the
// limit.
type UnsafeEntryError struct {
	Name   string // the entry's name as stored in the archive (shortened if huge)
	Reason string // e.g. "escapes the archive root"
}

// Error quotes the name with %q so that control characters or terminal escape
// sequences in a hostile name are shown escaped, never sent to a terminal.
func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("entry %q %s", e.Name, e.Reason)
}

// Is makes errors.Is(err, ErrUnsafe) true for every UnsafeEntryError.
func (e *UnsafeEntryError) Is(target error) bool { return target == ErrUnsafe }

// Unwrap returns ErrUnsafe, so code that walks the chain by hand sees it too.
func (e *UnsafeEntryError) Unwrap() error { return ErrUnsafe }

// maxNameInError bounds how much of a name an error repeats: a 1 MiB name must
// not become a 1 MiB log line.
const maxNameInError = 256

func unsafeEntry(name, format string, args ...any) *UnsafeEntryError {
	if len(name) > maxNameInError {
		name = name[:maxNameInError] + "..."
	}
	return &UnsafeEntryError{Name: name, Reason: fmt.Sprintf(format, args...)}
}

// corrupt wraps ErrCorrupt with detail; an underlying error is kept in the
// chain (second %w) so that callers can still match, say, gzip.ErrChecksum.
func corrupt(detail string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %s", ErrCorrupt, detail)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, detail, cause)
}
