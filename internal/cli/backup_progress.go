package cli

import (
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// progressBar is a byte progress bar on stderr (bytes, rate, ETA). A nil
// *progressBar is valid and does nothing, which is what a script gets.
type progressBar struct{ bar *progressbar.ProgressBar }

// frameEvery is how often the bar is redrawn, and so the least time its first rate is
// measured over.
const frameEvery = 200 * time.Millisecond

// showProgress: only a person at a terminal gets a bar.
func showProgress(io *ui.IO, asJSON bool) bool { return io.ErrTTY && !asJSON }

func newProgressBar(io *ui.IO, asJSON bool, total int64, what string) *progressBar {
	if !showProgress(io, asJSON) {
		return nil
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(io.ErrOut),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(frameEvery),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionEnableColorCodes(!io.NoColor),
		progressbar.OptionSetWidth(30),
		progressbar.OptionUseIECUnits(true), // MiB, as ui.Bytes
	)
	// progressbar starts its clock at its first frame, which it draws at once, on the first
	// update: that update's bytes were read before the clock started, and its rate is their
	// count over microseconds ("1.3 TB/s"). Reset starts the clock now and holds every frame
	// (the first too) until frameEvery has passed, so a rate is never measured over less;
	// a step done sooner shows no bar at all. reset does the same for each new total.
	bar.Reset()
	return &progressBar{bar: bar}
}

func (p *progressBar) set(n int64) {
	if p != nil {
		_ = p.bar.Set64(n)
	}
}

// describe changes the text before the bar (verify --all: which backup).
func (p *progressBar) describe(s string) {
	if p != nil {
		p.bar.Describe(s)
	}
}

func (p *progressBar) reset(total int64) {
	if p != nil {
		p.bar.Reset()
		p.bar.ChangeMax64(total)
	}
}

func (p *progressBar) finish() {
	if p != nil {
		_ = p.bar.Finish()
	}
}
