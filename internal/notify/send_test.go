package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfrollback/cfrollback/internal/runbook"
	"github.com/cfrollback/cfrollback/internal/settings"
)

// receiver is a local webhook: it answers each request with the next of
// replies (the last one repeats) and keeps what it got and when.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  []string
	arrived []time.Time
}

type reply struct {
	status     int
	retryAfter string
	hang       time.Duration // answer only after this (or when the client gives up)
	body       string
}

func newReceiver(t *testing.T, replies ...reply) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.bodies)
		rc.bodies = append(rc.bodies, string(b))
		rc.arrived = append(rc.arrived, time.Now())
		rc.mu.Unlock()
		rp := reply{status: http.StatusOK}
		if len(replies) > 0 {
			rp = replies[min(n, len(replies)-1)]
		}
		if rp.hang > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(rp.hang):
			}
		}
		if rp.retryAfter != "" {
			w.Header().Set("Retry-After", rp.retryAfter)
		}
		w.WriteHeader(rp.status)
		_, _ = io.WriteString(w, rp.body)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() ([]string, []time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bodies...), append([]time.Time(nil), rc.arrived...)
}

// lockedBuffer is a log several hooks may write at once; each write is
// offered to onWrite (tests wait on it instead of sleeping).
type lockedBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	onWrite chan string
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	if l.onWrite != nil {
		l.onWrite <- string(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testNotifier(log io.Writer) *Notifier {
	return &Notifier{Timeout: 200 * time.Millisecond, Retries: 3, Backoff: 10 * time.Millisecond, UserAgent: "cfrollback/test", Log: log}
}

const secret = "s3cr3t"

// A webhook that fails (500), then times out, then accepts is delivered on
// the third attempt; each failure is logged, the token in its URL never is.
func TestRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, reply{status: 500}, reply{hang: 5 * time.Second}, reply{status: 200})
	var log lockedBuffer
	hooks := []settings.Webhook{{Name: "ops", URL: rc.URL + "/hooks/T000/B000/" + secret + "?token=" + secret, Kind: Slack}}
	start := time.Now()
	res := testNotifier(&log).Send(t.Context(), hooks, FromRun(&runbook.Result{RunID: "r1", Service: "svc", Outcome: "ok", DowntimeMS: 1200}))
	if len(res) != 1 || !res[0].OK || res[0].Attempts != 3 || res[0].Status != 200 {
		t.Fatalf("%+v\n%s", res, log.String())
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s: the per-attempt timeout did not bound the hanging attempt", d)
	}
	for _, want := range []string{"attempt 1 of 4 failed: HTTP 500; next attempt in", "attempt 2 of 4 failed: no answer within 200ms"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), secret) || strings.Contains(res[0].URL, secret) {
		t.Errorf("secret in the log: %s %s", log.String(), res[0].URL)
	}
	bodies, _ := rc.got()
	var slack map[string]string
	if err := json.Unmarshal([]byte(bodies[2]), &slack); err != nil || !strings.Contains(slack["text"], "rolled back and healthy (run r1, downtime 1.2s)") {
		t.Errorf("slack body %s (%v)", bodies[2], err)
	}
}

// A 429 or 503 with Retry-After: 1 is retried no sooner than a second later
// (the backoff alone would be 10ms).
func TestRetryAfterHonoured(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		rc := newReceiver(t, reply{status: status, retryAfter: "1"}, reply{status: 200})
		var log lockedBuffer
		res := testNotifier(&log).Send(t.Context(), []settings.Webhook{{Name: "ops", URL: rc.URL}}, TestEvent("svc", "hi"))
		_, at := rc.got()
		if len(res) != 1 || !res[0].OK || res[0].Attempts != 2 || len(at) != 2 {
			t.Fatalf("%d: %+v\n%s", status, res, log.String())
		}
		if gap := at[1].Sub(at[0]); gap < time.Second {
			t.Errorf("%d: second attempt %s after the first; Retry-After said 1s", status, gap)
		}
		if !strings.Contains(log.String(), "next attempt in 1s") {
			t.Errorf("%d: log %s", status, log.String())
		}
	}
	// an HTTP date is honoured too
	rc := newReceiver(t, reply{status: 429, retryAfter: time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)}, reply{status: 200})
	res := testNotifier(nil).Send(t.Context(), []settings.Webhook{{Name: "ops", URL: rc.URL}}, TestEvent("svc", "hi"))
	if _, at := rc.got(); !res[0].OK || len(at) != 2 || at[1].Sub(at[0]) < 900*time.Millisecond {
		t.Errorf("HTTP date: %+v %v", res, at)
	}
}

