package transport

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// frameSink is the transport-specific half of a connection: how a batch reaches the network and how
// the network connection is shut.
type frameSink interface {
	// writeBatch writes every frame of b in order, in as few writes as the transport allows, bracketing
	// each write call with outbound.beginWrite and outbound.endWrite. Called from the writer only.
	writeBatch(b *frameBatch) error
	// closeGracefully shuts the connection after the queue has been flushed, bounded by ctx and by
	// closeGrace. Every queued frame has been written by then; what happens during the shutdown itself
	// (a peer that does not answer, ctx ending) loses nothing and is not reported.
	closeGracefully(ctx context.Context, code CloseCode, reason string)
	// kill closes the network connection at once so that every blocked read and write fails. It must not
	// block, and may be called repeatedly and concurrently, from any goroutine.
	kill()
	// release frees what the transport library still holds after kill, waiting for it if needed.
	release()
}

// outbound is the part of a connection every transport shares: the byte-bounded frame queue, the
// writer goroutine that drains it, the write watchdog, and the close sequence.
//
// Lock order: mu is a leaf. It is never held while calling into the network, the sink or OnDrain.
type outbound struct {
	sink         frameSink
	maxQueued    int
	maxBatch     int
	writeTimeout time.Duration
	writeLoopFn  func() // writeLoop bound once, so that starting the writer does not allocate

	mu        sync.Mutex
	onDrain   func()        // see Conn.SetOnDrain
	pending   *frameBatch   // frames not yet taken by the writer; nil when none (idle connections hold none)
	spare     *frameBatch   // the writer's previous batch, kept for reuse while the writer runs
	queued    int           // bytes in pending plus the unwritten rest of the batch being written
	writing   bool          // a writer goroutine is running
	drainDue  bool          // a batch was written since OnDrain was last called
	closing   bool          // Close or Abort has started: no more frames are accepted
	aborted   bool          // Abort has been called
	stopErr   error         // why writing stopped (write failure, Abort, Close giving up); nil while healthy
	drained   chan struct{} // set by Close to wait for the flush; closed by the writer as it exits
	closeDone chan struct{} // closed when the first Close has finished
	closeErr  error         // result of the first Close, readable once closeDone is closed

	writers    sync.WaitGroup // the writer goroutine; Add only under mu while !closing
	localClose atomic.Bool    // Close or Abort has started; read lock-free by Read
	writeStart atomic.Int64   // monoNow when the write call in progress began; 0 between write calls
	stalled    atomic.Bool    // the watchdog tore the connection down
	lastWrite  atomic.Int64   // unix nanoseconds of the last completed write, 0 before any
	written    atomic.Uint64  // bytes handed to the operating system
	writeCalls atomic.Uint64  // write calls made, for the frames-per-write figure
	park       parking        // the reader's parking state (ServeReads)

	watchdog      atomic.Pointer[time.Timer] // set while armed; see beginWrite
	watchdogArmed atomic.Bool                // the watchdog timer is armed

	// Owned by the running writer; handed from one writer to the next through mu.
	buffers      *writeBuffers
	batchWritten int // bytes of the current batch already written
}

func (o *outbound) init(opts Options, sink frameSink) {
	opts = opts.withDefaults()
	o.sink = sink
	o.maxQueued = opts.MaxQueuedBytes
	o.maxBatch = opts.MaxBatchBytes
	o.writeTimeout = opts.WriteTimeout
	o.writeLoopFn = o.writeLoop
}

// Enqueue implements Conn.Enqueue.
func (o *outbound) Enqueue(head, tail []byte, binary bool) error {
	n := len(head) + len(tail)
	o.mu.Lock()
	if o.closing || o.stopErr != nil {
		o.mu.Unlock()
		return ErrClosed
	}
	if n == 0 {
		o.mu.Unlock()
		return nil
	}
	if o.queued > 0 && o.queued+n > o.maxQueued {
		o.mu.Unlock()
		return ErrSlowConsumer
	}
	if o.pending == nil {
		o.pending = getBatch()
	}
	o.pending.push(head, tail, binary)
	o.queued += n
	start := !o.writing
	if start {
		o.writing = true
		o.writers.Add(1)
	}
	o.mu.Unlock()
	if start {
		workers.run(o.writeLoopFn)
	}
	return nil
}

