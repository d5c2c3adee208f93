package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flipServer answers the n-th request (from 0) with codes[n], and with the
// last code once they run out.
func flipServer(t *testing.T, codes ...int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := int(n.Add(1) - 1)
		w.WriteHeader(codes[min(i, len(codes)-1)])
		fmt.Fprintln(w, "ok?")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// slowServer holds every request until the client gives up.
func slowServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestHTTPProbeStatus(t *testing.T) {
	for _, tt := range []struct {
		code   int
		ok     bool
		detail string
	}{
		{200, true, "HTTP 200"},
		{204, true, "HTTP 204"},
		{299, true, "HTTP 299"},
		{404, false, "HTTP 404"},
		{500, false, "HTTP 500"},
		{503, false, "HTTP 503"},
	} {
		srv, _ := flipServer(t, tt.code)
		r := HTTPProbe{URL: srv.URL + "/health", Timeout: time.Second}.Probe(t.Context())
		if r.OK != tt.ok || r.Detail != tt.detail || r.StatusCode != tt.code || r.Check != "GET "+srv.URL+"/health" || r.Duration <= 0 {
			t.Errorf("status %d: %+v", tt.code, r)
		}
	}
}

func TestHTTPProbeConnectionRefused(t *testing.T) {
	r := (&HTTPProbe{URL: "http://" + closedPort(t) + "/health", Timeout: time.Second}).Probe(t.Context())
	if r.OK || r.Detail != "connection refused" || r.StatusCode != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestHTTPProbeSlowHandlerTimesOut(t *testing.T) {
	srv := slowServer(t)
	start := time.Now()
	r := HTTPProbe{URL: srv.URL, Timeout: 50 * time.Millisecond}.Probe(t.Context())
	if r.OK || r.Detail != "timeout after 50ms" {
		t.Fatalf("%+v", r)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("probe took %s with a 50ms timeout", took)
	}
}

func TestHTTPProbeSlowBodyTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		fmt.Fprint(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	r := HTTPProbe{URL: srv.URL, Timeout: 50 * time.Millisecond}.Probe(t.Context())
	if r.OK || r.StatusCode != 200 || !strings.Contains(r.Detail, "timeout after 50ms") {
		t.Fatalf("%+v", r)
	}
}

func TestHTTPProbeCancelled(t *testing.T) {
	srv := slowServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	r := HTTPProbe{URL: srv.URL, Timeout: 5 * time.Second}.Probe(ctx)
	if r.OK || !strings.Contains(r.Detail, "cancelled") {
		t.Fatalf("%+v", r)
	}
}

func TestHTTPProbeRedirects(t *testing.T) {
	var hops atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n == 0 {
			http.Redirect(w, r, "/ok", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// /hop/2 -> /hop/1 -> /hop/0 -> /ok: three redirects.
	if r := (HTTPProbe{URL: srv.URL + "/hop/2", Timeout: time.Second}).Probe(t.Context()); !r.OK {
		t.Errorf("three redirects: %+v", r)
	}
	hops.Store(0)
	r := HTTPProbe{URL: srv.URL + "/loop", Timeout: time.Second}.Probe(t.Context())
	if r.OK || r.StatusCode != http.StatusFound || !strings.Contains(r.Detail, "redirect") {
		t.Errorf("redirect loop: %+v", r)
	}
	if n := hops.Load(); n != 4 {
		t.Errorf("redirect loop: %d requests, want 4 (the first and three redirects)", n)
	}

	// A caller's client gets the limit too, and keeps its own policy.
	var seen int
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { seen++; return nil }}
	hops.Store(0)
	r = HTTPProbe{URL: srv.URL + "/loop", Timeout: time.Second, Client: client}.Probe(t.Context())
	if r.OK || hops.Load() != 4 || seen != 3 {
		t.Errorf("caller's client: %+v, %d requests, its CheckRedirect called %d times", r, hops.Load(), seen)
	}
}

func TestHTTPProbeEndlessBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 4096))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	r := HTTPProbe{URL: srv.URL, Timeout: 2 * time.Second}.Probe(t.Context())
	if !r.OK || r.Detail != "HTTP 200" {
		t.Fatalf("endless body: %+v (the body must be read only up to a bound)", r)
	}
}

