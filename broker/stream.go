package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A stream destination is a topic whose policy sets Stream: it keeps its messages, numbered by
// offset from 1, within the policy's limits. Its live subscribers see every message as on any topic,
// each carrying its offset (Message.Offset); a subscription made with SubscribeOptions.From reads the
// kept messages from a starting point and then the live ones, paced by its subscriber's room, with no
// gap and no duplicate: it is a cursor over the stream rather than a member of the topic's fan-out.

// StreamLimits bound what a stream destination keeps; past any of them its oldest messages go. Zero
// means no bound of that kind.
type StreamLimits struct {
	MaxAge      time.Duration // messages older than this go
	MaxMessages int64
	MaxBytes    int64 // of Message.Size
}

// DefaultStreamMaxBytes is the bound a stream policy gets when it sets none of MaxAge, MaxMessages and
// MaxBytes: 64 MiB.
const DefaultStreamMaxBytes = 64 << 20

// StreamStore keeps the messages of stream destinations beyond the process (Options.Streams);
// without one they are kept in memory, within their limits and Options.MaxRetainedBytes, and are gone
// on restart.
type StreamStore interface {
	// OpenStream opens the stored messages of stream dest, creating the stream if it is new and
	// applying limits to it either way. The broker calls it once per destination, when the destination
	// is first used, without broker locks held.
	OpenStream(dest string, limits StreamLimits) (StoredStream, error)
}

// StoredStream is one stream destination's messages in a StreamStore. Offsets number the messages
// from 1 in the order appended; the oldest are removed as the stream's limits say. Its methods are
// safe for concurrent use and never call into the broker.
type StoredStream interface {
	// Bounds returns the offsets of the oldest and the newest message held; first is last+1 when none
	// is held, and last is the newest offset ever appended even then.
	Bounds() (first, last uint64, err error)
	// Append stores m, whose Offset is one more than the last offset appended. done is called, from
	// another goroutine with none of the store's locks held (on success it lets the stream's readers
	// read m), once m is stored (nil) or refused, in the order of the appends; after a refusal,
	// appends fail until the broker has read Bounds again. The broker calls it with the
	// destination's publish lock held, so it must not block.
	Append(m *Message, done func(error))
	// Read returns up to max messages held, oldest first, from offset from on, each with Offset set:
	// fewer, or none, at the end of the stream. Messages removed by the limits are skipped, so the
	// first may have a larger offset than from.
	Read(from uint64, max int) ([]*Message, error)
	// Seek returns the offset of the first message held that was stored at or after t; last+1 if
	// there is none.
	Seek(t time.Time) (uint64, error)
	// Numbered reports whether the store gives the offsets (a stream shared by the brokers of a
	// cluster, where several publish): then the broker calls AppendNumbered instead of Append.
	Numbered() bool
	// AppendNumbered stores m and returns once it is stored, with the offset the store gave it.
	AppendNumbered(m *Message) (uint64, error)
}

// ErrNotStream means a subscription asked for a starting point (x-stream-offset) on a destination
// that is not a stream: not a topic, a topic pattern, or a topic whose policy does not set Stream.
var ErrNotStream = errors.New("not a stream destination")

// ErrInvalidStreamOffset means a starting point could not be parsed (see ParseStreamStart).
var ErrInvalidStreamOffset = errors.New("invalid stream offset")

// StreamStartKind says where a stream subscription starts.
type StreamStartKind uint8

// Starting points of a stream subscription.
const (
	StartNext      StreamStartKind = iota // the next message published
	StartFirst                            // the oldest message kept
	StartLast                             // the newest message kept, then the ones after it
	StartOffset                           // StreamStart.Offset, or the oldest kept if that is gone
	StartTimestamp                        // the first message published at or after StreamStart.Time
)

// StreamStart is where a stream subscription starts reading.
type StreamStart struct {
	Kind   StreamStartKind
	Offset uint64    // StartOffset
	Time   time.Time // StartTimestamp
}

// String writes s as ParseStreamStart reads it.
func (s StreamStart) String() string {
	switch s.Kind {
	case StartFirst:
		return "first"
	case StartLast:
		return "last"
	case StartOffset:
		return "offset=" + strconv.FormatUint(s.Offset, 10)
	case StartTimestamp:
		return "timestamp=" + strconv.FormatInt(s.Time.Unix(), 10)
	}
	return "next"
}

// maxStreamTimestamp is the largest timestamp= ParseStreamStart takes: 9999-12-31T23:59:59Z. Later
// times overflow time.Time's comparisons or cannot be written as RFC 3339 (a store's Seek may need to).
const maxStreamTimestamp = 253402300799

