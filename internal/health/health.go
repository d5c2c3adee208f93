package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/cfrollback/cfrollback/internal/appconfig"
)

// Prober is one health check.
type Prober interface {
	Probe(ctx context.Context) Result
}

// Result is one check's verdict.
type Result struct {
	OK         bool
	Check      string        // what was checked: "GET http://127.0.0.1:3000/health", "service active"
	Detail     string        // why it passed or failed, for a person
	Duration   time.Duration // how long the check took
	StatusCode int           // the HTTP status, 0 when there was no response
}

type resultJSON struct {
	OK         bool    `json:"ok"`
	Check      string  `json:"check"`
	Detail     string  `json:"detail"`
	DurationMS float64 `json:"duration_ms"`
	StatusCode int     `json:"status_code,omitempty"`
}

// MarshalJSON writes snake_case fields and the duration in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{
		OK: r.OK, Check: r.Check, Detail: r.Detail, StatusCode: r.StatusCode,
		DurationMS: float64(r.Duration.Microseconds()) / 1000,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{OK: j.OK, Check: j.Check, Detail: j.Detail, StatusCode: j.StatusCode,
		Duration: time.Duration(j.DurationMS * float64(time.Millisecond))}
	return nil
}

// DefaultHTTPTimeout is HTTPProbe's per-request timeout when Timeout is 0.
const DefaultHTTPTimeout = 5 * time.Second

const (
	maxRedirects = 3
	maxBody      = 64 << 10
)

// HTTPProbe passes when a GET of URL answers 2xx within Timeout.
//
// At most 3 redirects are followed; a fourth is not, and its 3xx fails the
// check. Up to 64 KiB of the body is read and discarded, so a health
// endpoint that streams forever still gives an answer. Client nil means a
// client that ignores proxy settings and opens a new connection for every
// probe (a kept-alive connection could outlive a restart of the service);
// a caller's Client is used as given except for the redirect limit.
type HTTPProbe struct {
	URL     string
	Timeout time.Duration
	Client  *http.Client
}

var _ Prober = HTTPProbe{}

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 nil,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	DisableKeepAlives:     true,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 0, // the request context bounds it
}}

// Probe GETs the URL once.
func (p HTTPProbe) Probe(ctx context.Context) Result {
	start := time.Now()
	res := Result{Check: "GET " + appconfig.RedactURL(p.URL)}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	finish := func(detail string) Result {
		res.Detail = detail
		res.Duration = time.Since(start)
		return res
	}

	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, p.URL, nil)
	if err != nil {
		return finish(fmt.Sprintf("invalid URL: %v", unwrapURLError(err)))
	}
	req.Header.Set("User-Agent", "cfrollback-health")
	resp, err := p.client().Do(req)
	if err != nil {
		return finish(describe(ctx, err, timeout))
	}
	defer resp.Body.Close() //nolint:errcheck // a response body: nothing to lose
	res.StatusCode = resp.StatusCode
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
		status += fmt.Sprintf(" (redirect not followed: more than %d)", maxRedirects)
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil {
		return finish(status + ", then reading the body: " + describe(ctx, err, timeout))
	}
	res.OK = resp.StatusCode >= 200 && resp.StatusCode < 300
	return finish(status)
}

func (p HTTPProbe) client() *http.Client {
	base := p.Client
	if base == nil {
		base = defaultClient
	}
	c := *base
	next := base.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &c
}

// describe turns a request error into a short Detail.
func describe(parent context.Context, err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case parent.Err() != nil:
		return "check cancelled: " + parent.Err().Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without a complete response"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("cannot resolve %s: no such host", dnsErr.Name)
		}
		return fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	}
	return unwrapURLError(err).Error()
}

// unwrapURLError drops the `Get "http://...": ` prefix; Check names the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// FuncProbe is a check written as a function, such as "the service manager
// says active". Probe fills in Check with Name and Duration with the time F
// took when F leaves them empty.
type FuncProbe struct {
	Name string
	F    func(ctx context.Context) Result
}

var _ Prober = FuncProbe{}

// Probe runs F.
func (p FuncProbe) Probe(ctx context.Context) Result {
	if p.F == nil {
		return Result{Check: p.Name, Detail: "no check function"}
	}
	start := time.Now()
	r := p.F(ctx)
	if r.Check == "" {
		r.Check = p.Name
	}
	if r.Duration == 0 {
		r.Duration = time.Since(start)
	}
	return r
}

// All runs every probe, in order, and returns every result; ok when all
// passed. No probes is not ok: nothing checked is nothing known.
func All(ctx context.Context, probes ...Prober) (ok bool, results []Result) {
	ok = len(probes) > 0
	results = make([]Result, 0, len(probes))
	for _, p := range probes {
		r := p.Probe(ctx)
		results = append(results, r)
		ok = ok && r.OK
	}
	return ok, results
}

// AllConcurrent is All with every probe run on its own goroutine; the results are in the
// probes' order.
func AllConcurrent(ctx context.Context, probes ...Prober) (ok bool, results []Result) {
	if len(probes) < 2 {
		return All(ctx, probes...)
	}
	results = make([]Result, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.Probe(ctx)
		}()
	}
	wg.Wait()
	ok = true
	for _, r := range results {
		ok = ok && r.OK
	}
	return ok, results
}
