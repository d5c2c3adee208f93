package appconfig

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Stage is one step of the connection test.
type Stage struct {
	Name       string   `json:"name"`   // dns, tcp, tls, http
	Status     string   `json:"status"` // ok, fail, skipped
	DurationMS float64  `json:"duration_ms"`
	Detail     string   `json:"detail"`
	Verbose    []string `json:"verbose,omitempty"`
}

// ConnResult is the whole connection test.
type ConnResult struct {
	URL string `json:"url"` // without credentials
	OK  bool   `json:"ok"`
	// KeyCheck says what became of the API key: "none" (no key configured), "not_sent"
	// (plain http to another host), "accepted", "rejected" or "unchecked" (an answer
	// other than 2xx/401/403). Empty when the http stage did not run.
	KeyCheck string  `json:"key_check,omitempty"`
	Stages   []Stage `json:"stages"`
}

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// ConnOptions configure TestConnection.
type ConnOptions struct {
	URL string
	// APIKey, when set, is sent as the app sends it (x-api-key) to URL + "/models", an
	// endpoint that needs a valid key and costs no tokens, so that a rejection shows. It
	// is never part of the result. KeySource names where it came from
	// ("claude.apiKey") in the advice of a rejection.
	APIKey    string
	KeySource string
	Timeout   time.Duration // per stage
	Resolver  Resolver      // nil: net.DefaultResolver
	RootCAs   *x509.CertPool
	Now       func() time.Time
}

// CleanURL is raw without userinfo and with secret query values hidden:
// the form that may be printed.
func CleanURL(raw string) string { return RedactURL(raw) }