// ParseStreamStart reads a starting point in the syntax of the x-stream-offset header: first, last,
// next, offset=N (N ≥ 0; offsets start at 1, so 0 is the oldest kept) or timestamp=UNIX-SECONDS
// (up to the end of year 9999). Anything else gives ErrInvalidStreamOffset with what was wrong.
func ParseStreamStart(text string) (StreamStart, error) {
	switch text {
	case "first":
		return StreamStart{Kind: StartFirst}, nil
	case "last":
		return StreamStart{Kind: StartLast}, nil
	case "next":
		return StreamStart{Kind: StartNext}, nil
	}
	name, value, ok := strings.Cut(text, "=")
	switch {
	case ok && name == "offset":
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return StreamStart{}, fmt.Errorf("%w %q: offset= takes a whole number, 0 or more", ErrInvalidStreamOffset, text)
		}
		return StreamStart{Kind: StartOffset, Offset: n}, nil
	case ok && name == "timestamp":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > maxStreamTimestamp {
			return StreamStart{}, fmt.Errorf("%w %q: timestamp= takes Unix seconds, from 0 to %d", ErrInvalidStreamOffset, text, maxStreamTimestamp)
		}
		return StreamStart{Kind: StartTimestamp, Time: time.Unix(n, 0)}, nil
	}
	return StreamStart{}, fmt.Errorf("%w %q: want first, last, next, offset=N or timestamp=UNIX-SECONDS", ErrInvalidStreamOffset, text)
}

// Bounds of the messages a stored stream also keeps in memory, so that subscriptions that keep up
// are served without reading the store.
const (
	streamCacheMessages = 1024
	streamCacheBytes    = 4 << 20
)

// stream is one stream destination. Lock order: appendMu, then subscription locks, then logMu,
// which is innermost; the shard and trie locks are taken under appendMu by the live delivery.
type stream struct {
	dest   string
	limits StreamLimits
	store  StoredStream // nil in memory mode

	// appendMu serializes the destination's publishes, so that offsets are given, and live
	// subscribers served, in one order. next is the offset of the next message.
	appendMu sync.Mutex
	next     uint64
	// broken is set when the store refused an append: offsets given since may not be stored, so the
	// next publish reads the store's bounds again and numbers on from the last one stored.
	broken atomic.Bool

	// logMu guards log, logFirst, logBytes and cursors. log holds the newest messages, offsets
	// logFirst onwards: every message kept in memory mode, a cache of the newest in stored mode.
	logMu    sync.RWMutex
	log      ring[*Message]
	logFirst uint64
	logBytes int64
	// cursors are the subscriptions reading the stream. The slice is replaced, never changed in
	// place, so a publisher may range over the one it read under the lock.
	cursors []*Subscription
	// nextOffset mirrors next for readers that do not hold appendMu.
	nextOffset atomic.Uint64
	// confirmed, in stored mode, is the offset past the newest message the store holds: cursors
	// read only below it (see readEnd), so that none reads a message the store may still refuse,
	// whose offset the next message would get. It only rises, but for resync; memory mode leaves it.
	confirmed atomic.Uint64
}

// streamFor returns stream dest, opening it in the StreamStore on first use; a new stream counts as
// one of creator's destinations (see reserveDestination). The store is called without streamsMu
// held: other callers for dest wait for that opening, callers for other streams do not.
func (b *Broker) streamFor(dest string, policy *resolvedPolicy, creator Identity) (*stream, error) {
	b.streamsMu.RLock()
	st := b.streams[dest]
	b.streamsMu.RUnlock()
	if st != nil {
		return st, nil
	}
	b.streamsMu.Lock()
	if st = b.streams[dest]; st != nil {
		b.streamsMu.Unlock()
		return st, nil
	}
	if op := b.streamsOpening[dest]; op != nil {
		b.streamsMu.Unlock()
		<-op.done
		return op.st, op.err
	}
	if err := b.reserveDestination(creator); err != nil {
		b.streamsMu.Unlock()
		return nil, err
	}
	op := &streamOpening{done: make(chan struct{})}
	if b.streamsOpening == nil {
		b.streamsOpening = make(map[string]*streamOpening)
	}
	b.streamsOpening[dest] = op
	b.streamsMu.Unlock()

	op.st, op.err = b.openStream(dest, policy)
	b.streamsMu.Lock()
	delete(b.streamsOpening, dest)
	if op.err == nil {
		if b.streams == nil {
			b.streams = make(map[string]*stream)
		}
		b.streams[op.st.dest] = op.st
	} else {
		b.releaseDestination()
	}
	b.streamsMu.Unlock()
	close(op.done)
	return op.st, op.err
}

