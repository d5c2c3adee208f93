// Package backup is the catalog of backup archives and what cfrollback knows
// about them. It discovers files that match the configured pattern, reads
// their time from the seed's strict name (backup-YYYYmmdd-HHMMSS.tar.gz) or
// else from the file's mtime, orders them newest first, and says loudly why an
// entry is not a candidate (a symlink, a directory, a FIFO) instead of
// skipping it in silence. It also creates backups with their sidecar
// manifests (create.go), verifies them against those manifests (verify.go),
// keeps verification results and good/bad marks in backup.state (state.go),
// decides what prune may delete (prune.go) and which backup rollback --to
// means (select.go).
package backup
