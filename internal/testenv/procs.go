package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// ProcsMentioning lists the live processes (zombies left out) whose command line contains
// both s and word: how a test finds what a run it started left behind, to fail on it and
// end it by pid.
func ProcsMentioning(s, word string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(s)) || !bytes.Contains(b, []byte(word)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && (st[i+2] == 'Z' || st[i+2] == 'X') {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}
