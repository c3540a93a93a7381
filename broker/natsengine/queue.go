package natsengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stompd/stompd/broker"
)

const (
	// maxFetch bounds one pull request.
	maxFetch = 256
	// fetchWait is how long one pull request waits for messages before the next is made.
	fetchWait = 5 * time.Second
	// ackWait is the consumer's AckWait. The broker acknowledges a message when its STOMP consumer does,
	// which may take any time; the server must not hand the message out again meanwhile, so it is
	// long. A delivery that comes back anyway is recognised by its stream sequence and dropped.
	ackWait = 24 * time.Hour
)

// storedRef is what the broker holds for a stored message until it acknowledges it.
type storedRef struct {
	msg  jetstream.Msg
	seq  uint64 // stream sequence
	size int64  // stored bytes
}

// queue is one /queue/ destination's stored messages: a durable pull consumer on its subject.
type queue struct {
	e               *Engine
	dest            string
	subject         string
	consumer        jetstream.Consumer
	feed            broker.QueueFeed
	redeliveredUpTo uint64 // stream sequences up to it were delivered by the previous process
	name            string // the durable consumer's name, also the key of its fetch mark
	fetchedMark     uint64 // the highest stream sequence recorded as fetched; fetchLoop's own

	mu          sync.Mutex
	credits     int                 // messages asked for and not yet fed
	fetching    bool                // a fetch goroutine runs
	count       int                 // messages stored for the queue
	bytes       int64               // their stored bytes
	outstanding map[uint64]struct{} // stream sequences fed and not acknowledged
	deleted     bool                // Delete was called: nothing more is fetched
}

// OpenQueue implements broker.Store.
func (e *Engine) OpenQueue(dest string, feed broker.QueueFeed) (broker.StoredQueue, error) {
	if e.isClosed() {
		return nil, errClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	name := queueConsumer(dest)
	q := &queue{e: e, dest: dest, subject: queueSubject(dest), name: name, feed: feed, outstanding: make(map[uint64]struct{})}
	e.mu.Lock()
	q.redeliveredUpTo = e.recovered[name]
	e.mu.Unlock()
	cons, err := e.js.CreateOrUpdateConsumer(ctx, queueStream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   dest,
		FilterSubject: q.subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: -1,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", dest, err)
	}
	q.consumer = cons
	if err := q.measure(ctx); err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", dest, err)
	}
	return q, nil
}

var errClosed = errors.New("store: closed")

// measure counts what the store already holds for the queue (after a restart): the messages from the
// consumer's pending count, their bytes estimated at the stream's average message size (reading every
// message to add up their sizes would make opening a deep queue slow).
func (q *queue) measure(ctx context.Context) error {
	info, err := q.consumer.Info(ctx)
	if err != nil || info.NumPending == 0 {
		return err
	}
	stream, err := q.e.js.Stream(ctx, queueStream)
	if err != nil {
		return err
	}
	state := stream.CachedInfo().State
	q.count = int(info.NumPending)
	if state.Msgs > 0 {
		q.bytes = int64(state.Bytes / state.Msgs * info.NumPending)
	}
	return nil
}

// Append implements broker.StoredQueue.
func (q *queue) Append(m *broker.Message) error {
	data := encodeMessage(m)
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	begin := time.Now()
	_, err := q.e.js.Publish(ctx, q.subject, data)
	if q.e.cfg.ObserveWrite != nil {
		q.e.cfg.ObserveWrite(time.Since(begin), err)
	}
	if err != nil {
		q.e.failure.Store(&storeFailure{at: time.Now(), op: "append", err: err})
		return storeError(err)
	}
	q.mu.Lock()
	q.count++
	q.bytes += int64(len(data))
	q.mu.Unlock()
	return nil
}

// AppendNoWait implements broker.StoredQueue: the publish goes out at once; the engine's confirmation
// loop calls done when the server has answered.
func (q *queue) AppendNoWait(m *broker.Message, done func(error)) {
	q.e.sends.RLock()
	defer q.e.sends.RUnlock()
	if q.e.sendsClosed {
		done(fmt.Errorf("%w: %w", broker.ErrStoreUnavailable, errClosed))
		return
	}
	data := encodeMessage(m)
	begin := time.Now()
	fut, err := q.e.js.PublishAsync(q.subject, data)
	if err != nil {
		q.e.failure.Store(&storeFailure{at: time.Now(), op: "append", err: err})
		done(storeError(err))
		return
	}
	q.e.confirmations <- pendingAppend{future: fut, q: q, size: int64(len(data)), begin: begin, done: done}
}

// Want implements broker.StoredQueue.
func (q *queue) Want(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.credits += n
	if q.fetching || q.deleted || q.e.isClosed() {
		return
	}
	q.fetching = true
	q.e.fetchers.Add(1)
	go q.fetchLoop()
}

// fetchLoop pulls messages while some are asked for, and feeds them to the queue as they arrive.
func (q *queue) fetchLoop() {
	defer q.e.fetchers.Done()
	backoff := time.Duration(0)
	for {
		q.mu.Lock()
		n := min(q.credits, maxFetch)
		if n <= 0 || q.deleted || q.e.isClosed() {
			q.fetching = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		batch, err := q.consumer.Fetch(n, jetstream.FetchContext(q.fetchContext()))
		if err == nil {
			q.feedBatch(batch)
			err = batch.Error()
		}
		if err == nil || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
			backoff = 0
			continue
		}
		if q.e.isClosed() {
			continue // ends at the top
		}
		q.e.log.Warn("store: fetching queue messages", "queue", q.dest, "error", err)
		q.e.observeFailure("fetch", err)
		backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
		time.Sleep(backoff)
	}
}

