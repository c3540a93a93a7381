package broker

import "fmt"

// PublishAll publishes msgs as one transaction (a STOMP COMMIT). Without a Store it is Publish for each
// message in order. With one, the messages to stored queues are stored first, all together or none of
// them (in batches of MaxAtomicBatch), before any message of the transaction is delivered; then the
// other messages are published in order. It stops at the first refusal and returns the index of the
// message refused with the error; with a Store, a refused stored message refuses its whole batch.
// On success it returns -1 and nil.
func (b *Broker) PublishAll(msgs []*Message) (int, error) {
	if b.opts.Store == nil {
		for i, m := range msgs {
			if err := b.Publish(m); err != nil {
				return i, err
			}
		}
		return -1, nil
	}
	var stored, rest []int // indexes into msgs
	for i, m := range msgs {
		if kind, _, err := splitDestination(m.Destination); err == nil && kind == KindQueue {
			stored = append(stored, i)
		} else {
			rest = append(rest, i)
		}
	}
	for len(stored) > 0 {
		n := min(len(stored), MaxAtomicBatch)
		if i, err := b.storeAll(msgs, stored[:n]); err != nil {
			return i, err
		}
		stored = stored[n:]
	}
	for _, i := range rest {
		if err := b.Publish(msgs[i]); err != nil {
			return i, err
		}
	}
	return -1, nil
}

// storeAll stores msgs[idx...] in their queues as one atomic batch, within each queue's bounds.
func (b *Broker) storeAll(msgs []*Message, idx []int) (int, error) {
	queues := make([]*queue, 0, len(idx))
	stored := make([]StoredQueue, 0, len(idx))
	batch := make([]*Message, 0, len(idx))
	release := func(ok bool) {
		for k, q := range queues {
			q.releaseStored(batch[k], ok)
		}
	}
	for _, i := range idx {
		m := msgs[i]
		q, err := b.queueFor(m.Destination, false, Identity{})
		if err == nil && q == nil {
			if err = b.resolvePolicy(m.Destination).checkWritable(m); err == nil {
				q, err = b.queueFor(m.Destination, true, m.Sender)
			}
		}
		if err == nil {
			err = q.policy.checkWritable(m)
		}
		if err == nil {
			b.stamp(m)
			err = q.reserveStored(m)
		}
		if err != nil {
			release(false)
			return i, err
		}
		queues = append(queues, q)
		stored = append(stored, q.store)
		batch = append(batch, m)
	}
	if err := b.opts.Store.AppendAll(stored, batch); err != nil {
		release(false)
		return idx[0], fmt.Errorf("transaction of %d messages: %w", len(batch), err)
	}
	release(true)
	return -1, nil
}