// streamOpening is a stream being opened by streamFor: done is closed once st or err is set.
type streamOpening struct {
	done chan struct{}
	st   *stream
	err  error
}

// openStream makes stream dest, from the StreamStore's messages when there is one. No broker lock is
// held.
func (b *Broker) openStream(dest string, policy *resolvedPolicy) (*stream, error) {
	st := &stream{dest: strings.Clone(dest), limits: policy.stream, next: 1}
	if ss := b.opts.Streams; ss != nil {
		stored, err := ss.OpenStream(st.dest, st.limits)
		var last uint64
		if err == nil {
			_, last, err = stored.Bounds()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: stream %q: %v", ErrStoreUnavailable, dest, err)
		}
		st.store, st.next = stored, last+1
		st.confirmed.Store(st.next)
	}
	st.logFirst = st.next
	st.nextOffset.Store(st.next)
	return st, nil
}

// publishStream numbers m, keeps it, hands it to the store and delivers it live, then lets the
// stream's cursors read it: at once in memory mode, once the store has confirmed it in stored mode
// (from the store's done callback). Without failed it returns once the store holds m.
func (b *Broker) publishStream(m *Message, policy *resolvedPolicy, failed func(error)) error {
	if err := policy.checkWritable(m); err != nil {
		return err
	}
	st, err := b.streamFor(m.Destination, policy, m.Sender)
	if err != nil {
		return err
	}
	b.stamp(m)
	if m.remote {
		return b.streamRemote(st, m)
	}
	if st.store != nil && st.store.Numbered() {
		return b.publishNumbered(st, m)
	}
	var stored chan error
	st.appendMu.Lock()
	if err := st.resync(); err != nil {
		st.appendMu.Unlock()
		return err
	}
	m.Offset = st.next
	if err := st.keep(b, m); err != nil {
		m.Offset = 0
		st.appendMu.Unlock()
		return err
	}
	if st.store != nil {
		if failed == nil {
			stored = make(chan error, 1)
		}
		st.store.Append(m, func(err error) {
			if err != nil {
				st.broken.Store(true)
				if failed != nil {
					failed(st.refusal(err))
				}
			} else {
				st.confirm(m.Offset)
				b.pumpCursors(st)
			}
			if stored != nil {
				stored <- err
			}
		})
	}
	st.next++
	st.nextOffset.Store(st.next)
	_, err = b.publishTopic(m, nil, true) // the live delivery
	st.appendMu.Unlock()
	if st.store == nil {
		b.pumpCursors(st)
	}
	if err != nil {
		return err
	}
	if stored != nil {
		if err := <-stored; err != nil {
			return st.refusal(err)
		}
	}
	return nil
}

// publishNumbered publishes m to a stream whose store gives the offsets (a cluster's): it is stored
// first, then delivered live with its offset, here and, forwarded with it, on the other nodes.
func (b *Broker) publishNumbered(st *stream, m *Message) error {
	st.appendMu.Lock()
	offset, err := st.store.AppendNumbered(m)
	if err != nil {
		st.appendMu.Unlock()
		return st.refusal(err)
	}
	m.Offset = offset
	st.noteOffset(b, m)
	_, err = b.publishTopic(m, nil, true)
	st.appendMu.Unlock()
	b.pumpCursors(st)
	return err
}

// streamRemote delivers m, a stream message another node published and stored with its offset, to
// this node's live subscribers and readers.
func (b *Broker) streamRemote(st *stream, m *Message) error {
	st.appendMu.Lock()
	st.noteOffset(b, m)
	_, err := b.publishTopic(m, nil, true)
	st.appendMu.Unlock()
	b.pumpCursors(st)
	return err
}

// noteOffset records m, numbered by the store, as the stream's newest message if it is: messages of
// several nodes arrive in no set order, so the in-memory log keeps only a run of consecutive offsets
// and starts again past a gap (readers behind it read the store). The caller holds appendMu.
func (st *stream) noteOffset(b *Broker, m *Message) {
	if m.Offset >= st.next {
		st.next = m.Offset + 1
		st.nextOffset.Store(st.next)
	}
	st.confirm(m.Offset) // stored before it came here
	st.logMu.Lock()
	expected := st.logFirst + uint64(st.log.len())
	if m.Offset > expected {
		for st.log.len() > 0 {
			st.dropOldest(b)
		}
		st.logFirst = m.Offset
	}
	st.logMu.Unlock()
	if m.Offset >= expected {
		_ = st.keep(b, m)
	}
}