// SetOnDrain implements Conn.SetOnDrain.
func (o *outbound) SetOnDrain(f func()) {
	o.mu.Lock()
	o.onDrain = f
	o.mu.Unlock()
}

// Queued implements Conn.Queued.
func (o *outbound) Queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queued
}

// Written implements Conn.Written.
func (o *outbound) Written() uint64 { return o.written.Load() }

// LastWrite implements Conn.LastWrite.
func (o *outbound) LastWrite() time.Time {
	ns := o.lastWrite.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// writeLoop is the writer, run on a worker goroutine (see workers). It takes the whole pending batch
// at once, writes it without the lock, and repeats until nothing is pending; then it calls OnDrain,
// checks once more, returns its buffers to the pools and ends. An idle connection therefore has no
// writer and holds no buffers.
func (o *outbound) writeLoop() {
	defer o.writers.Done()
	o.mu.Lock()
	for {
		if b := o.pending; b != nil && len(b.frames) > 0 && o.stopErr == nil {
			o.pending, o.spare = o.spare, nil
			o.mu.Unlock()

			o.batchWritten = 0
			err := o.sink.writeBatch(b)
			if err != nil && o.stalled.Load() {
				err = fmt.Errorf("%w: a write was blocked longer than %v", ErrWriteTimeout, o.writeTimeout)
			}
			unwritten := b.bytes - o.batchWritten
			b.reset()

			o.mu.Lock()
			o.queued -= unwritten
			o.spare = b
			o.drainDue = true
			if err != nil {
				o.stopLocked(err)
				o.mu.Unlock()
				o.kill()
				o.mu.Lock()
			}
			continue
		}
		if f := o.onDrain; o.drainDue && f != nil && !o.closing && o.stopErr == nil {
			o.drainDue = false
			o.mu.Unlock()
			f()
			o.mu.Lock()
			continue
		}
		o.drainDue = false
		putWriteBuffers(o.buffers)
		o.buffers = nil
		putBatch(o.pending)
		putBatch(o.spare)
		o.pending, o.spare = nil, nil
		o.writing = false
		if o.drained != nil {
			close(o.drained)
			o.drained = nil
		}
		o.mu.Unlock()
		return
	}
}

// stopLocked records why writing stopped, if nothing was recorded before, and discards what is still
// pending. o.mu must be held.
func (o *outbound) stopLocked(err error) {
	if o.stopErr == nil {
		o.stopErr = err
	}
	if o.pending != nil {
		o.queued -= o.pending.bytes
		putBatch(o.pending)
		o.pending = nil
	}
}

// scratch returns the running writer's buffers, borrowing them from the pool on first use.
func (o *outbound) scratch() *writeBuffers {
	if o.buffers == nil {
		o.buffers = getWriteBuffers()
	}
	return o.buffers
}

// The write watchdog is one timer per connection, made by the first write after it last went quiet
// and re-armed from its own callback only while writes go on: a write costs a clock read and two
// atomic stores, not a timer reset and stop, which at one frame per write (deliveries at a low rate)
// cost as much as a sixth of the write itself. A connection quiet for WriteTimeout holds no timer.

// monoStart anchors monoNow.
var monoStart = time.Now()

// monoNow reads the monotonic clock, in nanoseconds; never 0.
func monoNow() int64 { return int64(time.Since(monoStart)) + 1 }

// beginWrite notes the start of one write call for the watchdog, arming it if it is not. Writer only.
func (o *outbound) beginWrite() {
	o.writeStart.Store(monoNow())
	if o.watchdogArmed.Load() || !o.watchdogArmed.CompareAndSwap(false, true) {
		return
	}
	o.watchdog.Store(time.AfterFunc(o.writeTimeout, o.checkWrite))
}

// endWrite notes the end of one write call that handed n bytes to the operating system. Writer only.
func (o *outbound) endWrite(n int) {
	o.writeStart.Store(0)
	o.writeCalls.Add(1)
	if n <= 0 {
		return
	}
	o.lastWrite.Store(time.Now().UnixNano())
	o.written.Add(uint64(n))
	o.batchWritten += n
	o.mu.Lock()
	o.queued -= n
	o.mu.Unlock()
}

// checkWrite runs on the watchdog timer. A write in progress for WriteTimeout tears the connection
// down; one in progress for less re-arms the timer for the rest; with none in progress the timer is
// dropped, for the next write to make another, unless a write began meanwhile.
func (o *outbound) checkWrite() {
	if start := o.writeStart.Load(); start != 0 {
		waited := time.Duration(monoNow() - start)
		if waited >= o.writeTimeout {
			o.stalled.Store(true)
			o.kill()
			return
		}
		o.watchdog.Load().Reset(o.writeTimeout - waited)
		return
	}
	// Dropped while still marked armed, so that no beginWrite touches it meanwhile.
	o.watchdog.Store(nil)
	o.watchdogArmed.Store(false)
	if o.writeStart.Load() != 0 && o.watchdogArmed.CompareAndSwap(false, true) {
		o.watchdog.Store(time.AfterFunc(o.writeTimeout, o.checkWrite))
	}
}

// stopWatchdog stops the watchdog for good, once the writer is gone.
func (o *outbound) stopWatchdog() {
	if t := o.watchdog.Load(); t != nil {
		t.Stop()
	}
}

// kill closes the network connection at once and wakes a parked reader to find out. Any goroutine.
func (o *outbound) kill() {
	o.sink.kill()
	o.park.wake()
}

// parkState implements parkableConn.parkState for the Conns that embed outbound.
func (o *outbound) parkState() *parking { return &o.park }

// readFailure turns the error of a failed read into what Conn.Read reports.
func (o *outbound) readFailure(err error) error {
	if o.localClose.Load() {
		return ErrClosed
	}
	if o.stalled.Load() {
		return fmt.Errorf("%w: a write was blocked longer than %v", ErrWriteTimeout, o.writeTimeout)
	}
	return err
}

// close implements Conn.Close.
func (o *outbound) close(ctx context.Context, code CloseCode, reason string) error {
	o.mu.Lock()
	if o.closeDone != nil {
		done := o.closeDone
		o.mu.Unlock()
		<-done
		return o.closeErr
	}
	done := make(chan struct{})
	o.closeDone = done
	o.closing = true
	o.localClose.Store(true)
	var drained chan struct{}
	if o.writing {
		drained = make(chan struct{})
		o.drained = drained
	}
	o.mu.Unlock()
	o.park.wake() // Read returns promptly once Close has started, also for a parked reader

	var err error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	o.mu.Lock()
	switch {
	case o.aborted:
		err = ErrClosed
	case err != nil:
		o.stopLocked(err)
	case o.stopErr != nil:
		err = fmt.Errorf("flush before close: %w", o.stopErr)
	}
	o.mu.Unlock()

	if err == nil {
		o.sink.closeGracefully(ctx, code, reason)
	}
	o.kill()
	o.writers.Wait()
	o.stopWatchdog()
	o.sink.release()

	o.mu.Lock()
	if o.aborted && err == nil {
		err = ErrClosed
	}
	o.mu.Unlock()
	o.closeErr = err
	close(done)
	return err
}

// abort implements Conn.Abort.
func (o *outbound) abort() {
	o.mu.Lock()
	o.aborted = true
	o.closing = true
	o.localClose.Store(true)
	o.stopLocked(ErrClosed)
	closeDone := o.closeDone
	o.mu.Unlock()

	o.kill()
	o.writers.Wait()
	o.stopWatchdog()
	if closeDone != nil {
		<-closeDone
	}
	o.sink.release()
}
