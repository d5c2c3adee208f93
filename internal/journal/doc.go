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
// <path>.head is a sidecar {"seq":N,"hash":"...","open":S,"at":B} naming the last record,
// padded with spaces to 128 bytes, rewritten after every append: the first
// time by a Journal atomically (temp file, fsync, rename, fsync dir), then
// overwritten in place (one pwrite inside the first sector, fdatasync). Without it a journal cut short at a line boundary would look
// complete. Because the head is written after the record, a crash between
// the two leaves the head exactly one record behind; Open repairs that case.
//
// # Where a run can still be unfinished
//
// S and B in the head say from where a run can still be unfinished (Run.Unfinished): S is
// the seq of the intent of the oldest run that has no outcome or recovered record yet, or the
// last record's seq when every run has one, and B the byte offset where that record's line
// starts. Every run before S has ended. Append keeps them (a Journal knows its open runs: an
// intent opens its run, an outcome or recovered record under its id closes it), so a run
// closed later, by recovery (completed, abandoned, superseded) or by anyone, moves the
// pointer on to the next oldest open run, and a run killed long ago that nothing closes keeps
// it where it was: it is still found, the reader just reads more.
//
// ReadRecent is for readers that look only at unfinished runs (the recovery every run does
// before its preflight): it seeks to B, checks that a record with seq S starts there (an
// intent, or the head's own record), and verifies the chain from S to the end and the end
// against the head, as ReadChecked does for the whole file; a journal's cost to a run then
// stays that of its open runs, not of its years of history. Whatever does not check out (no
// pointer, a pointer to anything else, any problem from S on) makes it ReadChecked: the whole
// journal read and its problems reported. Open reads from the pointer too, to learn the open
// runs (parsing only; its checks of the end are those below); with a head of an earlier
// cfrollback, which has no pointer, it reads the whole journal once and the next append
// writes the pointer. A journal whose whole read finds a line that is no record (it may have
// been an intent) gets heads without a pointer, and readers read everything as before.
//
// What this gives up: damage before S (records that no longer parse or hash) is not seen by
// ReadRecent, only by Verify, ReadChecked and the readers built on them (history, report,
// journal verify); and a pointer moved forward by hand past an unfinished run hides that run
// from ReadRecent. Verify reads everything and reports such a pointer (ProblemOpen): it
// recomputes what Append would have written.
//
// # Crashes and damage
//
// A crash during a write can leave a torn line: a prefix of a record,
// possibly followed by NUL bytes, with or without a newline. Open tolerates a
// torn tail and truncates nothing; the next Append first writes a newline so
// the torn bytes stay in the file as a line of their own. ReadAll skips torn
// lines; Verify reports every one of them.
//
// Open reads only the end of the file (and, to learn the open runs, the records
// from the head's pointer on). It refuses (ErrCorrupt) to continue a
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
