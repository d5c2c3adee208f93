// Package archive reads, checks and writes the .tar.gz backups that cfrollback
// restores an install directory from.
//
// Restores run unattended, as root, against archives that may be damaged or
// hostile, so reading is built around one rule: an archive is either taken
// whole or refused whole. Verify reads an archive to its last byte and checks
// every entry against the rules in rules.go without writing anything; Extract
// applies the same checks while writing into a fresh directory through an
// os.Root (so even a bug in this package cannot write outside it), and removes
// that directory again on any error. Create writes archives that GNU tar and
// bsdtar read, and refuses to write one that Extract would later refuse.
//
// Refused on read (errors.Is(err, ErrUnsafe)): absolute names, ".." path
// components, entries below a symlink, symlinks that are absolute or resolve
// outside the root, hard links to anything but an earlier regular file,
// devices, FIFOs, sparse files, PAX global headers and any other type, names
// that are not clean UTF-8 or are too long, duplicate names, and anything over
// Limits. Damaged data (errors.Is(err, ErrCorrupt)): gzip or tar errors,
// truncation, a missing end-of-archive marker, and any byte after the archive
// that is not tar zero padding inside the gzip stream.
package archive
