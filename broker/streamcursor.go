package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// streamCursor is where a stream subscription (SubscribeOptions.From) reads: the offset of the next
// message it takes, and the messages read ahead from the store when it is behind the stream's
// in-memory log.
type streamCursor struct {
	st   *stream // immutable
	next uint64  // guarded by the subscription's mu
	// fetched[pos:] are messages read ahead, oldest first: from the store, or a few at a time from
	// the log so that its lock is taken once per batch. Guarded by mu.
	fetched []*Message
	pos     int
	reading bool // a store read for this cursor is running; guarded by mu
	// failures counts the store reads in a row that failed, for the backoff; guarded by mu.
	failures int
	// readMost is how many messages the next store read asks for (see readSize); guarded by mu.
	readMost int
}

// logBatch is how many messages a cursor takes from the stream's log under one lock.
const logBatch = 32

// streamReadBatch is the most messages a cursor behind the in-memory log reads from the store at
// once, and streamReadBytes about the most bytes: a cursor holds at most one read ahead, so that a
// thousand cursors replaying a stream of large messages hold a thousand reads of about
// streamReadBytes, not of streamReadBatch large messages. The first read asks for
// streamReadFirst messages; each later one for what streamReadBytes holds at the size of the
// messages read last.
const (
	streamReadBatch = 256
	streamReadBytes = 1 << 20
	streamReadFirst = 16
)

// readSize returns how many messages to read after msgs, by their average size (see
// streamReadBytes).
func readSize(msgs []*Message) int {
	var bytes int
	for _, m := range msgs {
		bytes += m.Size()
	}
	if bytes == 0 {
		return streamReadBatch
	}
	return max(1, min(streamReadBatch, streamReadBytes*len(msgs)/bytes))
}

// streamReadRetry is how long a cursor waits before reading the store again after finding that the
// messages it wants are not stored yet, or after a first failed read.
const streamReadRetry = 50 * time.Millisecond

// streamReadRetryMax bounds the wait between reads of a store that keeps failing.
const streamReadRetryMax = 2 * time.Second

// streamReadBackoff is how long a cursor waits before reading the store again after failures
// failed reads in a row (1 or more): streamReadRetry, doubled for each further failure, at most
// streamReadRetryMax.
func streamReadBackoff(failures int) time.Duration {
	if failures > 6 {
		return streamReadRetryMax
	}
	return min(streamReadRetry<<(max(failures, 1)-1), streamReadRetryMax)
}

// subscribeStream makes s a reader of the stream dest from the starting point from, and lets it read
// what it has room for.
func (b *Broker) subscribeStream(s *Subscription, from StreamStart) error {
	if s.pattern != "" {
		return fmt.Errorf("%w: %q is a pattern; x-stream-offset needs one stream destination", ErrNotStream, s.dest)
	}
	policy := b.topicPolicy(s.dest)
	if !policy.streamed {
		return fmt.Errorf("%w: %q has no stream policy, so it keeps no messages to read from an offset", ErrNotStream, s.dest)
	}
	st, err := b.streamFor(s.dest, policy, s.owner)
	if err != nil {
		return err
	}
	next, err := st.start(from)
	if err != nil {
		return err
	}
	s.cursor, s.paced = &streamCursor{st: st, next: next}, true
	st.addCursor(s)
	s.mu.Lock()
	taken := s.pumpStream(b)
	s.mu.Unlock()
	b.countTopicDeliveries(s, taken)
	return nil
}

// pumpStream offers the stream subscription s the messages from its cursor on, until it has read
// everything published, the subscriber refuses one or its owner's shared UnackedLimit is full (a
// Resume reads on), its client-ack window is full (an Ack reads on) or the next messages must first
// be read from the store (the read reads on). It returns how many messages the subscriber took. The
// caller holds s.mu.
//
// Any pump reads on, so it first clears cursorWaiting: a mark left by an earlier stop is stale once
// another pump (an Ack's, a publisher's, a store read's) runs, and publishers would pass s over. As
// for lagging topic subscriptions (see catchUp), draining is set while it delivers so that a Resume
// from inside Deliver returns at once; see waitForResume for the stop.
func (s *Subscription) pumpStream(b *Broker) (taken int) {
	c := s.cursor
	s.cursorWaiting.Store(false)
	s.draining.Store(true)
	defer s.draining.Store(false)
	for !s.removed && !s.evicted.Load() {
		before := s.resumes.Load()
		if s.ackMode != AckAuto && !s.topicHasRoom() {
			if s.unacked.live >= s.window || s.waitForResume(before) {
				return taken // its own window is full (its Ack pumps), or a Resume will pump
			}
			continue // the shared limit is full, but a Resume came meanwhile
		}
		m := c.peek(b, s)
		if m == nil {
			return taken
		}
		switch s.offerTopic(m, originLive) {
		case Delivered:
			c.advance(m)
			taken++
		case Closed:
			return taken
		case Full:
			if s.waitForResume(before) {
				return taken
			}
		}
	}
	return taken
}