func TestHTTPProbeBadURL(t *testing.T) {
	for _, u := range []string{"", "://x", "http://[::1"} {
		r := HTTPProbe{URL: u}.Probe(t.Context())
		if r.OK || r.Detail == "" {
			t.Errorf("%q: %+v", u, r)
		}
	}
	r := HTTPProbe{URL: "ftp://127.0.0.1/"}.Probe(t.Context())
	if r.OK || !strings.Contains(r.Detail, "unsupported protocol") {
		t.Errorf("ftp: %+v", r)
	}
}

func TestHTTPProbeRedactsPassword(t *testing.T) {
	r := HTTPProbe{URL: "http://user:secret@" + closedPort(t) + "/h", Timeout: time.Second}.Probe(t.Context())
	if strings.Contains(r.Check, "secret") || strings.Contains(r.Detail, "secret") {
		t.Fatalf("password in result: %+v", r)
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{OK: true, Check: "GET http://x/", Detail: "HTTP 200", Duration: 1500 * time.Microsecond, StatusCode: 200}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ok":true,"check":"GET http://x/","detail":"HTTP 200","duration_ms":1.5,"status_code":200}`; string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back != r {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func TestFuncProbe(t *testing.T) {
	r := FuncProbe{Name: "service active", F: func(context.Context) Result {
		time.Sleep(time.Millisecond)
		return Result{OK: true, Detail: "active (pid 42)"}
	}}.Probe(t.Context())
	if !r.OK || r.Check != "service active" || r.Detail != "active (pid 42)" || r.Duration < time.Millisecond {
		t.Fatalf("%+v", r)
	}
	r = FuncProbe{Name: "x", F: func(context.Context) Result { return Result{Check: "own", Duration: 7} }}.Probe(t.Context())
	if r.Check != "own" || r.Duration != 7 {
		t.Fatalf("FuncProbe overwrote the function's own fields: %+v", r)
	}
	if r := (FuncProbe{Name: "nil"}).Probe(t.Context()); r.OK || r.Check != "nil" {
		t.Fatalf("nil F: %+v", r)
	}
}

func TestAll(t *testing.T) {
	okSrv, _ := flipServer(t, 200)
	badSrv, _ := flipServer(t, 500)
	active := FuncProbe{Name: "service active", F: func(context.Context) Result { return Result{OK: true} }}

	ok, rs := All(t.Context(), active, HTTPProbe{URL: okSrv.URL})
	if !ok || len(rs) != 2 || rs[0].Check != "service active" || rs[1].Detail != "HTTP 200" {
		t.Fatalf("all passing: %v %+v", ok, rs)
	}
	ok, rs = All(t.Context(), HTTPProbe{URL: badSrv.URL}, active)
	if ok || len(rs) != 2 || rs[0].OK || !rs[1].OK {
		t.Fatalf("one failing: %v %+v (every probe must run)", ok, rs)
	}
	if ok, rs := All(t.Context()); ok || len(rs) != 0 {
		t.Fatalf("no probes: %v %+v", ok, rs)
	}
}

// The probe's description (printed, journaled, sent to webhooks) carries no credentials:
// neither a password nor a secret-looking query value.
func TestHTTPProbeCheckIsRedacted(t *testing.T) {
	r := HTTPProbe{URL: "http://user:pw@127.0.0.1:1/api/health?api_key=KEY123&x=1", Timeout: time.Second}.Probe(context.Background())
	if strings.Contains(r.Check, "KEY123") || strings.Contains(r.Check, "pw@") || !strings.Contains(r.Check, "/api/health") {
		t.Fatalf("check %q", r.Check)
	}
}
