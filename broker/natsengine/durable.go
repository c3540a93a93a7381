package natsengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stompd/stompd/broker"
)

// durableBucket is the key-value bucket of the durable topic subscriptions: one key per subscription
// (a hash of its user and name), its description as JSON. Their messages are queues in QUEUES.
const durableBucket = "STOMPD_DURABLE"

// durableRecord is what the bucket holds for one durable subscription.
type durableRecord struct {
	User        string `json:"user"`
	Name        string `json:"name"`
	Destination string `json:"destination"`
}

// durableKey is the bucket key of the durable subscription name of user.
func durableKey(user, name string) string {
	sum := sha256.Sum256([]byte(user + "\x00" + name))
	return "d-" + hex.EncodeToString(sum[:16])
}

// prepareDurables opens (creating it if new) the bucket of durable subscriptions.
func (e *Engine) prepareDurables(ctx context.Context) error {
	if err := e.checkReadable(ctx, "KV_"+durableBucket); err != nil {
		return err
	}
	kv, err := e.ensureKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      durableBucket,
		Description: "stompd: durable topic subscriptions (user, name, destination)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(e.cfg.Replicas, 1),
	})
	if err != nil {
		return fmt.Errorf("%s: the durable subscriptions cannot be opened: %w", e.where(), err)
	}
	e.durables = kv
	return nil
}

// LoadDurables implements broker.DurableStore.
func (e *Engine) LoadDurables() ([]broker.DurableSubscription, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	keys, err := e.durables.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []broker.DurableSubscription
	for key := range keys.Keys() {
		entry, err := e.durables.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		var r durableRecord
		if err := json.Unmarshal(entry.Value(), &r); err != nil {
			e.log.Warn("store: an unreadable durable subscription is skipped", "key", key, "error", err)
			continue
		}
		out = append(out, broker.DurableSubscription{User: r.User, Name: r.Name, Destination: r.Destination})
	}
	return out, nil
}

// KeepDurable implements broker.DurableStore. The revision is the bucket's: the stream sequence of
// the record, which WatchDurables reports with its notices.
func (e *Engine) KeepDurable(d broker.DurableSubscription) (uint64, error) {
	value, err := json.Marshal(durableRecord{User: d.User, Name: d.Name, Destination: d.Destination})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return e.durables.Put(ctx, durableKey(d.User, d.Name), value)
}

// DropDurable implements broker.DurableStore.
func (e *Engine) DropDurable(user, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	err := e.durables.Purge(ctx, durableKey(user, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// WatchDurables calls add for every durable subscription recorded now and made later by any node of
// the cluster, and remove for every one deleted, until the Engine closes; on its own goroutine, in
// the order they happened, each with the bucket's revision of the change (the one KeepDurable
// returns for a record). The calls come after the fact, for this node's own changes too: a deletion
// may be told after the node made the subscription again, which its later revision tells
// (broker.ForgetDurable). It returns once the ones recorded now have been added.
func (e *Engine) WatchDurables(add func(d broker.DurableSubscription, revision uint64), remove func(user, name string, revision uint64)) error {
	w, err := e.durables.WatchAll(e.stop)
	if err != nil {
		return err
	}
	known := make(map[string]durableRecord) // key → record, to name what a deletion removes
	apply := func(entry jetstream.KeyValueEntry) {
		switch entry.Operation() {
		case jetstream.KeyValuePut:
			var r durableRecord
			if json.Unmarshal(entry.Value(), &r) != nil {
				return
			}
			known[entry.Key()] = r
			add(broker.DurableSubscription{User: r.User, Name: r.Name, Destination: r.Destination}, entry.Revision())
		default: // deleted or purged
			if r, ok := known[entry.Key()]; ok {
				delete(known, entry.Key())
				remove(r.User, r.Name, entry.Revision())
			}
		}
	}
	for entry := range w.Updates() {
		if entry == nil {
			break // the ones recorded now are all in
		}
		apply(entry)
	}
	e.fetchers.Add(1)
	go func() {
		defer e.fetchers.Done()
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-e.stop.Done():
				return
			case entry, ok := <-w.Updates():
				if !ok {
					return
				}
				if entry != nil {
					apply(entry)
				}
			}
		}
	}()
	return nil
}

var _ broker.DurableStore = (*Engine)(nil)
