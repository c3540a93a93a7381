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
	// DefaultClusterAckWait is Config.AckWait's default in a cluster: how long a node's unacknowledged
	// messages stay its own after it stops answering for them (it crashed), before the server hands
	// them to another node.
	DefaultClusterAckWait = 30 * time.Second
)

// ackWait is the queue consumers' AckWait: in a cluster, Config.AckWait, kept alive by each node for
// the messages it holds (queue.keepAlive); on one node, a day, as nobody else could take them.
func (e *Engine) ackWait() time.Duration {
	if !e.shared {
		return ackWait
	}
	if e.cfg.AckWait > 0 {
		return e.cfg.AckWait
	}
	return DefaultClusterAckWait
}

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
	credits     int                   // messages asked for and not yet fed
	fetching    bool                  // a fetch goroutine runs
	count       int                   // messages stored for the queue
	bytes       int64                 // their stored bytes
	outstanding map[uint64]*storedRef // stream sequences fed and not acknowledged; nil until decoded
	measured    time.Time             // in a cluster, when count and bytes were last read from the server
	measuring   bool                  // a measure is running
	deleted     bool                  // Delete was called: nothing more is fetched
}

// OpenQueue implements broker.Store. A destination whose subject passes maxSubjectBytes is refused
// with an error wrapping ErrNameTooLong, which does not repeat the name.
func (e *Engine) OpenQueue(dest string, feed broker.QueueFeed) (broker.StoredQueue, error) {
	if e.isClosed() {
		return nil, errClosed
	}
	subject := queueSubject(dest)
	if err := checkSubject(subject); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	name := queueConsumer(dest)
	q := &queue{e: e, dest: dest, subject: subject, name: name, feed: feed, outstanding: make(map[uint64]*storedRef)}
	e.mu.Lock()
	q.redeliveredUpTo = e.recovered[name]
	e.mu.Unlock()
	cons, err := e.ensureConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   dest,
		FilterSubject: q.subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.ackWait(),
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
	e.mu.Lock()
	e.queues = append(e.queues, q)
	e.mu.Unlock()
	return q, nil
}

var errClosed = errors.New("store: closed")

// measure counts what the store already holds for the queue (after a restart): the messages from the
// consumer's pending count, their bytes estimated at the stream's average message size (reading every
// message to add up their sizes would make opening a deep queue slow).
//
// In a cluster the other nodes publish and acknowledge too, so it counts what is pending for every
// node and what every node holds unacknowledged, and Stored reads it again now and then.
func (q *queue) measure(ctx context.Context) error {
	info, err := q.consumer.Info(ctx)
	if err != nil {
		return err
	}
	held := info.NumPending
	if q.e.shared {
		held += uint64(info.NumAckPending)
	}
	var bytes int64
	if held > 0 {
		stream, err := q.e.js.Stream(ctx, queueStream)
		if err != nil {
			return err
		}
		if state := stream.CachedInfo().State; state.Msgs > 0 {
			bytes = int64(state.Bytes / state.Msgs * held)
		}
	}
	q.mu.Lock()
	q.count, q.bytes, q.measured = int(held), bytes, time.Now()
	q.mu.Unlock()
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
	if top > q.fetchedMark && q.e.fetched != nil {
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
	ref := &storedRef{msg: jm, seq: seq, size: int64(len(jm.Data()))}
	q.mu.Lock()
	if _, dup := q.outstanding[seq]; dup {
		q.mu.Unlock()
		return broker.StoredMessage{}, false
	}
	q.outstanding[seq] = ref
	q.credits--
	q.mu.Unlock()
	m, err := decodeMessage(jm.Data())
	if err != nil {
		q.e.log.Error("store: unreadable message left in the store", "queue", q.dest, "stream_sequence", seq, "error", err)
		return broker.StoredMessage{}, false
	}
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

// Stored implements broker.StoredQueue. In a cluster the figures are read from the server again when
// older than measureEvery, on another goroutine: the broker asks with its queue lock held.
func (q *queue) Stored() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.e.shared && !q.measuring && time.Since(q.measured) > measureEvery && q.e.enterFetch() {
		q.measuring = true
		go func() {
			defer q.e.fetchers.Done()
			ctx, cancel := context.WithTimeout(q.e.stop, apiTimeout)
			defer cancel()
			_ = q.measure(ctx)
			q.mu.Lock()
			q.measuring = false
			q.mu.Unlock()
		}()
	}
	return q.count, q.bytes
}

// measureEvery is how stale a clustered queue's counts may get before Stored reads them again.
const measureEvery = 250 * time.Millisecond

// Release implements broker.StoredQueue: in a cluster, the messages go back to the server at once
// (NAK), for any node's consumers, marked redelivered; on one node they stay where they are.
func (q *queue) Release(refs []broker.StoredRef) bool {
	if !q.e.shared {
		return false
	}
	for _, ref := range refs {
		r, ok := ref.(*storedRef)
		if !ok {
			continue
		}
		_ = r.msg.Nak()
		q.mu.Lock()
		delete(q.outstanding, r.seq)
		q.mu.Unlock()
	}
	return true
}

// keepAlive tells the server that this node still holds its outstanding messages (delivered to a
// client and not acknowledged yet, or waiting for one), so that they are not handed to another node
// after AckWait. Called every AckWait/3 in a cluster.
func (q *queue) keepAlive() {
	q.mu.Lock()
	refs := make([]*storedRef, 0, len(q.outstanding))
	for _, r := range q.outstanding {
		if r != nil {
			refs = append(refs, r)
		}
	}
	q.mu.Unlock()
	for _, r := range refs {
		_ = r.msg.InProgress()
	}
}

// releaseAll hands every outstanding message back to the server (a node leaving the cluster
// gracefully), so that other nodes' consumers get them at once.
func (q *queue) releaseAll() {
	q.mu.Lock()
	refs := make([]broker.StoredRef, 0, len(q.outstanding))
	for _, r := range q.outstanding {
		if r != nil {
			refs = append(refs, r)
		}
	}
	q.mu.Unlock()
	q.Release(refs)
}

// Purge implements broker.StoredQueue: the queue's messages go from the stream; those this node has
// fed and not seen acknowledged are forgotten too (their acknowledgements then find nothing).
func (q *queue) Purge() error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	stream, err := q.e.js.Stream(ctx, queueStream)
	if err != nil {
		return err
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(q.subject)); err != nil {
		return err
	}
	q.mu.Lock()
	q.count, q.bytes, q.credits = 0, 0, 0
	clear(q.outstanding)
	q.mu.Unlock()
	// Appends confirmed while the purge was under way are counted again from the server, not lost
	// to the depth bound.
	if err := q.measure(ctx); err != nil {
		q.e.log.Warn("store: counting a purged queue again", "queue", q.dest, "error", err)
	}
	return nil
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
	if q.e.fetched != nil {
		if err := q.e.fetched.Delete(ctx, q.name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
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
