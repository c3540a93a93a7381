package stompws

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// subscription is one STOMP subscription; it is the broker.Subscriber for it. Its fields are immutable
// after handleSubscribe, except the atomics.
type subscription struct {
	s       *session
	id      string // STOMP subscription id
	dest    string // as resolved for the broker (temp queues become their /reply-queue/ name)
	ackMode broker.AckMode

	// head is "MESSAGE\nsubscription:<id>\n", encoded once; redeliveredHead adds redelivered:true.
	head, redeliveredHead []byte
	headIsUTF8            bool

	brokerSub atomic.Pointer[broker.Subscription]
	full      atomic.Bool // a delivery was refused for lack of room; waiting for onDrain
}

// latencySampling is how many deliveries to a session make one observation of the delivery
// latency and outbound queue histograms: reading the clock and observing costs more than the rest of a
// delivery, and 1 in 64 is plenty for quantiles at the rates where the cost would matter.
const latencySampling = 64

// headPool holds scratch buffers for heads that vary per delivery (STOMP 1.2 ack ids).
var headPool = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// Deliver encodes a MESSAGE for d and queues it on the connection. Called by the broker with its locks
// held, possibly concurrently; it never blocks and never calls back into the broker.
func (sub *subscription) Deliver(bs *broker.Subscription, d broker.Delivery) broker.DeliverResult {
	s := sub.s
	if s.closing.Load() {
		return broker.Closed
	}
	tail, tailIsUTF8 := s.encodedMessage(d.Message)
	binary := !tailIsUTF8 || !sub.headIsUTF8
	if bs.Paced() {
		// Queue messages, a stream read from an offset and a durable subscription's messages wait in
		// the broker rather than fill the connection: they stop at half the bound, which leaves the
		// rest for receipts and topic traffic on the same connection.
		if q := s.conn.Queued(); q > 0 && q+len(tail)+len(sub.head)+32 > s.opts.MaxQueuedBytes/2 {
			s.markFull(sub)
			return broker.Full
		}
	}

	// Counted before the enqueue: once queued, the frame may be written, and the count flushed by the
	// writer's drain callback, before Enqueue even returns.
	counted := s.metrics != nil
	var n int64
	if counted {
		n = s.unflushedMessages.Add(1)
	}
	var err error
	switch {
	case (d.Tag != 0 && s.version == frame.V12) || d.Retained || d.History:
		bp := headPool.Get().(*[]byte)
		h := append((*bp)[:0], sub.head...)
		if d.Tag != 0 && s.version == frame.V12 {
			h = append(h, "ack:"...)
			h = appendAckID(h, bs.ID(), d.Tag)
			h = append(h, '\n')
		}
		if d.Redelivered {
			h = append(h, "redelivered:true\n"...)
		}
		if d.Retained {
			h = append(h, "retained:true\n"...) // the last value, delivered on SUBSCRIBE
		}
		if d.History {
			h = append(h, "history:true\n"...) // from the destination's history, delivered on SUBSCRIBE
		}
		err = s.conn.Enqueue(h, tail, binary)
		*bp = h
		headPool.Put(bp)
	case d.Redelivered:
		err = s.conn.Enqueue(sub.redeliveredHead, tail, binary)
	default:
		err = s.conn.Enqueue(sub.head, tail, binary)
	}
	if counted && err != nil {
		s.unflushedMessages.Add(-1)
	}
	switch err {
	case nil:
		if counted && n%latencySampling == 0 {
			// MESSAGE frames are counted per session and flushed when the connection drains (one
			// shared counter update per coalesced write); the same count samples the histograms.
			s.metrics.ObserveDeliveryLatency(time.Since(d.Message.Published))
			s.metrics.ObserveOutboundQueue(s.conn.Queued())
		}
		return broker.Delivered
	case transport.ErrSlowConsumer:
		s.markFull(sub)
		return broker.Full
	case transport.ErrNotText:
		// A text-only transport (SockJS) cannot carry this message unaltered. The subscriber is told
		// which message it cannot have and disconnected; a queue message stays on its queue.
		s.terminate(errNotText(d.Message.Destination, d.Message.ID))
		return broker.Closed
	default:
		return broker.Closed
	}
}

