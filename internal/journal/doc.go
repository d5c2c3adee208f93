// Package journal is cfrollback's durable record of what a run did: an
// append-only file of JSON lines, one record per line, each fsynced before
// Append returns and each carrying the SHA-256 of the record before it, so a
// runbook reader (and the next run, recovering from a crash) can trust the
// order and content of what it reads.
//
// # On disk
//
// <path> holds one Record per line, written by a single write(2) on an
// O_APPEND descriptor and fsynced. A record's Hash is the hex SHA-256 of the
// record's JSON (encoding/json, fields in Record's order) with Hash set to "";
// the line itself is exactly that JSON with Hash filled in. Prev is the Hash
// of the record before it ("" for seq 1), Seq counts from 1 without gaps.
//
// <path>.head is a sidecar {"seq":N,"hash":"..."} naming the last record,
// padded with spaces to 128 bytes, rewritten after every append: the first
// time by a Journal atomically (temp file, fsync, rename, fsync dir), then
// overwritten in place (one pwrite inside the first sector, fdatasync). Without it a journal cut short at a line boundary would look
// complete. Because the head is written after the record, a crash between
// the two leaves the head exactly one record behind; Open repairs that case.
//
// # Crashes and damage
//
// A crash during a write can leave a torn line: a prefix of a record,
// possibly followed by NUL bytes, with or without a newline. Open tolerates a
// torn tail and truncates nothing; the next Append first writes a newline so
// the torn bytes stay in the file as a line of their own. ReadAll skips torn
// lines; Verify reports every one of them.
//
// Open reads only the end of the file. It refuses (ErrCorrupt) to continue a
// journal whose end does not agree with its head, because appending would
// overwrite the evidence: the caller decides whether to stop or to set the
// journal aside (SetAside) and start a new one. Verify reads everything.
//
// The chain detects accidents and edits by hand; it is not a defence against
// someone with root who recomputes every hash and the head.
//
// One writer at a time is the caller's job (internal/lock); a Journal is safe
// for concurrent use by goroutines of that one writer.
package journal