// TestConnection checks the API base URL stage by stage: DNS lookup, TCP
// connect, TLS handshake (https), and one HTTP GET over that same
// connection. A stage that fails skips the ones after it. Userinfo and query
// are stripped from the request; the only credential sent is opt.APIKey, and
// that only over TLS or to a loopback address. With a key, 401/403 fail the
// http stage (the key is rejected); without one they mean "reachable".
func TestConnection(ctx context.Context, opt ConnOptions) ConnResult {
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if opt.Resolver == nil {
		opt.Resolver = net.DefaultResolver
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.KeySource == "" {
		opt.KeySource = "the API key"
	}
	res := ConnResult{URL: CleanURL(opt.URL)}
	names := []string{"dns", "tcp", "tls", "http"}
	fail := func(i int, st Stage) ConnResult {
		res.Stages = append(res.Stages, st)
		for _, n := range names[i+1:] {
			res.Stages = append(res.Stages, Stage{Name: n, Status: "skipped", Detail: "not run: " + st.Name + " failed"})
		}
		return res
	}
	u, err := url.Parse(opt.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fail(0, Stage{Name: "dns", Status: "fail", Detail: fmt.Sprintf("%q is not an http:// or https:// URL", res.URL)})
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}

	// dns
	t0 := time.Now()
	var addrs []net.IP
	dns := Stage{Name: "dns"}
	if ip := net.ParseIP(host); ip != nil {
		addrs = []net.IP{ip}
		dns.Detail = host + " is an IP address: no lookup needed"
	} else {
		lctx, cancel := context.WithTimeout(ctx, opt.Timeout)
		ips, err := opt.Resolver.LookupIPAddr(lctx, host)
		cancel()
		dns.DurationMS = msSince(t0)
		if err != nil || len(ips) == 0 {
			dns.Status = "fail"
			dns.Detail = fmt.Sprintf("cannot resolve %s: %v; check /etc/resolv.conf and the host name in claude.baseUrl", host, err)
			return fail(0, dns)
		}
		for _, ip := range ips {
			addrs = append(addrs, ip.IP)
			dns.Verbose = append(dns.Verbose, "address "+ip.IP.String())
		}
		dns.Detail = fmt.Sprintf("%s resolves to %d address(es), first %s", host, len(ips), ips[0].IP)
	}
	dns.Status = "ok"
	res.Stages = append(res.Stages, dns)

	// tcp
	t0 = time.Now()
	tcp := Stage{Name: "tcp"}
	var conn net.Conn
	var dialErrs []string
	d := net.Dialer{Timeout: opt.Timeout}
	for _, ip := range addrs {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
		if err == nil {
			conn = c
			break
		}
		dialErrs = append(dialErrs, err.Error())
		tcp.Verbose = append(tcp.Verbose, err.Error())
	}
	tcp.DurationMS = msSince(t0)
	if conn == nil {
		tcp.Status = "fail"
		tcp.Detail = fmt.Sprintf("cannot connect to port %s: %s; check the firewall (ufw status) and any proxy", port, strings.Join(dialErrs, "; "))
		return fail(1, tcp)
	}
	defer conn.Close() //nolint:errcheck // a probe connection: nothing written to keep
	// The stages below read the raw connection under their own deadlines; an interrupt (the
	// run's context) ends them at once by expiring the connection's deadline.
	stopOnCancel := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stopOnCancel()
	tcp.Status, tcp.Detail = "ok", "connected to "+conn.RemoteAddr().String()
	res.Stages = append(res.Stages, tcp)

	// tls
	t0 = time.Now()
	tlsSt := Stage{Name: "tls"}
	if u.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: opt.RootCAs, MinVersion: tls.VersionTLS12})
		_ = tc.SetDeadline(time.Now().Add(opt.Timeout))
		err := tc.HandshakeContext(ctx)
		tlsSt.DurationMS = msSince(t0)
		if err != nil {
			tlsSt.Status = "fail"
			tlsSt.Detail = fmt.Sprintf("TLS handshake with %s failed: %v; check the system CA certificates and the clock (date)", host, err)
			return fail(2, tlsSt)
		}
		cs := tc.ConnectionState()
		tlsSt.Status = "ok"
		tlsSt.Detail = tls.VersionName(cs.Version) + ", certificate verified"
		if len(cs.PeerCertificates) > 0 {
			cert := cs.PeerCertificates[0]
			left := cert.NotAfter.Sub(opt.Now())
			tlsSt.Detail += fmt.Sprintf(", expires %s (in %d days)", cert.NotAfter.UTC().Format("2006-01-02"), int(left.Hours()/24))
			if left < 14*24*time.Hour {
				tlsSt.Detail += " - renew soon"
			}
			tlsSt.Verbose = append(tlsSt.Verbose, "subject "+cert.Subject.String(), "issuer "+cert.Issuer.String(),
				"cipher "+tls.CipherSuiteName(cs.CipherSuite))
		}
		conn = tc
	} else {
		tlsSt.Status = "skipped"
		tlsSt.Detail = "plain http: no TLS (anything sent, API keys included, travels unencrypted)"
	}
	res.Stages = append(res.Stages, tlsSt)

	// http
	t0 = time.Now()
	hs := Stage{Name: "http"}
	target := *u
	target.User, target.RawQuery, target.Fragment = nil, "", ""
	sendKey := opt.APIKey != "" && (u.Scheme == "https" || isLoopback(conn.RemoteAddr()))
	switch {
	case opt.APIKey == "":
		res.KeyCheck = "none"
	case !sendKey:
		res.KeyCheck = "not_sent"
	default:
		target.Path = strings.TrimSuffix(target.Path, "/") + "/models"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		hs.Status, hs.Detail = "fail", err.Error()
		return fail(3, hs)
	}
	req.Header.Set("User-Agent", "cfrollback-api-connection-test")
	if sendKey {
		req.Header.Set("x-api-key", opt.APIKey)
		req.Header.Set("anthropic-version", "2023-06-01")
		hs.Verbose = append(hs.Verbose, "GET "+target.Path+" with the API key from "+opt.KeySource)
	}
	req.Close = true
	_ = conn.SetDeadline(time.Now().Add(opt.Timeout))
	if err := req.Write(conn); err != nil {
		hs.DurationMS = msSince(t0)
		hs.Status, hs.Detail = "fail", "sending the request failed: "+RedactString(err.Error())
		return fail(3, hs)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	hs.DurationMS = msSince(t0)
	if err != nil {
		hs.Status, hs.Detail = "fail", "no HTTP answer: "+RedactString(err.Error())
		return fail(3, hs)
	}
	_ = resp.Body.Close()
	for _, h := range []string{"Server", "Content-Type", "Request-Id", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			hs.Verbose = append(hs.Verbose, h+": "+v)
		}
	}
	switch {
	case sendKey && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		res.KeyCheck = "rejected"
		hs.Status = "fail"
		hs.Detail = fmt.Sprintf("the API rejected the key (HTTP %d): check %s", resp.StatusCode, opt.KeySource)
	case resp.StatusCode >= 500:
		hs.Status = "fail"
		hs.Detail = fmt.Sprintf("HTTP %s: the API answers but is failing", resp.Status)
	case resp.StatusCode == http.StatusTooManyRequests:
		hs.Status = "fail"
		hs.Detail = fmt.Sprintf("HTTP %s: rate limited; lower claude.rateLimit or raise claude.retryDelay", resp.Status)
	case sendKey && resp.StatusCode < 300:
		res.KeyCheck = "accepted"
		hs.Status = "ok"
		hs.Detail = fmt.Sprintf("HTTP %s: the API is reachable and accepted the key from %s", resp.Status, opt.KeySource)
	case sendKey:
		res.KeyCheck = "unchecked"
		hs.Status = "ok"
		hs.Detail = fmt.Sprintf("HTTP %s for %s: the API is reachable; the key was not checked", resp.Status, target.Path)
	case res.KeyCheck == "not_sent":
		hs.Status = "ok"
		hs.Detail = fmt.Sprintf("HTTP %s: the API is reachable; the key was not sent over plain http, so it was not checked", resp.Status)
	default:
		hs.Status = "ok"
		hs.Detail = fmt.Sprintf("HTTP %s: the API is reachable (no API key is configured, so none was sent and 401/403/404 are expected)", resp.Status)
	}
	res.Stages = append(res.Stages, hs)
	res.OK = hs.Status == "ok"
	return res
}

// isLoopback reports whether a is a loopback address: a key sent there over plain http
// does not leave the host.
func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
