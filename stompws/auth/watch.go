package auth

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// reloadInterval is the least time between two looks at a watched file.
const reloadInterval = time.Second

// maxFileBytes bounds what is read from a users or JWKS file, so that a wrong path (a device, a
// log) cannot exhaust memory.
const maxFileBytes = 64 << 20

// watchedFile holds the parsed contents of a file that operators may rewrite while the server runs.
// It starts no goroutine: get looks at the file at most once per reloadInterval, on the caller's
// goroutine, and only one caller at a time does so while the others go on with the current
// contents. A file that changed is identified by device and inode, size and modification time.
type watchedFile[T any] struct {
	path   string
	what   string // "users file", "JWKS file": names the file in errors and logs
	parse  func(data []byte, prev *T) (*T, error)
	now    func() time.Time
	logger *slog.Logger

	current atomic.Pointer[T]
	// base is the time of the first load; nextCheck counts from it, so that the throttle follows
	// the monotonic clock when now is time.Now.
	base      time.Time
	nextCheck atomic.Int64 // nanoseconds after base

	mu      sync.Mutex  // serializes reloads; guards seen and lastErr
	seen    os.FileInfo // the file last read, whether or not it parsed
	lastErr string      // the last failure logged, so that a lasting failure is logged once
}

func newWatchedFile[T any](path, what string, parse func([]byte, *T) (*T, error), now func() time.Time, logger *slog.Logger) (*watchedFile[T], error) {
	w := &watchedFile[T]{path: path, what: what, parse: parse, now: now, logger: logger, base: now()}
	info, v, err := w.read(nil)
	if err != nil {
		return nil, err
	}
	w.seen = info
	w.current.Store(v)
	w.nextCheck.Store(int64(reloadInterval))
	return w, nil
}

// get returns the current contents, first reloading the file when a check is due and the file has
// changed. It never returns nil.
func (w *watchedFile[T]) get() *T {
	next := w.nextCheck.Load()
	if now := int64(w.now().Sub(w.base)); now >= next && w.nextCheck.CompareAndSwap(next, now+int64(reloadInterval)) {
		w.refresh()
	}
	return w.current.Load()
}

// refresh reloads the file if it changed since it was last read. A failure keeps the current
// contents and is logged once until the file changes again.
func (w *watchedFile[T]) refresh() {
	w.mu.Lock()
	defer w.mu.Unlock()
	info, err := os.Stat(w.path)
	if err == nil && sameFileState(info, w.seen) {
		return
	}
	if err == nil {
		info, v, rerr := w.read(w.current.Load())
		w.seen = info
		if rerr == nil {
			w.current.Store(v)
			w.lastErr = ""
			w.logger.Info("auth: reloaded", "file", w.path, "what", w.what)
			return
		}
		err = rerr
	}
	if msg := err.Error(); msg != w.lastErr {
		w.lastErr = msg
		w.logger.Error("auth: reload failed; keeping the previous contents", "file", w.path, "what", w.what, "err", err)
	}
}

// read reads and parses the file. The FileInfo describes the file that was read (nil when it
// could not be opened), so that a file that fails to parse is not parsed again until it changes.
func (w *watchedFile[T]) read(prev *T) (os.FileInfo, *T, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.what, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", w.what, err)
	}
	if !info.Mode().IsRegular() {
		return info, nil, fmt.Errorf("%s %s: not a regular file", w.what, w.path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return info, nil, fmt.Errorf("%s: %w", w.what, err)
	}
	if len(data) > maxFileBytes {
		return info, nil, fmt.Errorf("%s %s: larger than %d bytes", w.what, w.path, maxFileBytes)
	}
	v, err := w.parse(data, prev)
	if err != nil {
		return info, nil, fmt.Errorf("%s %s: %w", w.what, w.path, err)
	}
	return info, v, nil
}

// sameFileState reports whether a and b describe the same file with the same size and
// modification time. A nil b (nothing read yet) is never the same.
func sameFileState(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
