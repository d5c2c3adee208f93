// Package standby keeps the backup an emergency would restore already extracted next to the
// install (a warm standby), and proves with a seal that a tree on disk is exactly that
// backup's extraction, unchanged since: the seal holds the backup file's identity and, per
// entry, what one stat walk saw right after the extraction (type, mode, owner, size, mtime,
// ctime, inode, link count). Checking is one stat walk compared entry by entry. The
// procedures that build, use and drop a standby are in internal/runbook.
package standby
