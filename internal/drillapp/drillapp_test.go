package drillapp

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFailShare(t *testing.T) {
	d := degradation{set: true, after: 10 * time.Second, ramp: 10 * time.Second}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, 0}, {9 * time.Second, 0}, {10 * time.Second, 0}, {15 * time.Second, 0.5}, {20 * time.Second, 1}, {time.Hour, 1}} {
		if got := d.failShare(c.at); got != c.want {
			t.Errorf("failShare(%s) = %v, want %v", c.at, got, c.want)
		}
	}
	if got := (degradation{}).failShare(time.Hour); got != 0 {
		t.Errorf("no degradation fails %v of requests", got)
	}
	if got := (degradation{set: true, after: time.Second}).failShare(time.Second); got != 1 {
		t.Errorf("no ramp: share %v at AFTER, want 1", got)
	}
}

func TestReadDegradationRejectsGarbage(t *testing.T) {
	root := t.TempDir()
	if err := WriteInstall(root, "1", true); err != nil {
		t.Fatal(err)
	}
	if d, err := readDegradation(root); err != nil || d.set {
		t.Fatalf("no file: %+v %v", d, err)
	}
	for _, bad := range []string{"", "soon", "1s 2s 3s", "1s later"} {
		if err := writeFile(filepath.Join(root, DegradeFile), bad); err != nil {
			t.Fatal(err)
		}
		if _, err := readDegradation(root); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// TestServeDegrades: a real server answers 200, then 503 once AFTER passed.
func TestServeDegrades(t *testing.T) {
	root := t.TempDir()
	if err := WriteDegradingInstall(root, "3.0.0", 300*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, root, fmt.Sprintf("127.0.0.1:%d", port), "") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	saw := map[int]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !saw[503] {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if !saw[200] && resp.StatusCode == 503 {
				t.Fatal("503 before it ever answered 200")
			}
			saw[resp.StatusCode] = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !saw[200] || !saw[503] {
		t.Fatalf("statuses seen %v, want 200 then 503", saw)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }
