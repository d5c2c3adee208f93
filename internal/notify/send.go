package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/cfrollback/cfrollback/internal/appconfig"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// The retry policy's fixed numbers; notify.timeout and notify.retries are the
// settings.
const (
	// FirstBackoff is the wait before the second attempt; it doubles after
	// each attempt, up to MaxBackoff, and each wait is drawn at random from
	// its upper half (jitter, so hooks retried together do not stay together).
	FirstBackoff = 500 * time.Millisecond
	MaxBackoff   = 10 * time.Second
	// MaxRetryAfter is the longest Retry-After (429, 503) that is waited for.
	// A webhook asking for longer is given up at once: waiting would hold the
	// command, and retrying sooner than asked would only be refused again.
	MaxRetryAfter = 30 * time.Second
	// MaxTotal caps one Send whatever the settings: with the defaults (5s,
	// 3 retries) the bound is 4×5s + 3×30s = 110s.
	MaxTotal = 2 * time.Minute
)

// Delivery is one webhook's result.
type Delivery struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	URL      string `json:"url"` // redacted: scheme://host only
	OK       bool   `json:"ok"`
	Attempts int    `json:"attempts"`
	Status   int    `json:"status,omitempty"`
	Error    string `json:"error,omitempty"`
	// Payload is the body that would be sent (DryRun only).
	Payload json.RawMessage `json:"payload,omitempty"`
	DryRun  bool            `json:"dry_run,omitempty"`
}

// Notifier sends events to webhooks (see the package doc for the policy).
type Notifier struct {
	// Client makes each attempt; its Timeout is replaced by Timeout. Nil
	// means a plain http.Client.
	Client    *http.Client
	Timeout   time.Duration // one attempt, answer and body included
	Retries   int           // attempts after the first
	Backoff   time.Duration // wait before the second attempt (FirstBackoff)
	UserAgent string
	// Log gets one line per failed attempt, URLs redacted; nil: none.
	Log io.Writer
	// DryRun renders each payload and sends nothing.
	DryRun bool

	logMu sync.Mutex
}

// New is the Notifier for notify.timeout and notify.retries.
func New(cfg settings.NotifyConfig, log io.Writer, userAgent string) *Notifier {
	return &Notifier{Timeout: cfg.Timeout, Retries: cfg.Retries, Backoff: FirstBackoff, UserAgent: userAgent, Log: log}
}

// clone is n with its own log lock.
func (n *Notifier) clone() *Notifier {
	return &Notifier{Client: n.Client, Timeout: n.Timeout, Retries: n.Retries, Backoff: n.Backoff, UserAgent: n.UserAgent, Log: n.Log, DryRun: n.DryRun}
}

// Budget is the longest one Send may take: every attempt timing out and
// every wait at its longest, capped by MaxTotal.
func (n *Notifier) Budget() time.Duration {
	b := time.Duration(n.Retries+1)*n.Timeout + time.Duration(n.Retries)*max(MaxBackoff, MaxRetryAfter)
	if n.Retries > 1000 || b > MaxTotal || b <= 0 {
		return MaxTotal
	}
	return b
}

// Send delivers ev to every hook, all at once, within Budget, and returns
// their results in the hooks' order. It returns no error: what a failed
// delivery means is the caller's to say.
func (n *Notifier) Send(ctx context.Context, hooks []settings.Webhook, ev Event) []Delivery {
	ctx, cancel := context.WithTimeout(ctx, n.Budget())
	defer cancel()
	out := make([]Delivery, len(hooks))
	var wg sync.WaitGroup
	for i, h := range hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = n.deliver(ctx, h, ev)
		}()
	}
	wg.Wait()
	return out
}

func (n *Notifier) logf(format string, a ...any) {
	if n.Log == nil {
		return
	}
	n.logMu.Lock()
	defer n.logMu.Unlock()
	fmt.Fprintf(n.Log, format, a...)
}

// deliver sends to one hook: retryablehttp runs the attempts and the waits;
// check (its CheckRetry) judges each attempt and chooses the next wait.
func (n *Notifier) deliver(ctx context.Context, h settings.Webhook, ev Event) Delivery {
	kind := orBlank(h.Kind, Generic)
	d := Delivery{Name: h.Name, Kind: kind, URL: appconfig.RedactWebhookURL(h.URL), DryRun: n.DryRun}
	body, err := Payload(kind, ev)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	if n.DryRun {
		d.OK, d.Payload = true, body
		return d
	}
	hc := &http.Client{}
	if n.Client != nil {
		c := *n.Client
		hc = &c
	}
	hc.Timeout = n.Timeout
	redact := func(s string) string { return strings.ReplaceAll(s, h.URL, d.URL) }

	var next time.Duration // the wait check chose, handed to Backoff
	check := func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		d.Attempts++
		status, retry, why := judge(resp, err, n.Timeout)
		d.Status = status
		if why == "" {
			d.OK, d.Error = true, ""
			return false, nil
		}
		if ctx.Err() != nil {
			// Ctrl-C, or the budget spent: say which, not the transport's words.
			retry, why = false, stopped(ctx)
		}
		if retry && d.Attempts > n.Retries {
			retry = false
		}
		if retry {
			next = n.wait(d.Attempts)
			if ra, ok := retryAfter(resp); ok {
				next = ra
				if ra > MaxRetryAfter {
					retry = false
					why += fmt.Sprintf(" (asked to retry after %s: longer than the %s cfrollback waits)", ra, MaxRetryAfter)
				}
			}
			if dl, ok := ctx.Deadline(); retry && ok && time.Until(dl) < next {
				retry = false
				why += fmt.Sprintf(" (no time left to wait %s within the notification's budget)", next.Round(time.Millisecond))
			}
		}
		d.Error = redact(why)
		more := ""
		if retry {
			more = fmt.Sprintf("; next attempt in %s", next.Round(time.Millisecond))
		}
		n.logf("notify %s (%s): attempt %d of %d failed: %s%s\n", h.Name, d.URL, d.Attempts, n.Retries+1, d.Error, more)
		return retry, nil
	}
	c := &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       nil, // its lines carry whole URLs; check logs instead
		RetryMax:     n.Retries,
		CheckRetry:   check,
		Backoff:      func(_, _ time.Duration, _ int, _ *http.Response) time.Duration { return next },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, h.URL, body)
	if err != nil {
		d.Error = redact(unwrapURLError(err).Error())
		return d
	}
	req.Header.Set("Content-Type", "application/json")
	if n.UserAgent != "" {
		req.Header.Set("User-Agent", n.UserAgent)
	}
	resp, err := c.Do(req)
	if resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}
	if err != nil && d.Attempts == 0 {
		d.Error = redact(unwrapURLError(err).Error())
	}
	if !d.OK && ctx.Err() != nil {
		// Ctrl-C or the budget, in an attempt or in a wait between two.
		if s := stopped(ctx); d.Error == "" {
			d.Error = s
		} else if !strings.HasSuffix(d.Error, s) {
			d.Error += "; then " + s
		}
	}
	return d
}

// judge classifies one attempt: why is "" when the webhook accepted it;
// retry says whether another attempt may help (no answer, 408, 429, 5xx) or
// not (any other 4xx, a bad URL).
func judge(resp *http.Response, err error, timeout time.Duration) (status int, retry bool, why string) {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, true, fmt.Sprintf("no answer within %s", timeout)
		}
		return 0, true, unwrapURLError(err).Error()
	}
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return s, false, ""
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return s, true, fmt.Sprintf("HTTP %d", s)
	default:
		return s, false, fmt.Sprintf("HTTP %d (not retried)", s)
	}
}

// wait is the backoff before attempt+1: FirstBackoff doubled per attempt,
// capped at MaxBackoff, drawn from its upper half.
func (n *Notifier) wait(attempt int) time.Duration {
	d := n.Backoff
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter for a retry's backoff, not a secret
}

// retryAfter reads a 429's or 503's Retry-After: seconds or an HTTP date.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, 1<<30)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(time.Until(t), 0), true
}

// unwrapURLError drops *url.Error's "Post \"URL\":" prefix: the URL may hold a token.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// stopped says why ctx ended: the operator, or the budget.
func stopped(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "gave up: the notification's time budget is spent"
	}
	return "cancelled: " + context.Cause(ctx).Error()
}
