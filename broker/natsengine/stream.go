package natsengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stompd/stompd/broker"
)

const (
	streamNamePrefix    = "STREAM-"
	streamSubjectPrefix = "s."
	// streamDestinationKey is the stream metadata entry that names its destination.
	streamDestinationKey = "stompd-destination"
	// readWait bounds how long a read of a stream waits for the messages it knows are stored.
	readWait = 2 * time.Second
)

// streamName is the JetStream stream of a /topic/ stream destination: one per destination, so that
// its sequence numbers are the destination's offsets and its limits are the policy's.
func streamName(dest string) string {
	sum := sha256.Sum256([]byte(dest))
	return streamNamePrefix + hex.EncodeToString(sum[:16])
}

// streamSubject is the one subject of a stream destination's JetStream stream: s.TOKEN, TOKEN escaped
// as for queues.
func streamSubject(dest string) string {
	return streamSubjectPrefix + escapeToken(strings.TrimPrefix(dest, topicDestPrefix))
}

// storedStream is one stream destination's messages: a JetStream stream with limits retention whose
// sequence numbers are the offsets.
type storedStream struct {
	e       *Engine
	dest    string
	name    string
	subject string
	stream  jetstream.Stream
}

// OpenStream implements broker.StreamStore.
func (e *Engine) OpenStream(dest string, limits broker.StreamLimits) (broker.StoredStream, error) {
	if e.isClosed() {
		return nil, errClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	name := streamName(dest)
	if err := e.checkReadable(ctx, name); err != nil {
		return nil, err
	}
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "stompd stream " + dest,
		Subjects:    []string{streamSubject(dest)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      limits.MaxAge,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Replicas:    max(e.cfg.Replicas, 1),
		Metadata:    map[string]string{streamDestinationKey: dest},
	}
	if limits.MaxMessages > 0 {
		cfg.MaxMsgs = limits.MaxMessages
	}
	if limits.MaxBytes > 0 {
		cfg.MaxBytes = limits.MaxBytes
	}
	if err := e.ensureStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("stream %s cannot be opened: %w", dest, err)
	}
	stream, err := e.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s cannot be opened: %w", dest, err)
	}
	return &storedStream{e: e, dest: dest, name: name, subject: cfg.Subjects[0], stream: stream}, nil
}

// Bounds implements broker.StoredStream.
func (s *storedStream) Bounds() (first, last uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		s.e.observeFailure("fetch", err)
		return 0, 0, err
	}
	st := info.State
	if st.Msgs == 0 {
		return st.LastSeq + 1, st.LastSeq, nil
	}
	return st.FirstSeq, st.LastSeq, nil
}

// Append implements broker.StoredStream: the message is published expecting the previous offset as
// the stream's last sequence, so that the sequence it gets is its offset or it is refused.
func (s *storedStream) Append(m *broker.Message, done func(error)) {
	s.e.sends.RLock()
	defer s.e.sends.RUnlock()
	if s.e.sendsClosed {
		done(errClosed)
		return
	}
	begin := time.Now()
	fut, err := s.e.js.PublishAsync(s.subject, encodeStreamMessage(m), jetstream.WithExpectLastSequence(m.Offset-1))
	if err != nil {
		s.e.failure.Store(&storeFailure{at: time.Now(), op: "append", err: err})
		done(err)
		return
	}
	s.e.confirmations <- pendingAppend{future: fut, begin: begin, done: done}
}

// Numbered implements broker.StoredStream: in a cluster several nodes publish to a stream, and the
// stream's sequence numbers the messages.
func (s *storedStream) Numbered() bool { return s.e.shared }

// AppendNumbered implements broker.StoredStream.
func (s *storedStream) AppendNumbered(m *broker.Message) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	begin := time.Now()
	ack, err := s.e.js.Publish(ctx, s.subject, encodeStreamMessage(m))
	if s.e.cfg.ObserveWrite != nil {
		s.e.cfg.ObserveWrite(time.Since(begin), err)
	}
	if err != nil {
		s.e.failure.Store(&storeFailure{at: time.Now(), op: "append", err: err})
		return 0, err
	}
	return ack.Sequence, nil
}

// Read implements broker.StoredStream with a short-lived consumer starting at from.
func (s *storedStream) Read(from uint64, most int) ([]*broker.Message, error) {
	first, last, err := s.Bounds()
	if err != nil || from > last {
		return nil, err
	}
	from = max(from, first)
	n := int(min(uint64(most), last-from+1))
	return s.fetch(jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}, n)
}

// Seek implements broker.StoredStream.
func (s *storedStream) Seek(t time.Time) (uint64, error) {
	_, last, err := s.Bounds()
	if err != nil {
		return 0, err
	}
	msgs, err := s.fetch(jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t}, 1)
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return last + 1, nil
	}
	return msgs[0].Offset, nil
}

// fetch reads up to n messages with an ephemeral consumer made from cfg, and deletes it.
// Close cancels it and waits for it to end.
func (s *storedStream) fetch(cfg jetstream.ConsumerConfig, n int) ([]*broker.Message, error) {
	if !s.e.enterFetch() {
		return nil, errClosed
	}
	defer s.e.fetchers.Done()
	ctx, cancel := context.WithTimeout(s.e.stop, apiTimeout)
	defer cancel()
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = time.Minute // removed by the server should the delete below be lost
	cons, err := s.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		s.e.observeFailure("fetch", err)
		return nil, err
	}
	defer func() {
		if err := s.stream.DeleteConsumer(ctx, cons.CachedInfo().Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.e.log.Debug("store: a stream reader was not deleted; the server removes it when idle", "stream", s.dest, "error", err)
		}
	}()
	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return nil, nil
	}
	n = int(min(uint64(n), pending))
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(readWait))
	if err != nil {
		s.e.observeFailure("fetch", err)
		return nil, err
	}
	msgs := make([]*broker.Message, 0, n)
	for jm := range batch.Messages() {
		meta, err := jm.Metadata()
		if err != nil {
			continue
		}
		m, err := decodeMessage(jm.Data())
		if err != nil {
			s.e.log.Warn("store: an unreadable stream message is skipped", "stream", s.dest, "offset", meta.Sequence.Stream, "error", err)
			continue
		}
		m.Kind = broker.KindTopic
		m.Offset = meta.Sequence.Stream
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
		s.e.observeFailure("fetch", err)
		return nil, err
	}
	return msgs, nil
}

var _ broker.StreamStore = (*Engine)(nil)
