package archive

import (
	"io"
	"path"
	"runtime"
	"sync"
	"sync/atomic"
)

// Extraction is a pipeline. The reader (the goroutine that called Extract)
// decompresses, walks the headers in order, applies the rules and creates
// every directory, so a parent exists before anything is put in it. Regular
// files of up to smallFileMax bytes are read into memory and, with symlinks,
// handed to extractWriters writer goroutines: an install dir is mostly small
// files, and creating one costs a few system calls that wait on the file
// system's journal and locks; several in flight can hide that wait where the
// disk rather than the CPU is the limit (docs/BENCHMARKS.md: on the 2-core
// test machine they did not). Larger files are written by the reader itself,
// streamed, as before. Hard links are made by the reader once every
// writer has finished, so their targets are complete; then directories get
// their modes and times, then one syncfs, exactly as when everything was
// sequential.
//
// Memory is bounded by memBudget, the bytes of file data read but not yet
// written, whatever the archive holds.
const (
	smallFileMax = 1 << 20
	memBudget    = 16 << 20
)

// extractWriters is the number of writer goroutines; 0 writes everything in
// the reader, sequentially (benchmarks compare the two). Twice the CPUs, at
// most 8: on the 2-core test machine more writers only added system time
// (lock contention in the kernel) without making the runs shorter. Measured
// with BenchmarkExtractVsTar, see docs/BENCHMARKS.md.
var extractWriters = min(2*runtime.GOMAXPROCS(0), 8)

// writerQueue is the number of jobs a writer may have waiting.
const writerQueue = 64

// placeEntry is (*extractor).place; tests swap it to make a writer fail.
var placeEntry = (*extractor).place

type job struct {
	e    entry
	data []byte // a regular file's contents; nil for a symlink
}

type pipeline struct {
	x       *extractor // the reader's
	jobs    []chan job // one per writer; nil when there are no writers
	lastDir string     // the directory of the last file handed out...
	next    int        // ...and the writer it went to
	wg      sync.WaitGroup
	budget  budget
	links   []entry // hard links, made last
	stopped atomic.Bool

	mu  sync.Mutex
	err error // the first writer's error

	afterMu sync.Mutex
	after   func(n int)
	written int
}

func newPipeline(x *extractor, writers int, after func(n int)) *pipeline {
	p := &pipeline{x: x, after: after}
	p.budget.init(memBudget)
	p.wg.Add(writers)
	for range writers {
		ch := make(chan job, writerQueue)
		p.jobs = append(p.jobs, ch)
		go p.write(x.clone(), ch)
	}
	return p
}

// visit is the scanner's visitor; it runs in the reader.
func (p *pipeline) visit(e entry, data io.Reader) error {
	if err := p.failure(); err != nil {
		return err
	}
	if err := p.x.makeDirs(e); err != nil {
		return err
	}
	switch e.kind {
	case kindHardlink:
		p.links = append(p.links, e)
		return nil
	case kindFile:
		if p.jobs == nil || e.hdr.Size > smallFileMax {
			err := p.x.writeFile(e, func(w io.Writer) (int64, error) { return copyData(w, data) })
			if err != nil {
				return err
			}
			break
		}
		buf, err := p.read(e, data)
		if err != nil {
			return err
		}
		return p.submit(job{e: e, data: buf})
	case kindSymlink:
		return p.submit(job{e: e})
	}
	p.done()
	return nil
}

// read reads a small file's data into memory, within the budget.
func (p *pipeline) read(e entry, data io.Reader) ([]byte, error) {
	size := e.hdr.Size
	if size == 0 {
		return nil, nil
	}
	p.budget.acquire(size)
	buf := make([]byte, size)
	n, err := io.ReadFull(data, buf)
	if err != nil {
		p.budget.release(size)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, shortData(e, int64(n))
		}
		return nil, err
	}
	return buf, nil
}

func (p *pipeline) submit(j job) error {
	if p.jobs == nil {
		if err := placeEntry(p.x, j.e, j.data); err != nil {
			return err
		}
		p.done()
		return nil
	}
	// A directory's files all go to one writer, the next directory's to the
	// next writer: creating a file locks its directory, so writers in one
	// directory would only queue on that lock, while writers in different
	// directories really run in parallel. Each writer also keeps its
	// directory open across its files.
	if dir := path.Dir(j.e.name); dir != p.lastDir {
		p.lastDir = dir
		p.next = (p.next + 1) % len(p.jobs)
	}
	p.jobs[p.next] <- j
	return nil
}

// write is one writer goroutine. After a failure anywhere it only drains the
// queue, giving back the memory, so that the reader never waits forever.
func (p *pipeline) write(w *extractor, jobs <-chan job) {
	defer p.wg.Done()
	defer w.closeParent()
	for j := range jobs {
		if !p.stopped.Load() {
			if err := placeEntry(w, j.e, j.data); err != nil {
				p.fail(err)
			} else {
				p.done()
			}
		}
		p.budget.release(int64(len(j.data)))
	}
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.stopped.Store(true)
}

func (p *pipeline) failure() error {
	if !p.stopped.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// wait ends the writers and returns the first error one of them had. When
// scanErr is set, writers drop what is still queued.
func (p *pipeline) wait(scanErr error) error {
	if scanErr != nil {
		p.stopped.Store(true)
	}
	for _, ch := range p.jobs {
		close(ch)
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// linkAll makes the hard links, in archive order, once all files exist.
func (p *pipeline) linkAll() error {
	for _, e := range p.links {
		if err := p.x.link(e); err != nil {
			return err
		}
		p.done()
	}
	return nil
}

// done counts an entry as written for ExtractOptions.AfterEntry. Calls are
// serialised: a writer may be the one that reports.
func (p *pipeline) done() {
	if p.after == nil {
		return
	}
	p.afterMu.Lock()
	defer p.afterMu.Unlock()
	p.written++
	p.after(p.written)
}

// budget is a counting semaphore of bytes. Requests never exceed the total
// (smallFileMax <= memBudget), so acquire always ends: the writers release
// what they hold whether they write it or drop it.
type budget struct {
	mu   sync.Mutex
	cond sync.Cond
	free int64
}

func (b *budget) init(n int64) {
	b.free = n
	b.cond.L = &b.mu
}

func (b *budget) acquire(n int64) {
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}
