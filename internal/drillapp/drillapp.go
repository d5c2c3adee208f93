// Package drillapp is the tiny HTTP service that `cfrollback drill` and the
// integration tests roll back: it reads its version and whether it is healthy
// from its install dir at start, like a real deploy, appends a line to live
// data under .swarm/ on every start, and answers /health with 200 or 503.
//
// A deploy can also degrade after it started (DegradeFile): healthy at first,
// then a failure rate rising to every request, as a leak or a slow fault
// would, so that a watcher (cfrollback guard) has something to find.
package drillapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Files of an install, relative to its root.
const (
	VersionFile = "app/VERSION"
	HealthyFile = "app/healthy" // "yes" or anything else
	DataFile    = ".swarm/memory.log"
	// DegradeFile holds "AFTER [RAMP]" (Go durations): from AFTER after the
	// start, a share of /health requests fails (503), rising linearly to all
	// of them over RAMP (0 or missing: all at once). No file: never degrades.
	DegradeFile = "app/degrade"
)

// WriteDegradingInstall lays out a healthy install of version v that starts
// failing its health requests after `after`, all of them once ramp has passed.
func WriteDegradingInstall(root, version string, after, ramp time.Duration) error {
	if err := WriteInstall(root, version, true); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, DegradeFile), []byte(fmt.Sprintf("%s %s\n", after, ramp)), 0o644)
}

// degradation is a parsed DegradeFile; the zero value never degrades.
type degradation struct {
	set         bool
	after, ramp time.Duration
}

func readDegradation(installDir string) (degradation, error) {
	b, err := os.ReadFile(filepath.Join(installDir, DegradeFile))
	if errors.Is(err, os.ErrNotExist) {
		return degradation{}, nil
	}
	if err != nil {
		return degradation{}, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f) > 2 {
		return degradation{}, fmt.Errorf("%s: want \"AFTER [RAMP]\", got %q", DegradeFile, strings.TrimSpace(string(b)))
	}
	d := degradation{set: true}
	if d.after, err = time.ParseDuration(f[0]); err != nil {
		return degradation{}, fmt.Errorf("%s: %w", DegradeFile, err)
	}
	if len(f) == 2 {
		if d.ramp, err = time.ParseDuration(f[1]); err != nil {
			return degradation{}, fmt.Errorf("%s: %w", DegradeFile, err)
		}
	}
	return d, nil
}

// failShare is the share of requests that fail at elapsed time since start.
func (d degradation) failShare(elapsed time.Duration) float64 {
	switch {
	case !d.set || elapsed < d.after:
		return 0
	case d.ramp <= 0 || elapsed >= d.after+d.ramp:
		return 1
	}
	return float64(elapsed-d.after) / float64(d.ramp)
}

// WriteInstall lays out an install of version v, healthy or broken.
func WriteInstall(root, version string, healthy bool) error {
	h := "no"
	if healthy {
		h = "yes"
	}
	for rel, content := range map[string]string{
		VersionFile: version + "\n", HealthyFile: h + "\n",
		"app/README": "drill app " + version + "\n", "config.json": `{"claude":{"model":"drill"}}` + "\n",
	} {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(root, ".swarm"), 0o755)
}

// Serve runs the app until ctx ends.
func Serve(ctx context.Context, installDir, addr, pidFile string) error {
	verB, err := os.ReadFile(filepath.Join(installDir, VersionFile))
	if err != nil {
		return fmt.Errorf("read version: %w", err)
	}
	version := strings.TrimSpace(string(verB))
	hb, _ := os.ReadFile(filepath.Join(installDir, HealthyFile))
	healthy := strings.TrimSpace(string(hb)) == "yes"
	degrade, err := readDegradation(installDir)
	if err != nil {
		return err
	}
	started := time.Now()
	var served atomic.Int64
	if err := appendData(installDir, fmt.Sprintf("%s started version %s pid %d\n", time.Now().Format(time.RFC3339), version, os.Getpid())); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
			return err
		}
		defer os.Remove(pidFile)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		status := "ok"
		// Every 1/share-th request fails: a deterministic rising error rate.
		n := served.Add(1)
		if share := degrade.failShare(time.Since(started)); share > 0 && int64(float64(n)*share) > int64(float64(n-1)*share) {
			status = "degraded"
			w.WriteHeader(http.StatusServiceUnavailable)
		} else if !healthy {
			status = "broken"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": status, "version": version})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, version) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func appendData(root, line string) error {
	p := filepath.Join(root, DataFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close() //nolint:errcheck // closing frees the port; nothing to lose
	return ln.Addr().(*net.TCPAddr).Port, nil
}
