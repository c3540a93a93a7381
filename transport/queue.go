package transport

import "sync"

// queuedFrame is one frame in a frameBatch: its head lives in the batch's arena, its tail is the
// caller's slice, retained as is.
type queuedFrame struct {
	headStart, headEnd int
	tail               []byte
	binary             bool
}

func (f *queuedFrame) size() int { return f.headEnd - f.headStart + len(f.tail) }

// frameBatch is an append-only run of frames: copied heads packed in one arena, plus one entry per
// frame. It is not safe for concurrent use; the connection's mutex guards the batch being filled and
// the writer owns the batch it took.
type frameBatch struct {
	arena  []byte
	frames []queuedFrame
	bytes  int // heads plus tails
}

func (b *frameBatch) push(head, tail []byte, binary bool) {
	start := len(b.arena)
	b.arena = append(b.arena, head...)
	b.frames = append(b.frames, queuedFrame{headStart: start, headEnd: len(b.arena), tail: tail, binary: binary})
	b.bytes += len(head) + len(tail)
}

func (b *frameBatch) head(f *queuedFrame) []byte { return b.arena[f.headStart:f.headEnd:f.headEnd] }

// lineBreaksOnly reports whether f is nothing but "\n" or "\r\n": a STOMP heart-beat.
func (b *frameBatch) lineBreaksOnly(f *queuedFrame) bool {
	switch f.size() {
	case 1, 2:
		var p [2]byte
		n := copy(p[:], b.head(f))
		copy(p[n:], f.tail)
		return string(p[:f.size()]) == "\n" || string(p[:f.size()]) == "\r\n"
	}
	return false
}

// reset empties b for reuse, dropping its references to tails so written bodies can be collected.
func (b *frameBatch) reset() {
	clear(b.frames)
	b.frames = b.frames[:0]
	b.arena = b.arena[:0]
	b.bytes = 0
}

// Batches bigger than these are dropped rather than pooled, so that a burst that only a raised
// MaxQueuedBytes allows does not pin its memory. The bounds are twice a full default queue of 256-byte
// frames (16 Ki entries, 1 MiB of heads), because append overshoots when it grows a slice; at the exact
// size a connection streaming at full speed dropped and regrew its batches on every drain. Pooled
// batches themselves are released by the garbage collector once unused for two cycles.
const (
	maxPooledArena  = 2 << 20
	maxPooledFrames = 32 << 10
)

// batchPool holds empty batches. Idle connections hold none: the writer returns both of a connection's
// batches here when it exits.
var batchPool = sync.Pool{New: func() any { return new(frameBatch) }}

func getBatch() *frameBatch { return batchPool.Get().(*frameBatch) }

func putBatch(b *frameBatch) {
	if b == nil {
		return
	}
	b.reset()
	if cap(b.arena) > maxPooledArena {
		b.arena = nil
	}
	if cap(b.frames) > maxPooledFrames {
		b.frames = nil
	}
	batchPool.Put(b)
}

// writeBuffers is the scratch memory of one running writer: a buffer to coalesce frames into and an
// iovec list for vectored writes. A connection borrows one only while its writer runs.
type writeBuffers struct {
	buf []byte
	iov [][]byte
}

const (
	maxPooledBuf = 1 << 20
	maxPooledIov = 4096
)

var writeBuffersPool = sync.Pool{New: func() any { return new(writeBuffers) }}

func getWriteBuffers() *writeBuffers { return writeBuffersPool.Get().(*writeBuffers) }

func putWriteBuffers(w *writeBuffers) {
	if w == nil {
		return
	}
	clear(w.iov[:cap(w.iov)])
	w.iov = w.iov[:0]
	w.buf = w.buf[:0]
	if cap(w.buf) > maxPooledBuf {
		w.buf = nil
	}
	if cap(w.iov) > maxPooledIov {
		w.iov = nil
	}
	writeBuffersPool.Put(w)
}

// appendFrames copies frames[from:to] of b, heads and tails, onto dst.
func appendFrames(dst []byte, b *frameBatch, from, to int) []byte {
	for i := from; i < to; i++ {
		f := &b.frames[i]
		dst = append(dst, b.arena[f.headStart:f.headEnd]...)
		dst = append(dst, f.tail...)
	}
	return dst
}

// copiedFrameSize is the average frame size up to which a run of frames is copied into one buffer
// rather than written with writev: for small frames the copy costs less than the kernel's walk over
// an iovec entry per head and tail.
const copiedFrameSize = 1 << 10

// copyRun reports whether a run of frames, total bytes in all, is written copied into one buffer
// rather than vectored. A frame alone never is: its tail, maybe shared and large, goes out uncopied.
func copyRun(frames, total int) bool {
	return frames > 1 && total <= frames*copiedFrameSize
}

// appendFrameIovecs appends frames[from:to] of b to iov for a vectored write: heads from the arena,
// tails from the caller's memory, nothing copied. Heads are adjacent in the arena, so the heads of
// frames without a tail (receipts, errors, heart-beats) merge into one iovec.
func appendFrameIovecs(iov [][]byte, b *frameBatch, from, to int) [][]byte {
	headRun := -1 // arena offset where the last iovec starts, when that iovec is a run of heads
	for i := from; i < to; i++ {
		f := &b.frames[i]
		if f.headEnd > f.headStart {
			if headRun >= 0 {
				iov[len(iov)-1] = b.arena[headRun:f.headEnd:f.headEnd]
			} else {
				headRun = f.headStart
				iov = append(iov, b.head(f))
			}
		}
		if len(f.tail) > 0 {
			iov = append(iov, f.tail)
			headRun = -1
		}
	}
	return iov
}
