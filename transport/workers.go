package transport

import (
	"sync"
	"time"
)

// workerIdle is how long a worker goroutine waits for its next task before it exits.
const workerIdle = time.Second

// maxIdleWorkers bounds the idle workers: a worker finishing a task while that many wait exits at
// once. A broadcast to many connections starts a writer for each, far more at once than will be
// needed again soon; keeping them all would hold a stack per connection, the very cost parking saves.
const maxIdleWorkers = 1024

// workers runs the transport's short tasks: a connection's writer, from the first frame queued to the
// drained queue, and a parked reader resumed by its socket or by its connection closing.
//
// Such a task on a new goroutine starts on a stack sized by the runtime's average, which is small when
// most connections are parked (they have no goroutine at all), then grows it in steps, copying it each
// time: for a writer that writes one frame, the copies cost about as much as the write. A worker
// goroutine keeps its grown stack from task to task, and exits once idle for workerIdle, so that what
// the pool holds follows the recent peak of concurrent tasks, up to maxIdleWorkers.
var workers workerPool

// workerPool hands tasks to idle worker goroutines, most recently idle first, starting a new one when
// none is idle. Safe for concurrent use.
type workerPool struct {
	mu      sync.Mutex
	idle    []*worker   // idle workers, longest idle first
	retire  *time.Timer // armed while idle is not empty
	retireF func()      // retireIdle, bound once
}

// worker is one goroutine of the pool.
type worker struct {
	tasks     chan func() // capacity 1, so that handing over a task never blocks; nil tells it to exit
	idleSince time.Time   // guarded by the pool's mu
}

// run runs task on a worker goroutine and returns at once.
func (p *workerPool) run(task func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.tasks <- task
		return
	}
	p.mu.Unlock()
	go p.work(&worker{tasks: make(chan func(), 1)}, task)
}

// work is a worker's goroutine: it runs its first task, then whatever it is handed, until told to exit
// or not kept.
func (p *workerPool) work(w *worker, task func()) {
	for task != nil {
		task()
		task = p.await(w)
	}
}

// await enlists w as idle and waits for its next task; nil means exit, also at once when
// maxIdleWorkers wait already.
func (p *workerPool) await(w *worker) func() {
	p.mu.Lock()
	if len(p.idle) >= maxIdleWorkers {
		p.mu.Unlock()
		return nil
	}
	w.idleSince = time.Now()
	p.idle = append(p.idle, w)
	if p.retire == nil {
		p.retireF = p.retireIdle
		p.retire = time.AfterFunc(workerIdle, p.retireF)
	} else if len(p.idle) == 1 {
		p.retire.Reset(workerIdle)
	}
	p.mu.Unlock()
	return <-w.tasks
}

// retireIdle runs on the retire timer: it tells the workers idle for workerIdle or longer to exit, and
// re-arms the timer for the next one.
func (p *workerPool) retireIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= workerIdle {
		p.idle[n].tasks <- nil
		n++
	}
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	if rest > 0 {
		p.retire.Reset(workerIdle - now.Sub(p.idle[0].idleSince))
	}
}

// idleWorkers reports how many workers wait for a task.
func (p *workerPool) idleWorkers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