// refusal is the error a publisher gets for an append the store refused.
func (st *stream) refusal(err error) error {
	if errors.Is(err, ErrStoreUnavailable) {
		return fmt.Errorf("stream %q: %w", st.dest, err)
	}
	return fmt.Errorf("%w: stream %q: %v", ErrStoreUnavailable, st.dest, err)
}

// resync reads the store's bounds again after a refused append, dropping from the cache what the
// store does not hold. The caller holds appendMu.
func (st *stream) resync() error {
	if st.store == nil || !st.broken.Load() {
		return nil
	}
	_, last, err := st.store.Bounds()
	if err != nil {
		return fmt.Errorf("%w: stream %q: %v", ErrStoreUnavailable, st.dest, err)
	}
	st.broken.Store(false)
	st.logMu.Lock()
	keep := 0
	if last >= st.logFirst {
		keep = min(int(last-st.logFirst+1), st.log.len())
	}
	for i := keep; i < st.log.len(); i++ {
		st.logBytes -= int64((*st.log.at(i)).Size())
	}
	st.log.truncate(keep)
	if st.log.len() == 0 {
		st.logFirst = last + 1
	}
	st.logMu.Unlock()
	st.next = last + 1
	st.nextOffset.Store(st.next)
	st.confirmed.Store(st.next) // appends are confirmed in order, so those before the refusal were
	return nil
}

// confirm records that the store holds the message of offset, and so every one before it. Called
// from the store's done callback, or under appendMu for a message the store numbered.
func (st *stream) confirm(offset uint64) {
	for {
		c := st.confirmed.Load()
		if c > offset || st.confirmed.CompareAndSwap(c, offset+1) {
			return
		}
	}
}

// readEnd returns the offset past the newest message cursors may read: every message numbered in
// memory mode, every one the store has confirmed in stored mode.
func (st *stream) readEnd() uint64 {
	if st.store == nil {
		return st.nextOffset.Load()
	}
	return st.confirmed.Load()
}

// keep adds m, numbered, to the stream's log, dropping the oldest messages past the limits (the
// policy's in memory mode, the cache's in stored mode). The log's bytes are held against
// Options.MaxRetainedBytes: when they cannot be, a stored stream just does not cache m, and a
// memory one drops its own oldest messages first and refuses m with ErrRetainedFull only when it
// holds none. The caller holds appendMu.
func (st *stream) keep(b *Broker, m *Message) error {
	size := int64(m.Size())
	maxMsgs, maxBytes := st.limits.MaxMessages, st.limits.MaxBytes
	if st.store != nil {
		maxMsgs, maxBytes = streamCacheMessages, streamCacheBytes
	}
	st.logMu.Lock()
	defer st.logMu.Unlock()
	if st.log.len() == 0 {
		st.logFirst = m.Offset
	}
	st.expire(b, m.Published)
	for st.log.len() > 0 && ((maxMsgs > 0 && int64(st.log.len()) >= maxMsgs) || (maxBytes > 0 && st.logBytes+size > maxBytes)) {
		st.dropOldest(b)
	}
	for !b.reserveRetainedBytes(size) {
		if st.log.len() == 0 {
			if st.store != nil {
				st.logFirst = m.Offset + 1
				return nil
			}
			return &RetainedFullError{Limit: b.opts.MaxRetainedBytes}
		}
		st.dropOldest(b)
	}
	st.log.pushBack(m)
	st.logBytes += size
	return nil
}

// expire drops the messages older than MaxAge at now. The caller holds logMu.
func (st *stream) expire(b *Broker, now time.Time) {
	if st.limits.MaxAge <= 0 {
		return
	}
	cutoff := now.Add(-st.limits.MaxAge)
	for st.log.len() > 0 && (*st.log.at(0)).Published.Before(cutoff) {
		st.dropOldest(b)
	}
}

// dropOldest removes the log's oldest message. The caller holds logMu.
func (st *stream) dropOldest(b *Broker) {
	m := st.log.popFront()
	size := int64(m.Size())
	st.logBytes -= size
	b.retainedBytes.Add(-size)
	st.logFirst++
}

// readLog appends to dst the log's messages from offset from on and below end, at most
// cap(dst)-len(dst) of them, under one read lock; below reports that the log starts after from
// (nothing is appended then). Messages past MaxAge count as gone.
func (st *stream) readLog(from, end uint64, dst []*Message) (_ []*Message, below bool) {
	st.logMu.RLock()
	defer st.logMu.RUnlock()
	if from < st.logFirst {
		return dst, true
	}
	var cutoff time.Time
	if st.limits.MaxAge > 0 {
		cutoff = time.Now().Add(-st.limits.MaxAge)
	}
	for i := from - st.logFirst; i < uint64(st.log.len()) && st.logFirst+i < end && len(dst) < cap(dst); i++ {
		m := *st.log.at(int(i))
		if !cutoff.IsZero() && m.Published.Before(cutoff) {
			if len(dst) == 0 {
				return dst, true
			}
			break
		}
		dst = append(dst, m)
	}
	return dst, false
}

