// Command bench-floor is the least a warm rollback can do, for scripts/bench-floor.sh to time
// against a plain restart: the floor under any tool that keeps cfrollback's rules for the
// `command` service manager, whatever its size. It takes the lock, writes four write-ahead
// records to a journal (each fsynced before its step), reads the status and runs the stop
// command through /bin/sh (the operator's commands are shell), polls the status command
// until it says down, swaps the standby into the install (RENAME_EXCHANGE), keeps the failed
// install by a rename, fsyncs the dir, and runs the start command. It does not check the
// standby, carry data over, wait for health or print anything: those cost cfrollback more.
//
//	bench-floor   (settings from CFROLLBACK_INSTALL_DIR, CFROLLBACK_JOURNAL, CFROLLBACK_LOCK and
//	               CFROLLBACK_SERVICE_{STATUS,STOP,START}_COMMAND, as bench-lib.sh exports them)
//
// Not a rollback tool: it refuses nothing and keeps no seal. A benchmark's yardstick only.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-floor:", err)
		os.Exit(1)
	}
}

func env(k string) (string, error) {
	v := os.Getenv(k)
	if v == "" {
		return "", fmt.Errorf("%s is not set (run it from scripts/bench-floor.sh)", k)
	}
	return v, nil
}

func run() error {
	var install, journal, lock, status, stop, start string
	for _, kv := range []struct {
		dst *string
		key string
	}{
		{&install, "CFROLLBACK_INSTALL_DIR"}, {&journal, "CFROLLBACK_JOURNAL"}, {&lock, "CFROLLBACK_LOCK"},
		{&status, "CFROLLBACK_SERVICE_STATUS_COMMAND"}, {&stop, "CFROLLBACK_SERVICE_STOP_COMMAND"},
		{&start, "CFROLLBACK_SERVICE_START_COMMAND"},
	} {
		v, err := env(kv.key)
		if err != nil {
			return err
		}
		*kv.dst = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	lf, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = lf.Close() }()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("lock %s: %w", lock, err)
	}
	j, err := os.OpenFile(journal+".floor", os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = j.Close() }()
	record := func(what string) error {
		if _, err := fmt.Fprintf(j, `{"time":%q,"event":%q}`+"\n", time.Now().UTC().Format(time.RFC3339Nano), what); err != nil {
			return err
		}
		return j.Sync()
	}
	sh := func(script string) error {
		return exec.CommandContext(ctx, "/bin/sh", "-c", script).Run()
	}

	up := make(chan error, 1) // the status read runs while the intent is written, as cfrollback's does
	go func() { up <- sh(status) }()
	if err := record("intent"); err != nil {
		return err
	}
	if err := <-up; err != nil {
		return fmt.Errorf("the status command says the service is down: %w", err)
	}
	if err := record("stop"); err != nil {
		return err
	}
	if err := sh(stop); err != nil {
		return fmt.Errorf("stop command: %w", err)
	}
	for sh(status) == nil {
		if ctx.Err() != nil {
			return errors.New("the service did not stop within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := record("swap"); err != nil {
		return err
	}
	dir := filepath.Dir(install)
	standby := install + ".standby"
	if err := unix.Renameat2(unix.AT_FDCWD, standby, unix.AT_FDCWD, install, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("swap %s and %s: %w", standby, install, err)
	}
	if err := os.Rename(standby, install+"-failed-floor"); err != nil {
		return err
	}
	if d, err := os.Open(dir); err != nil {
		return err
	} else if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return err
	}
	if err := record("start"); err != nil {
		return err
	}
	return sh(start)
}
