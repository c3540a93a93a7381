package natsengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stompd/stompd/broker"
)

const (
	retainedStream        = "RETAINED"
	retainedSubjectPrefix = "r."
	topicDestPrefix       = "/topic/"
)

// retainedSubject is the subject of a /topic/ destination's retained messages: r.TOKEN, TOKEN escaped
// as for queues.
func retainedSubject(dest string) string {
	return retainedSubjectPrefix + escapeToken(strings.TrimPrefix(dest, topicDestPrefix))
}

// prepareRetained creates the stream of retained messages, keeping per destination as many as the
// most any policy retains.
func (e *Engine) prepareRetained(ctx context.Context) error {
	if err := e.checkReadable(ctx, retainedStream); err != nil {
		return err
	}
	err := e.ensureStream(ctx, jetstream.StreamConfig{
		Name:              retainedStream,
		Description:       "stompd: the retained messages of topics (last values, histories)",
		Subjects:          []string{retainedSubjectPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(max(e.cfg.RetainedPerDestination, 1)),
		MaxBytes:          -1,
		Replicas:          max(e.cfg.Replicas, 1),
	})
	if err != nil {
		return fmt.Errorf("%s: the retained messages cannot be opened: %w", e.where(), err)
	}
	return nil
}

// LoadRetained implements broker.RetainedStore: every retained message kept, in the order stored.
func (e *Engine) LoadRetained() ([]*broker.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	stream, err := e.js.Stream(ctx, retainedStream)
	if err != nil {
		return nil, err
	}
	total := stream.CachedInfo().State.Msgs
	if total == 0 {
		return nil, nil
	}
	oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	msgs := make([]*broker.Message, 0, total)
	for read := uint64(0); read < total; {
		batch, err := oc.Fetch(int(min(uint64(maxFetch), total-read)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return msgs, err
		}
		got := 0
		for jm := range batch.Messages() {
			got++
			read++
			m, err := decodeMessage(jm.Data())
			if err != nil {
				e.log.Warn("store: an unreadable retained message is skipped", "subject", jm.Subject(), "error", err)
				continue
			}
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return msgs, err
		}
		if got == 0 {
			break // the stream shrank meanwhile
		}
	}
	return msgs, nil
}

// KeepRetained implements broker.RetainedStore with an asynchronous publish; a failure is logged and
// counted by the publish error handler (retainedPublishFailed).
func (e *Engine) KeepRetained(m *broker.Message) {
	e.sends.RLock()
	defer e.sends.RUnlock()
	if e.sendsClosed {
		return
	}
	if _, err := e.js.PublishAsync(retainedSubject(m.Destination), encodeMessage(m)); err != nil {
		e.retainedPublishFailed(err)
	}
}

// retainedPublishFailed records a retained message that could not be kept.
func (e *Engine) retainedPublishFailed(err error) {
	if e.isClosed() {
		return
	}
	e.log.Warn("store: a retained message was not kept", "error", err)
	if !errors.Is(err, ErrNameTooLong) { // the client's name, not the store, is at fault
		e.observeFailure("append", err)
	}
}

var _ broker.RetainedStore = (*Engine)(nil)
