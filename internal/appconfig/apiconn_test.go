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
