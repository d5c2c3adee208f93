// Package backup is the catalog of backup archives: it discovers files that
// match the configured pattern, reads their time from the seed's strict name
// (backup-YYYYmmdd-HHMMSS.tar.gz) or else from the file's mtime, orders them
// newest first, and says loudly why an entry is not a candidate (a symlink, a
// directory, a FIFO) instead of skipping it in silence.
package backup
