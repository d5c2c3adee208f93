package appconfig

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func statuses(r ConnResult) string {
	var s []string
	for _, st := range r.Stages {
		s = append(s, st.Name+"="+st.Status)
	}
	return strings.Join(s, " ")
}

func TestConnectionHTTPSStages(t *testing.T) {
	var sawAuth, sawQuery string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth, sawQuery = r.Header.Get("Authorization"), r.URL.RawQuery
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	u := strings.Replace(srv.URL, "https://", "https://bob:hunter2@", 1) + "/v1?api_key=SEKRIT"
	res := TestConnection(context.Background(), ConnOptions{URL: u, RootCAs: pool, Timeout: 2 * time.Second})
	if !res.OK || statuses(res) != "dns=ok tcp=ok tls=ok http=ok" {
		t.Fatalf("%s: %+v", statuses(res), res)
	}
	if sawAuth != "" || sawQuery != "" {
		t.Errorf("credentials were sent: auth %q query %q", sawAuth, sawQuery)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "SEKRIT") || strings.Contains(string(b), "bob") {
		t.Errorf("credentials in the result: %s", b)
	}
	if !strings.Contains(res.Stages[3].Detail, "404") {
		t.Errorf("http detail %q", res.Stages[3].Detail)
	}
}

func TestConnectionUntrustedCertificateFailsTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	res := TestConnection(context.Background(), ConnOptions{URL: srv.URL, Timeout: 2 * time.Second})
	if res.OK || statuses(res) != "dns=ok tcp=ok tls=fail http=skipped" {
		t.Fatalf("%s", statuses(res))
	}
}

func TestConnectionLocalhostHTTPAndServerError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	res := TestConnection(context.Background(), ConnOptions{URL: "http://localhost:" + port + "/v1", Timeout: 2 * time.Second})
	if res.OK || statuses(res) != "dns=ok tcp=ok tls=skipped http=fail" {
		t.Fatalf("%s %+v", statuses(res), res)
	}
	if !strings.Contains(res.Stages[0].Detail, "localhost resolves to") {
		t.Errorf("dns detail %q", res.Stages[0].Detail)
	}
}

func TestConnectionRefusedFailsTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res := TestConnection(context.Background(), ConnOptions{URL: "https://" + addr + "/v1", Timeout: time.Second})
	if res.OK || statuses(res) != "dns=ok tcp=fail tls=skipped http=skipped" {
		t.Fatalf("%s", statuses(res))
	}
}

type fakeResolver struct{ err error }

func (f fakeResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) { return nil, f.err }

func TestConnectionDNSFailure(t *testing.T) {
	res := TestConnection(context.Background(), ConnOptions{URL: "https://api.invalid/v1",
		Resolver: fakeResolver{err: &net.DNSError{Err: "no such host", Name: "api.invalid", IsNotFound: true}}})
	if res.OK || statuses(res) != "dns=fail tcp=skipped tls=skipped http=skipped" {
		t.Fatalf("%s", statuses(res))
	}
	res = TestConnection(context.Background(), ConnOptions{URL: "ftp://x"})
	if res.OK || res.Stages[0].Status != "fail" {
		t.Fatalf("%s", statuses(res))
	}
}

// With a key, 401/403 mean the key was rejected (a failure); without one they mean the
// API is reachable. The key goes in x-api-key to URL/models and is never in the result.
func TestConnectionAPIKey(t *testing.T) {
	type seen struct{ path, key string }
	got := make(chan seen, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.Path, r.Header.Get("x-api-key")}
		switch r.Header.Get("x-api-key") {
		case "sk-ant-GOOD":
			w.WriteHeader(http.StatusOK)
		case "sk-ant-FORBIDDEN":
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	cases := []struct {
		key, source   string
		ok            bool
		check, path   string
		status, inDet string
	}{
		{"sk-ant-BAD", "claude.apiKey", false, "rejected", "/v1/models", "fail", "the API rejected the key (HTTP 401): check claude.apiKey"},
		{"sk-ant-FORBIDDEN", "ANTHROPIC_API_KEY", false, "rejected", "/v1/models", "fail", "the API rejected the key (HTTP 403): check ANTHROPIC_API_KEY"},
		{"sk-ant-GOOD", "claude.apiKey", true, "accepted", "/v1/models", "ok", "accepted the key from claude.apiKey"},
		{"", "", true, "none", "/v1", "ok", "HTTP 401 Unauthorized: the API is reachable (no API key is configured"},
	}
	for _, c := range cases {
		res := TestConnection(context.Background(), ConnOptions{URL: srv.URL + "/v1", APIKey: c.key, KeySource: c.source, RootCAs: pool, Timeout: 2 * time.Second})
		s := <-got
		if res.OK != c.ok || res.KeyCheck != c.check || res.Stages[3].Status != c.status || !strings.Contains(res.Stages[3].Detail, c.inDet) {
			t.Errorf("key %q: ok=%v key_check=%s %s: %s", c.key, res.OK, res.KeyCheck, statuses(res), res.Stages[3].Detail)
		}
		if s.path != c.path || s.key != c.key {
			t.Errorf("key %q: server saw GET %s with key %q", c.key, s.path, s.key)
		}
		if b, _ := json.Marshal(res); c.key != "" && strings.Contains(string(b), c.key) {
			t.Errorf("the key is in the result: %s", b)
		}
	}
}

// Over plain http the key is sent only to a loopback address.
func TestConnectionAPIKeyPlainHTTP(t *testing.T) {
	var sawKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawKey = r.Header.Get("x-api-key")
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	res := TestConnection(context.Background(), ConnOptions{URL: srv.URL + "/v1", APIKey: "sk-ant-BAD", Timeout: 2 * time.Second})
	if res.OK || res.KeyCheck != "rejected" || sawKey != "sk-ant-BAD" {
		t.Errorf("loopback: ok=%v key_check=%s saw %q", res.OK, res.KeyCheck, sawKey)
	}
	if !strings.Contains(res.Stages[3].Detail, "check the API key") {
		t.Errorf("detail without a source: %q", res.Stages[3].Detail)
	}
	// To this host's own non-loopback address the key would cross the network.
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("no non-loopback IPv4 address on this host")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skipf("listen on %s: %v", ip, err)
	}
	srv2 := httptest.NewUnstartedServer(srv.Config.Handler)
	srv2.Listener = l
	srv2.Start()
	defer srv2.Close()
	sawKey = "unset"
	res = TestConnection(context.Background(), ConnOptions{URL: srv2.URL + "/v1", APIKey: "sk-ant-BAD", Timeout: 2 * time.Second})
	if !res.OK || res.KeyCheck != "not_sent" || sawKey != "" || !strings.Contains(res.Stages[3].Detail, "not sent over plain http") {
		t.Errorf("%s: ok=%v key_check=%s saw %q: %s", srv2.URL, res.OK, res.KeyCheck, sawKey, res.Stages[3].Detail)
	}
}
