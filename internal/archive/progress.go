package archive

import "time"

// progressInterval keeps callbacks to about ten a second: enough for a
// progress bar, too few to slow down a copy loop that runs per megabyte.
const progressInterval = 100 * time.Millisecond

type throttle struct {
	fn    Progress
	total int64
	last  time.Time
}

func (t *throttle) tick(n int64) {
	if t.fn == nil {
		return
	}
	if now := time.Now(); now.Sub(t.last) >= progressInterval {
		t.last = now
		t.fn(n, t.total)
	}
}

// done reports the final count unthrottled, so a bar always ends full.
func (t *throttle) done(n int64) {
	if t.fn == nil {
		return
	}
	if n > t.total {
		t.total = n // the file grew while it was read
	}
	t.fn(n, t.total)
}

type createThrottle struct {
	fn   func(files int, bytes int64)
	last time.Time
}

func (t *createThrottle) tick(files int, bytes int64, force bool) {
	if t.fn == nil {
		return
	}
	if now := time.Now(); force || now.Sub(t.last) >= progressInterval {
		t.last = now
		t.fn(files, bytes)
	}
}
