package sqlitedb

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Opener is a process that has one of a database's files open.
type Opener struct {
	PID     int    `json:"pid"`
	Command string `json:"command"` // /proc/PID/cmdline, NULs as spaces
	File    string `json:"file"`    // which file: the db, its -wal, -shm or -journal
}

func (o Opener) String() string {
	return fmt.Sprintf("pid %d (%s) has %s open", o.PID, o.Command, o.File)
}

// InUseError says which processes have a database open.
type InUseError struct {
	Path    string
	Openers []Opener
}

// Error names each process once, with every file it has open:
// "pid 7 (node server.js) has memory.db, memory.db-wal, memory.db-shm open".
func (e *InUseError) Error() string {
	var order []int
	files := map[int][]string{}
	command := map[int]string{}
	for _, o := range e.Openers {
		if _, seen := files[o.PID]; !seen {
			order = append(order, o.PID)
			command[o.PID] = o.Command
		}
		files[o.PID] = append(files[o.PID], o.File)
	}
	parts := make([]string, len(order))
	for i, pid := range order {
		parts[i] = Opener{PID: pid, Command: command[pid], File: strings.Join(files[pid], ", ")}.String()
	}
	return fmt.Sprintf("%s is in use: %s", e.Path, strings.Join(parts, "; "))
}

// ErrInUse matches every *InUseError.
var ErrInUse = fmt.Errorf("database is open in another process")

// Is makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Openers scans /proc/*/fd for processes that have path, or its -wal, -shm or -journal,
// open. Files are matched by device and inode, so another spelling of the path (a symlink,
// a bind mount) is still found. Processes this user may not inspect are counted in
// uninspected (0 when running as root).
func Openers(path string) (openers []Opener, uninspected int, err error) {
	type key struct{ dev, ino uint64 }
	want := map[key]string{}
	names := map[string]bool{}
	for _, s := range []string{"", "-wal", "-shm", "-journal"} {
		var st syscall.Stat_t
		if err := syscall.Stat(path+s, &st); err == nil {
			want[key{uint64(st.Dev), st.Ino}] = filepath.Base(path + s)
			names[filepath.Base(path+s)] = true
		}
	}
	if len(want) == 0 {
		return nil, 0, nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, 0, fmt.Errorf("list processes: %w", err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			if os.IsPermission(err) {
				uninspected++
			}
			continue // gone, or a kernel thread
		}
		seen := map[string]bool{}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !names[filepath.Base(strings.TrimSuffix(link, " (deleted)"))] {
				continue // cheap filter by name before a stat
			}
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(fdDir, fd.Name()), &st); err != nil {
				continue
			}
			file, ok := want[key{uint64(st.Dev), st.Ino}]
			if !ok || seen[file] {
				continue
			}
			seen[file] = true
			openers = append(openers, Opener{PID: pid, Command: cmdline(pid), File: file})
		}
	}
	return openers, uninspected, nil
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
			return "[" + strings.TrimSpace(string(c)) + "]"
		}
		return "?"
	}
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
