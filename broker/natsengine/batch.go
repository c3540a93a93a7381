package natsengine

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/stompd/stompd/broker"
)

// Headers of JetStream's atomic batch publish: every message of a batch carries its id and its
// position; the last also carries the commit, and only its publish is answered. The server stores
// the batch when it sees the commit, all of it or nothing.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// AppendAll implements broker.Store with one atomic batch publish.
func (e *Engine) AppendAll(queues []broker.StoredQueue, msgs []*broker.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if len(queues) != len(msgs) {
		return errors.New("store: AppendAll: one queue per message")
	}
	qs := make([]*queue, len(queues))
	for i, sq := range queues {
		q, ok := sq.(*queue)
		if !ok || q.e != e {
			return errors.New("store: AppendAll: a queue of another store")
		}
		qs[i] = q
	}
	id := nuid.Next()
	datas := make([][]byte, len(msgs))
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	begin := time.Now()
	var err error
	for i, m := range msgs {
		datas[i] = encodeMessage(m)
		nm := nats.NewMsg(qs[i].subject)
		nm.Data = datas[i]
		nm.Header.Set(batchIDHeader, id)
		nm.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err = e.nc.PublishMsg(nm); err != nil {
				break
			}
			continue
		}
		nm.Header.Set(batchCommitHeader, "1")
		_, err = e.js.PublishMsg(ctx, nm)
	}
	if e.cfg.ObserveWrite != nil {
		e.cfg.ObserveWrite(time.Since(begin), err)
	}
	if err != nil {
		e.failure.Store(&storeFailure{at: time.Now(), op: "append", err: err})
		return storeError(err)
	}
	for i, q := range qs {
		q.mu.Lock()
		q.count++
		q.bytes += int64(len(datas[i]))
		q.mu.Unlock()
	}
	return nil
}