// fetchContext bounds one pull request by fetchWait and by the engine's Close.
func (q *queue) fetchContext() context.Context {
	ctx, cancel := context.WithTimeout(q.e.stop, fetchWait)
	context.AfterFunc(ctx, cancel) // released when it ends, by timeout or Close
	return ctx
}

// feedBatch hands the batch's messages to the queue as they arrive, several at a time when several
// are there already.
func (q *queue) feedBatch(batch jetstream.MessageBatch) {
	var msgs []broker.StoredMessage
	ch := batch.Messages()
	for {
		var jm jetstream.Msg
		var ok bool
		if len(msgs) == 0 {
			jm, ok = <-ch
		} else {
			select {
			case jm, ok = <-ch:
			default:
				q.feedMarked(msgs)
				msgs = msgs[:0]
				continue
			}
		}
		if !ok {
			break
		}
		if sm, ok := q.decode(jm); ok {
			msgs = append(msgs, sm)
		}
	}
	if len(msgs) > 0 {
		q.feedMarked(msgs)
	}
}

// feedMarked records how far the queue has fetched, then feeds msgs. The server's own record of what
// its consumer delivered reaches the disk later than the deliveries, so after a crash it can be short;
// this mark is written before the messages can reach a STOMP consumer, so that after any restart
// every message that may have been delivered is marked redelivered. One write per batch.
func (q *queue) feedMarked(msgs []broker.StoredMessage) {
	var top uint64
	for _, sm := range msgs {
		top = max(top, sm.Ref.(*storedRef).seq)
	}
	if top > q.fetchedMark {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], top)
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		_, err := q.e.fetched.Put(ctx, q.name, v[:])
		cancel()
		if err != nil {
			if !q.e.isClosed() {
				q.e.log.Warn("store: recording a fetch mark", "queue", q.dest, "error", err)
				q.e.observeFailure("fetch", err)
			}
		} else {
			q.fetchedMark = top
		}
	}
	q.feed.Stored(msgs)
}

// decode turns a fetched message into what the queue is fed, counting it against the asks. A message
// already fed and not acknowledged (handed out again by the server) is dropped; one that cannot be
// read is logged and left in the store.
func (q *queue) decode(jm jetstream.Msg) (broker.StoredMessage, bool) {
	md, err := jm.Metadata()
	if err != nil {
		q.e.log.Error("store: message without metadata", "queue", q.dest, "error", err)
		return broker.StoredMessage{}, false
	}
	seq := md.Sequence.Stream
	q.mu.Lock()
	if _, dup := q.outstanding[seq]; dup {
		q.mu.Unlock()
		return broker.StoredMessage{}, false
	}
	q.outstanding[seq] = struct{}{}
	q.credits--
	q.mu.Unlock()
	m, err := decodeMessage(jm.Data())
	if err != nil {
		q.e.log.Error("store: unreadable message left in the store", "queue", q.dest, "stream_sequence", seq, "error", err)
		return broker.StoredMessage{}, false
	}
	ref := &storedRef{msg: jm, seq: seq, size: int64(len(jm.Data()))}
	return broker.StoredMessage{Message: m, Redelivered: md.NumDelivered > 1 || seq <= q.redeliveredUpTo, Ref: ref}, true
}

// Ack implements broker.StoredQueue. Acknowledgements of one consumer are processed by the server in
// order, so waiting for the confirmation of the last (a double ack) waits for all of them.
func (q *queue) Ack(refs []broker.StoredRef, wait bool) error {
	var err error
	for i, ref := range refs {
		r, ok := ref.(*storedRef)
		if !ok {
			continue
		}
		if wait && i == len(refs)-1 {
			ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
			err = r.msg.DoubleAck(ctx)
			cancel()
		} else if e := r.msg.Ack(); e != nil && err == nil {
			err = e
		}
		q.mu.Lock()
		if _, ok := q.outstanding[r.seq]; ok {
			delete(q.outstanding, r.seq)
			q.count--
			q.bytes -= r.size
		}
		q.mu.Unlock()
	}
	if err != nil && !q.e.isClosed() {
		q.e.log.Warn("store: acknowledging queue messages", "queue", q.dest, "error", err)
		q.e.observeFailure("ack", err)
	}
	return err
}

// Stored implements broker.StoredQueue.
func (q *queue) Stored() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count, q.bytes
}

// Delete implements broker.StoredQueue: the consumer, its fetch mark and the queue's messages go.
func (q *queue) Delete() error {
	q.mu.Lock()
	q.deleted, q.credits = true, 0
	q.count, q.bytes = 0, 0
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if err := q.e.js.DeleteConsumer(ctx, queueStream, q.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	if err := q.e.fetched.Delete(ctx, q.name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	stream, err := q.e.js.Stream(ctx, queueStream)
	if err != nil {
		return err
	}
	return stream.Purge(ctx, jetstream.WithPurgeSubject(q.subject))
}

// storeError maps a JetStream publish failure to what the broker tells the publisher.
func storeError(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%w: %s", broker.ErrStoreUnavailable, apiErr.Description)
	}
	return fmt.Errorf("%w: %v", broker.ErrStoreUnavailable, err)
}
