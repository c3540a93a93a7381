package transport

import (
	"sync"
	"testing"
	"time"
)

// workerGoroutines counts the goroutines of the worker pools.
func workerGoroutines() int { return goroutinesIn("transport.(*workerPool).work") }

// runAtOnce runs tasks tasks on p, all at the same time, and returns once every one has finished.
func runAtOnce(p *workerPool, tasks int) {
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(tasks)
	finished.Add(tasks)
	for range tasks {
		p.run(func() {
			started.Done()
			<-release
			finished.Done()
		})
	}
	started.Wait() // every task is running at once: one worker each
	close(release)
	finished.Wait()
}

func TestWorkersReuseThenRetire(t *testing.T) {
	var p workerPool
	const tasks = 20
	runAtOnce(&p, tasks)
	waitFor(t, "the workers to go idle", func() bool { return p.idleWorkers() == tasks })

	// A task run now goes to an idle worker: none is started.
	before := workerGoroutines()
	done := make(chan struct{})
	p.run(func() { close(done) })
	recvTimeout(t, done, "the task on an idle worker")
	if n := workerGoroutines(); n != before {
		t.Errorf("%d worker goroutines after a task on an idle worker, want %d", n, before)
	}

	start := time.Now()
	waitFor(t, "the idle workers to exit", func() bool { return p.idleWorkers() == 0 })
	if waited := time.Since(start); waited < workerIdle/2 {
		t.Errorf("idle workers exited after %v, want about %v", waited, workerIdle)
	}
}

// A burst of more concurrent tasks than maxIdleWorkers leaves no more than that many idle.
func TestWorkersIdleBounded(t *testing.T) {
	var p workerPool
	runAtOnce(&p, maxIdleWorkers+100)
	// Every worker has enlisted or exited once the goroutines running tasks are down to the idle ones.
	waitFor(t, "the extra workers to exit", func() bool { return p.idleWorkers() == maxIdleWorkers })
	waitFor(t, "the idle workers to exit", func() bool { return p.idleWorkers() == 0 })
}