// Evict ends the session when a policy cut the subscription off (the default policy for a topic
// subscriber that fell behind). Called with broker locks held: the close runs on its own goroutine.
func (sub *subscription) Evict(_ *broker.Subscription, err error) {
	sub.s.metrics.SlowConsumerDisconnected()
	sub.s.log.Info("slow consumer disconnected", "session", sub.s.id, "remote", sub.s.conn.RemoteAddr(),
		"subscription", sub.id, "destination", sub.dest, "queued_bytes", sub.s.conn.Queued())
	sub.s.terminate(errSlowConsumer)
}

// appendAckID appends the STOMP 1.2 ack id of a delivery: "<broker subscription id>-<tag>".
func appendAckID(b []byte, subID, tag uint64) []byte {
	b = strconv.AppendUint(b, subID, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, tag, 10)
}

// parseAckID is appendAckID's inverse.
func parseAckID(id []byte) (subID, tag uint64, ok bool) {
	for i, c := range id {
		if c != '-' {
			continue
		}
		var err1, err2 error
		subID, err1 = strconv.ParseUint(string(id[:i]), 10, 64)
		tag, err2 = strconv.ParseUint(string(id[i+1:]), 10, 64)
		return subID, tag, err1 == nil && err2 == nil && tag != 0
	}
	return 0, 0, false
}

// handleSubscribe registers a subscription.
func (s *session) handleSubscribe(f *frame.Frame) error {
	if err := noBody(f); err != nil {
		return err
	}
	dest, ok := f.Get("destination")
	if !ok || len(dest) == 0 {
		return protoErr("missing destination header", "SUBSCRIBE requires a destination")
	}
	id, hasID := f.Get("id")
	if !hasID {
		if s.version != frame.V10 {
			return protoErr("missing id header", "SUBSCRIBE requires an id in STOMP %s", s.version)
		}
		id = dest // STOMP 1.0: the destination identifies the subscription
	}
	if _, dup := s.subs[string(id)]; dup {
		return protoErr("subscription id already in use", "id %q", id)
	}
	if len(s.subs) >= s.opts.MaxSubscriptions {
		return protoErr("too many subscriptions", "limit is %d per connection", s.opts.MaxSubscriptions)
	}
	mode, err := parseAckMode(f)
	if err != nil {
		return err
	}
	prefetch := 0
	if p, ok := f.Get("prefetch-count"); ok {
		n, err := strconv.ParseUint(string(p), 10, 31)
		if err != nil {
			return protoErr("invalid prefetch-count header", "%q", p)
		}
		prefetch = int(n)
	}
	var from *broker.StreamStart
	if text, ok := f.Get("x-stream-offset"); ok {
		start, err := broker.ParseStreamStart(string(text))
		if err != nil {
			return protoErr("invalid x-stream-offset header", "%v", err).because(metrics.ErrorInvalidStreamOffset)
		}
		from = &start
	}
	durable := ""
	if wantsDurable(f) && strings.HasPrefix(string(dest), topicPrefix) {
		if !hasID {
			return protoErr("missing id header", "a durable subscription is named by its id header")
		}
		if from != nil {
			return protoErr("invalid x-stream-offset header", "a durable subscription keeps messages from when it is made; it cannot also start at an offset").
				because(metrics.ErrorInvalidStreamOffset)
		}
		durable = string(id)
	}
	if pe := s.authorize(string(dest), false); pe != nil {
		return pe
	}
	resolved, err := s.resolveDestination(string(dest))
	if err != nil {
		return err
	}
	if implicit, ok := s.subs[string(dest)]; ok && implicit.dest == resolved && string(id) != string(dest) {
		// An explicit subscription to a temporary queue replaces the one made for its replies.
		s.removeSubscription(implicit)
	}
	_, err = s.subscribe(string(id), resolved, broker.SubscribeOptions{AckMode: mode, Prefetch: prefetch, From: from, Durable: durable})
	return err
}

