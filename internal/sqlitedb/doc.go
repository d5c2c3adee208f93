// Package sqlitedb backs up, checks, restores and repairs the SQLite databases of the
// service (Claude Flow's .swarm/memory.db and config.db) without the mistakes a plain cp
// makes on a live WAL database.
//
// The rules it keeps:
//   - Copies go through SQLite's online backup API, never cp: committed rows that live only
//     in the -wal are included, and a writer is never blocked for long.
//   - A source's -wal and -shm are never deleted, truncated or checkpointed; sources are opened
//     with mode=ro, which can read a live WAL database but cannot checkpoint it.
//   - A copy counts only after PRAGMA integrity_check returned exactly one row, "ok" (every
//     row of its output is read and reported).
//   - Durable writes: a temp file in the destination's directory, fsync, rename, fsync the
//     directory. A failed operation leaves no half-written destination behind.
//   - A restore refuses while any process has the target (or its -wal/-shm) open, keeps the
//     file it replaces as a self-contained <name>-failed-<ts>.db, and removes the old -wal
//     and -shm before the new file takes the name, so a stale WAL can never be replayed
//     into the restored file.
package sqlitedb