// waitForResume marks s as waiting for a Resume, after its subscriber refused a message or its
// owner's shared UnackedLimit had no room (refuses marked the limit starved, so the owner resumes
// every subscription once room is freed). It reports false, unmarking s, when a Resume came since
// before, the resumes count read before the room was found missing: s is to read on at once. The
// mark is set before draining is cleared and the count read after, so a Resume either is seen here
// or finds s marked and not draining, and pumps it itself. The caller holds s.mu and has set
// draining.
func (s *Subscription) waitForResume(before uint64) bool {
	s.cursorWaiting.Store(true)
	s.draining.Store(false)
	if s.resumes.Load() == before {
		return true
	}
	s.cursorWaiting.Store(false)
	s.draining.Store(true)
	return false
}

// peek returns the message at the cursor, or nil when there is none to offer now. When the
// stream's log no longer holds it, a memory stream skips to the oldest message kept, and a stored
// one starts a read of the store. The caller holds s.mu.
func (c *streamCursor) peek(b *Broker, s *Subscription) *Message {
	for {
		for c.pos < len(c.fetched) {
			m := c.fetched[c.pos]
			if m.Offset >= c.next {
				c.next = m.Offset // messages in between were removed by the limits
				return m
			}
			c.fetched[c.pos] = nil
			c.pos++
		}
		end := c.st.readEnd()
		if c.next >= end {
			return nil // read everything published (and, in stored mode, confirmed)
		}
		if cap(c.fetched) < logBatch {
			c.fetched = make([]*Message, 0, logBatch)
		}
		msgs, below := c.st.readLog(c.next, end, c.fetched[:0])
		c.fetched, c.pos = msgs, 0
		if len(msgs) > 0 {
			continue
		}
		if !below {
			return nil
		}
		if c.st.store != nil {
			if !c.reading {
				c.reading = true
				if c.readMost == 0 {
					c.readMost = streamReadFirst
				}
				go c.read(b, s, c.next, c.readMost)
			}
			return nil
		}
		first, _ := c.st.first()
		if first <= c.next {
			return nil
		}
		c.next = first
	}
}

// advance moves the cursor past m, which it has just delivered. The caller holds s.mu.
func (c *streamCursor) advance(m *Message) {
	c.next = m.Offset + 1
	if c.pos < len(c.fetched) && c.fetched[c.pos] == m {
		c.fetched[c.pos] = nil
		c.pos++
	}
}

// read fetches messages from the store for s, from offset from on, and pumps them. It runs on its
// own goroutine, one at a time per cursor (reading), so the store is never called with locks held.
// After a failure it reads again later, less often while the store keeps failing (see
// streamReadBackoff), and logs only the first failure of a run and the recovery.
func (c *streamCursor) read(b *Broker, s *Subscription, from uint64, most int) {
	msgs, err := c.st.store.Read(from, most)
	var first uint64
	if err == nil && len(msgs) == 0 {
		// Nothing held from there on: either the limits removed it, and reading goes on at the
		// oldest message kept, or it is not stored yet (appends are confirmed in order) and is read
		// again shortly.
		first, _, err = c.st.store.Bounds()
	}
	s.mu.Lock()
	c.reading = false
	failures, recovered := 0, false
	if err != nil {
		c.failures++
		failures = c.failures
	} else if c.failures > 0 {
		c.failures, recovered = 0, true
	}
	var retry time.Duration
	switch {
	case err != nil:
		retry = streamReadBackoff(failures)
	case len(msgs) > 0:
		c.readMost = readSize(msgs)
		if !s.removed { // a subscription gone meanwhile holds nothing more
			c.fetched, c.pos = msgs, 0
		}
	case first > c.next:
		c.next = first
	default:
		retry = streamReadRetry
	}
	var taken int
	if retry == 0 {
		taken = s.pumpStream(b)
	}
	s.mu.Unlock()
	b.countTopicDeliveries(s, taken)
	switch {
	case failures == 1:
		b.log.Warn("a stream could not be read from the store; trying again, less often while it fails",
			"destination", c.st.dest, "offset", from, "error", err)
	case recovered:
		b.log.Info("a stream is read from the store again", "destination", c.st.dest, "offset", from)
	}
	if retry > 0 {
		time.AfterFunc(retry, func() { b.pumpCursor(s) })
	}
}

// pumpCursor pumps the stream subscription s from outside any delivery.
func (b *Broker) pumpCursor(s *Subscription) {
	s.mu.Lock()
	taken := s.pumpStream(b)
	s.mu.Unlock()
	b.countTopicDeliveries(s, taken)
}

// resumeStream reads on for a stream subscription waiting for a Resume (see waitForResume), and
// returns how many messages it took. It returns at once when s is not waiting, or when a pump of s is
// running (possibly the caller's own Deliver's): that pump sees the changed resumes count.
func (s *Subscription) resumeStream(b *Broker) int {
	s.resumes.Add(1)
	if !s.cursorWaiting.Load() || s.draining.Load() {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.log.Enabled(context.Background(), slog.LevelDebug) {
		b.log.Debug("stream subscription resumes", "subscription", s.id, "destination", s.dest, "offset", s.cursor.next)
	}
	return s.pumpStream(b)
}

// StreamOffset returns the offset of the next message a stream subscription reads, and false for any
// other subscription.
func (s *Subscription) StreamOffset() (uint64, bool) {
	if s.cursor == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor.next, true
}

// Paced reports whether s's deliveries wait for its subscriber's room (Full means "later"): a queue
// subscription, a durable topic subscription, or a stream read from an offset. Other topic
// subscriptions that answer Full meet their destination's slow-consumer policy.
func (s *Subscription) Paced() bool { return s.paced }