// subscribe creates the subscription id on the broker destination dest.
func (s *session) subscribe(id, dest string, opts broker.SubscribeOptions) (*subscription, error) {
	sub := &subscription{s: s, id: id, dest: dest, ackMode: opts.AckMode}
	sub.head = frame.AppendCommand(nil, frame.MESSAGE)
	sub.head = frame.AppendHeader(sub.head, s.version, "subscription", id)
	sub.redeliveredHead = append(append([]byte(nil), sub.head...), "redelivered:true\n"...)
	sub.headIsUTF8 = utf8.Valid(sub.head)
	// Register before subscribing: a queue hands held messages to Deliver during Subscribe.
	opts.Owner = s.identity()
	opts.UnackedLimit = s.unackedLimit
	bs, err := s.broker.Subscribe(dest, sub, opts)
	if err != nil {
		return nil, destinationError(dest, err)
	}
	sub.brokerSub.Store(bs)
	if sub.full.Load() {
		// Refused a held message during Subscribe, before onDrain could see the subscription.
		s.broker.Resume(bs)
	}
	s.subs[id] = sub
	s.subsByID[bs.ID()] = sub
	s.publishView()
	return sub, nil
}

// handleUnsubscribe removes a subscription; its unacked queue messages return to the queue.
func (s *session) handleUnsubscribe(f *frame.Frame) error {
	if err := noBody(f); err != nil {
		return err
	}
	id, ok := f.Get("id")
	if !ok && s.version == frame.V10 {
		id, ok = f.Get("destination")
	}
	if !ok {
		return protoErr("missing id header", "UNSUBSCRIBE requires an id")
	}
	sub, ok := s.subs[string(id)]
	if ok {
		s.removeSubscription(sub)
		s.resumeStarved()
	}
	if wantsDurable(f) && (!ok || strings.HasPrefix(sub.dest, topicPrefix)) {
		// Ends the durable subscription itself, whether or not this connection consumes it now.
		err := s.broker.DeleteDurable(s.identity().User, string(id))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, broker.ErrNoDurable) && ok:
			return nil // a plain subscription that was asked to be durable when it could not be
		case errors.Is(err, broker.ErrNoDurable):
			return protoErr("subscription not found", "no subscription or durable subscription with id %q", id)
		default:
			return err
		}
	}
	if !ok {
		return protoErr("subscription not found", "no subscription with id %q", id)
	}
	return nil
}

// wantsDurable reports whether a SUBSCRIBE or UNSUBSCRIBE asks for a durable subscription, in
// RabbitMQ's words: durable:true or persistent:true, and not auto-delete:true.
func wantsDurable(f *frame.Frame) bool {
	return (headerIs(f, "durable", "true") || headerIs(f, "persistent", "true")) && !headerIs(f, "auto-delete", "true")
}

// headerIs reports whether f's header name is value.
func headerIs(f *frame.Frame, name, value string) bool {
	v, ok := f.Get(name)
	return ok && string(v) == value
}

// removeSubscription ends sub in the broker and forgets it.
func (s *session) removeSubscription(sub *subscription) {
	bs := sub.brokerSub.Load()
	s.broker.Unsubscribe(bs)
	delete(s.subs, sub.id)
	delete(s.subsByID, bs.ID())
	s.publishView()
}

// parseAckMode reads SUBSCRIBE's ack header.
func parseAckMode(f *frame.Frame) (broker.AckMode, error) {
	v, ok := f.Get("ack")
	if !ok {
		return broker.AckAuto, nil
	}
	switch string(v) {
	case "auto":
		return broker.AckAuto, nil
	case "client":
		return broker.AckClient, nil
	case "client-individual":
		return broker.AckClientIndividual, nil
	}
	return 0, protoErr("invalid ack mode", "%q is not auto, client or client-individual", v)
}

// noBody enforces the spec's rule that only SEND (and server frames) carry a body.
func noBody(f *frame.Frame) error {
	if len(f.Body) > 0 {
		return protoErr("frame must not have a body", "%s with a %d-byte body", f.Command, len(f.Body))
	}
	return nil
}
