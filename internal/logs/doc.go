// Package logs reads the service's own log lines: from journald for a systemd unit, from
// the log files pm2 writes for a pm2 app, or from plain files matched by a glob. Which of
// them a host has is the `logs` setting (logs.source, logs.files); Resolve turns it into a
// Source, and Reader and Tail read a Source through a Filter.
//
// Log lines are health evidence: `cfrollback logs --grep ERROR --since 1h --count` is the
// seed's error count, and verify, monitor and baseline count error lines with this package.
//
// journald is read through `journalctl -o json`, not go-systemd's sdjournal: sdjournal
// dlopens libsystemd at run time (a cgo path with its own failure modes), while journalctl
// is on every host that has journald, applies the journal's own access rules (root, the
// systemd-journal group) and is what the real-systemd test drives.
//
// Plain files are opened only as regular files (a FIFO or a device is skipped with a
// warning, never waited on), and never through a symbolic link that another user owns:
// cfrollback often runs as root, and a deploy user's link must not make it read
// /etc/shadow into a terminal.
package logs
