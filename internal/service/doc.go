// Package service stops, starts and inspects the service cfrollback rolls back, through
// whichever manager runs it on the host: a systemd unit (over D-Bus, with the systemctl CLI as
// a fallback when the system bus is unreachable), a pm2 app (pm2 CLI), or a user's own
// start/stop/status shell commands.
//
// Every Manager gives the same promises, so the rollback procedure need not care which one
// it holds:
//
//   - Stop returns nil only once the manager confirms the service is down (systemd:
//     ActiveState inactive or failed and MainPID 0; pm2: every instance "stopped" with pid 0;
//     command: the status command exits non-zero). Stopping a service that is already down
//     succeeds.
//   - Start returns nil once the manager reports the service started (systemd: the start job
//     finished "done" and the unit is not inactive/failed; pm2: every instance "online";
//     command: the status command exits 0). That is not health: a Type=simple unit counts as
//     started as soon as it is forked. The health package decides whether it serves.
//   - Both are bounded by their context and by Config.StopTimeout / Config.StartTimeout; on
//     timeout the error wraps context.DeadlineExceeded.
//   - A unit or app that does not exist is ErrNotFound (errors.Is), from New in "auto" mode
//     and from Stop and Start; Status reports it as Exists == false.
//   - Stop never runs the stop command on a service it sees down, and Start never runs the
//     start command on one it sees up. Each reads the status first, unless the caller passes
//     what it saw (StopInformed, StartInformed: seen.go): a status read through the same
//     manager, answered less than Fresh (1 s) ago, that says what the read would have to find.
//
// The systemd manager opens a D-Bus connection per call, unless Config.Bus gives it one kept
// connection (long-running callers: guard), which reconnects by itself (bus.go).
//
// All exec goes through the small runner interface so tests can swap in fakes; the systemd
// manager dials the bus through a function field for the same reason.
package service
