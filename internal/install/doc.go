// Package install swaps a staged tree in place of the install directory
// without ever leaving the install path missing, keeps what it replaces, and
// carries live data (preserved paths) from the old tree into the new one.
//
// The swap is renameat2(RENAME_EXCHANGE): one syscall, atomic on the same
// filesystem, after which the old tree sits at the staging path and is then
// renamed to its failed-dir name. Where the filesystem refuses an exchange
// (EINVAL), two plain renames are used and the caller's journal covers the
// instant in between.
package install