// first returns the offset of the oldest message kept, or the next offset when none is.
func (st *stream) first() (uint64, error) {
	if st.store != nil {
		first, _, err := st.store.Bounds()
		if err != nil {
			return 0, fmt.Errorf("%w: stream %q: %v", ErrStoreUnavailable, st.dest, err)
		}
		return min(first, st.readEnd()), nil
	}
	st.logMu.RLock()
	defer st.logMu.RUnlock()
	first := st.logFirst
	if st.limits.MaxAge > 0 {
		cutoff := time.Now().Add(-st.limits.MaxAge)
		for i := 0; i < st.log.len() && (*st.log.at(i)).Published.Before(cutoff); i++ {
			first++
		}
	}
	return first, nil
}

// seek returns the offset of the first message kept that was published at or after t.
func (st *stream) seek(t time.Time) (uint64, error) {
	st.logMu.RLock()
	inLog := st.log.len() > 0 && !(*st.log.at(0)).Published.After(t)
	if inLog || st.store == nil {
		defer st.logMu.RUnlock()
		for i := range st.log.len() {
			if m := *st.log.at(i); !m.Published.Before(t) {
				return m.Offset, nil
			}
		}
		return st.nextOffset.Load(), nil
	}
	st.logMu.RUnlock()
	offset, err := st.store.Seek(t)
	if err != nil {
		return 0, fmt.Errorf("%w: stream %q: %v", ErrStoreUnavailable, st.dest, err)
	}
	return offset, nil
}

// start returns the offset a subscription starting at from reads first. In stored mode, that is
// never past what the store has confirmed: a message it has not, and may refuse, is not skipped.
func (st *stream) start(from StreamStart) (uint64, error) {
	next := st.readEnd()
	switch from.Kind {
	case StartNext:
		return next, nil
	case StartTimestamp:
		offset, err := st.seek(from.Time)
		return min(offset, next), err
	}
	first, err := st.first()
	if err != nil {
		return 0, err
	}
	switch from.Kind {
	case StartFirst:
		return first, nil
	case StartLast:
		return max(first, next-1), nil
	default: // StartOffset
		return min(max(first, from.Offset), next), nil
	}
}

// addCursor makes s one of the stream's readers.
func (st *stream) addCursor(s *Subscription) {
	st.logMu.Lock()
	defer st.logMu.Unlock()
	st.cursors = append(st.cursors[:len(st.cursors):len(st.cursors)], s)
}

// removeCursor ends the reader s and reports whether it was still subscribed.
func (st *stream) removeCursor(s *Subscription) bool {
	st.logMu.Lock()
	cursors := make([]*Subscription, 0, len(st.cursors))
	for _, c := range st.cursors {
		if c != s {
			cursors = append(cursors, c)
		}
	}
	st.cursors = cursors
	st.logMu.Unlock()
	return s.markRemoved()
}

// pumpCursors lets every reader of st that has room take what it has not read yet; called after a
// publish, with no lock held.
func (b *Broker) pumpCursors(st *stream) {
	st.logMu.RLock()
	cursors := st.cursors
	st.logMu.RUnlock()
	taken := 0
	for _, s := range cursors {
		if s.cursorWaiting.Load() {
			continue // a Resume will read on
		}
		s.mu.Lock()
		taken += s.pumpStream(b)
		s.mu.Unlock()
	}
	if taken > 0 {
		b.shardFor(st.dest).counts.addDelivered(KindTopic, taken)
	}
}

// addStreamStats adds the streams, what they keep in memory and their subscriptions' unacknowledged
// deliveries to st.
func (b *Broker) addStreamStats(st *Stats) {
	b.streamsMu.RLock()
	streams := make([]*stream, 0, len(b.streams))
	for _, s := range b.streams {
		streams = append(streams, s)
	}
	b.streamsMu.RUnlock()
	st.Streams = len(streams)
	for _, s := range streams {
		s.logMu.RLock()
		st.StreamMessages += s.log.len()
		st.StreamBytes += s.logBytes
		cursors := s.cursors
		s.logMu.RUnlock()
		for _, c := range cursors {
			c.addStats(st)
		}
	}
}