// A Retry-After beyond MaxRetryAfter is not waited for: the hook is given
// up at once, and says why.
func TestRetryAfterTooLong(t *testing.T) {
	rc := newReceiver(t, reply{status: 429, retryAfter: "120"})
	start := time.Now()
	res := testNotifier(nil).Send(t.Context(), []settings.Webhook{{Name: "ops", URL: rc.URL}}, TestEvent("svc", "hi"))
	if res[0].OK || res[0].Attempts != 1 || !strings.Contains(res[0].Error, "asked to retry after 2m0s: longer than the 30s cfrollback waits") {
		t.Errorf("%+v", res[0])
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("waited %s", time.Since(start))
	}
}

// 4xx other than 408 and 429 are not retried; 408 is; an unreachable hook
// gives up after its retries. Hooks are independent.
func TestStatusesRetried(t *testing.T) {
	bad := newReceiver(t, reply{status: 400})
	gone := newReceiver(t, reply{status: 404})
	slow := newReceiver(t, reply{status: 408}, reply{status: 204})
	res := testNotifier(nil).Send(t.Context(), []settings.Webhook{
		{Name: "bad", URL: bad.URL}, {Name: "gone", URL: gone.URL}, {Name: "slow", URL: slow.URL},
		{Name: "down", URL: "http://127.0.0.1:1/x", Kind: StatusPage},
	}, TestEvent("svc", "hi"))
	if res[0].OK || res[0].Attempts != 1 || res[0].Status != 400 || res[0].Error != "HTTP 400 (not retried)" {
		t.Errorf("400: %+v", res[0])
	}
	if res[1].OK || res[1].Attempts != 1 || res[1].Status != 404 {
		t.Errorf("404: %+v", res[1])
	}
	if !res[2].OK || res[2].Attempts != 2 || res[2].Status != 204 {
		t.Errorf("408: %+v", res[2])
	}
	if res[3].OK || res[3].Attempts != 4 || res[3].Name != "down" || !strings.Contains(res[3].Error, "refused") {
		t.Errorf("unreachable: %+v", res[3])
	}
	if b, _ := bad.got(); len(b) != 1 {
		t.Errorf("400 was sent %d times", len(b))
	}
}

