package assess

import (
	"time"
)

// Sample is one monitor reading of the service. Pointer fields are nil when
// that reading could not be taken: nil is "unknown", never zero.
type Sample struct {
	Time time.Time `json:"time"`
	// Active is the manager's view; nil when the manager could not be asked.
	Active    *bool  `json:"active,omitempty"`
	State     string `json:"state,omitempty"`
	CrashLoop bool   `json:"crash_loop,omitempty"`
	Restarts  *int   `json:"restarts,omitempty"`
	// PID is the process RSS and CPU were read from; RSS of different pids
	// is not one series (a restart frees the leaked memory).
	PID        int      `json:"pid,omitempty"`
	RSS        *uint64  `json:"rss_bytes,omitempty"`
	CPUPercent *float64 `json:"cpu_percent,omitempty"`
	// Probe is one GET of the health URL; nil when there is no URL.
	Probe *Probe `json:"probe,omitempty"`
	// ErrorLines is the number of error log lines since the previous sample;
	// nil when the log could not be read.
	ErrorLines *int `json:"error_lines,omitempty"`
	// AgentFailures is the number of log lines about agents failing to spawn since
	// the previous sample (counted whether or not --watch-for names them); nil when
	// the log could not be read.
	AgentFailures *int `json:"agent_failures,omitempty"`
	// Watch counts, per --watch-for condition, the log lines or probes that
	// matched it since the previous sample.
	Watch map[string]int `json:"watch,omitempty"`
}

// Probe is the outcome of one health URL request.
type Probe struct {
	OK         bool    `json:"ok"`
	LatencyMS  float64 `json:"latency_ms"`
	StatusCode int     `json:"status_code,omitempty"`
	// Network is true for a failure without an HTTP answer: refused,
	// reset, DNS, timeout.
	Network bool   `json:"network,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Ptr returns a pointer to v, for filling Sample's optional fields.
func Ptr[T any](v T) *T { return &v }

// Window returns the samples with Time in (now-d, now], in order.
func Window(samples []Sample, now time.Time, d time.Duration) []Sample {
	from := now.Add(-d)
	var out []Sample
	for _, s := range samples {
		if s.Time.After(from) && !s.Time.After(now) {
			out = append(out, s)
		}
	}
	return out
}
