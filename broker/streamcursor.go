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
}

// logBatch is how many messages a cursor takes from the stream's log under one lock.
const logBatch = 32

// streamReadBatch is how many messages a cursor behind the in-memory log reads from the store at once.
const streamReadBatch = 256

// streamReadRetry is how long a cursor waits before reading the store again after a failed read, or
// after finding that the messages it wants are not stored yet.
const streamReadRetry = 50 * time.Millisecond

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
// everything published, the subscriber refuses one (a Resume reads on), its client-ack window is
// full (an Ack reads on) or the next messages must first be read from the store (the read reads
// on). It returns how many messages the subscriber took. The caller holds s.mu.
//
// As for lagging topic subscriptions (see catchUp), draining is set while it delivers so that a
// Resume from inside Deliver returns at once; after a refusal, cursorWaiting is set before draining
// is cleared and the resumes count is checked after, so a Resume is either seen here or pumps itself.
func (s *Subscription) pumpStream(b *Broker) (taken int) {
	c := s.cursor
	s.draining.Store(true)
	defer s.draining.Store(false)
	for !s.removed && !s.evicted.Load() {
		if s.ackMode != AckAuto && !s.topicHasRoom() {
			return taken
		}
		m := c.peek(b, s)
		if m == nil {
			return taken
		}
		before := s.resumes.Load()
		switch s.offerTopic(m, originLive) {
		case Delivered:
			c.advance(m)
			taken++
		case Closed:
			return taken
		case Full:
			s.cursorWaiting.Store(true)
			s.draining.Store(false)
			if s.resumes.Load() == before {
				return taken
			}
			s.cursorWaiting.Store(false)
			s.draining.Store(true)
		}
	}
	return taken
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
		if c.next >= c.st.nextOffset.Load() {
			return nil // read everything published
		}
		if cap(c.fetched) < logBatch {
			c.fetched = make([]*Message, 0, logBatch)
		}
		msgs, below := c.st.readLog(c.next, c.fetched[:0])
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
				go c.read(b, s, c.next)
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
// own goroutine, one at a time per cursor (reading), so the store is never read with locks held.
func (c *streamCursor) read(b *Broker, s *Subscription, from uint64) {
	msgs, err := c.st.store.Read(from, streamReadBatch)
	retry := err != nil
	if err != nil {
		b.log.Warn("a stream could not be read from the store; trying again", "destination", c.st.dest, "offset", from, "error", err)
	}
	s.mu.Lock()
	c.reading = false
	switch {
	case err != nil:
	case len(msgs) > 0:
		c.fetched, c.pos = msgs, 0
	default:
		// Nothing held from there on: either the limits removed it, and reading goes on at the
		// oldest message kept, or it is not stored yet (appends are confirmed in order) and is read
		// again shortly.
		first, _, err := c.st.store.Bounds()
		if err == nil && first > c.next {
			c.next = first
		} else {
			retry = true
		}
	}
	var taken int
	if !retry {
		taken = s.pumpStream(b)
	}
	s.mu.Unlock()
	b.countTopicDeliveries(s, taken)
	if retry {
		time.AfterFunc(streamReadRetry, func() { b.pumpCursor(s) })
	}
}

// pumpCursor pumps the stream subscription s from outside any delivery.
func (b *Broker) pumpCursor(s *Subscription) {
	s.mu.Lock()
	taken := s.pumpStream(b)
	s.mu.Unlock()
	b.countTopicDeliveries(s, taken)
}

// resumeStream reads on for a stream subscription whose subscriber refused a message, and returns
// how many messages it took. It returns at once when s is not waiting, or when a pump of s is
// running (possibly the caller's own Deliver's): that pump sees the changed resumes count.
func (s *Subscription) resumeStream(b *Broker) int {
	s.resumes.Add(1)
	if !s.cursorWaiting.Load() || s.draining.Load() {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursorWaiting.Store(false)
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