// Cancelling the context (Ctrl-C) ends a wait between attempts at once,
// even one a Retry-After asked for.
func TestCancelEndsWait(t *testing.T) {
	rc := newReceiver(t, reply{status: 503, retryAfter: "30"})
	log := &lockedBuffer{onWrite: make(chan string, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan []Delivery)
	go func() {
		done <- testNotifier(log).Send(ctx, []settings.Webhook{{Name: "ops", URL: rc.URL}}, TestEvent("svc", "hi"))
	}()
	line := <-log.onWrite // the first attempt failed: the 30s wait begins
	if !strings.Contains(line, "next attempt in 30s") {
		t.Fatalf("log %q", line)
	}
	cancelled := time.Now()
	cancel()
	select {
	case res := <-done:
		if d := time.Since(cancelled); d > time.Second {
			t.Errorf("Send returned %s after the cancel", d)
		}
		if res[0].OK || res[0].Attempts != 1 || !strings.Contains(res[0].Error, "HTTP 503; then cancelled: context canceled") {
			t.Errorf("%+v", res[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancel did not end the wait")
	}
}

// No URL with a secret reaches the log or the results: not in the hook's
// path, query or user info, not in the transport's errors, not when the
// receiver echoes it back in its body.
func TestSecretNeverLogged(t *testing.T) {
	rc := newReceiver(t, reply{status: 500, body: "bad hook http://x/hooks/" + secret}, reply{status: 302})
	var log lockedBuffer
	hooks := []settings.Webhook{
		{Name: "echo", URL: strings.Replace(rc.URL, "http://", "http://user:"+secret+"@", 1) + "/hooks/" + secret + "?token=" + secret},
		{Name: "down", URL: "http://127.0.0.1:1/services/" + secret + "?sig=" + secret},
		{Name: "hang", URL: newReceiver(t, reply{hang: 5 * time.Second}).URL + "/" + secret},
	}
	n := testNotifier(&log)
	n.Retries = 1
	res := n.Send(t.Context(), hooks, TestEvent("svc", "hi"))
	all, _ := json.Marshal(res)
	if strings.Contains(log.String(), secret) || strings.Contains(string(all), secret) {
		t.Errorf("secret shown:\n%s\n%s", log.String(), all)
	}
	if !strings.Contains(log.String(), "notify down (http://127.0.0.1:1/…?…): attempt 1 of 2 failed") {
		t.Errorf("log:\n%s", log.String())
	}
	if b, _ := rc.got(); len(b) != 2 {
		t.Errorf("echo hook got %d attempts", len(b))
	}
}

// The budget spent in a wait: no attempt is made that would start after it.
func TestBudget(t *testing.T) {
	n := &Notifier{Timeout: 5 * time.Second, Retries: 3}
	if got := n.Budget(); got != 110*time.Second {
		t.Errorf("defaults: budget %s, want 4×5s + 3×30s", got)
	}
	n.Retries = 50
	if got := n.Budget(); got != MaxTotal {
		t.Errorf("50 retries: budget %s, want %s", got, MaxTotal)
	}
	rc := newReceiver(t, reply{status: 503, retryAfter: "20"})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	res := testNotifier(nil).Send(ctx, []settings.Webhook{{Name: "ops", URL: rc.URL}}, TestEvent("svc", "hi"))
	if res[0].OK || res[0].Attempts != 1 || !strings.Contains(res[0].Error, "no time left to wait 20s") {
		t.Errorf("%+v", res[0])
	}
}

// Backoff doubles from the first wait, is capped, and is jittered within its upper half.
func TestBackoffJitter(t *testing.T) {
	n := &Notifier{Backoff: FirstBackoff}
	seen := map[time.Duration]bool{}
	for attempt, top := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 6: MaxBackoff, 40: MaxBackoff} {
		for range 50 {
			w := n.wait(attempt)
			if w < top/2 || w > top {
				t.Fatalf("attempt %d: wait %s outside [%s, %s]", attempt, w, top/2, top)
			}
			seen[w] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct waits in 250: no jitter", len(seen))
	}
}

// DryRun renders every payload and sends nothing.
func TestDryRun(t *testing.T) {
	rc := newReceiver(t)
	n := testNotifier(nil)
	n.DryRun = true
	res := n.Send(t.Context(), []settings.Webhook{{Name: "a", URL: rc.URL + "/" + secret, Kind: Slack}, {Name: "b", URL: rc.URL, Kind: "teams"}}, TestEvent("svc", "hi"))
	if !res[0].OK || !res[0].DryRun || string(res[0].Payload) != `{"text":"hi"}` || strings.Contains(res[0].URL, secret) {
		t.Errorf("%+v", res[0])
	}
	if res[1].OK || !strings.Contains(res[1].Error, `unknown webhook kind "teams"`) {
		t.Errorf("%+v", res[1])
	}
	if b, _ := rc.got(); len(b) != 0 {
		t.Errorf("dry run sent %d requests", len(b))
	}
}
