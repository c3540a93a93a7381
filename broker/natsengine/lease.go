package natsengine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leases elect, among the nodes of a cluster, the one that runs a job only one node may run (the
// stock feed): a key in a key-value bucket whose entries expire leaseTTL after their last write. The
// holder rewrites it every leaseRenew; the others try to create it as often, which succeeds once it
// has expired (its holder died) or was deleted (its holder stopped).
const (
	leaseBucket = "STOMPD_LEASES"
	leaseTTL    = 6 * time.Second
	leaseRenew  = 2 * time.Second
)

// Lead runs onLead on this node while it holds the lease called name, and onLose when it stops
// holding it (the lease could not be renewed in time, or stop was called). Both run on the lease's
// goroutine, one after the other. It returns stop, which gives the lease up (deleting the key, so that
// another node takes over at once) and waits for the goroutine. Only on an Engine from OpenStore.
func (e *Engine) Lead(name, holder string, onLead, onLose func()) (stop func()) {
	ctx, cancel := context.WithCancel(e.stop)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.lead(ctx, name, holder, onLead, onLose)
	}()
	return func() { cancel(); wg.Wait() }
}

func (e *Engine) lead(ctx context.Context, name, holder string, onLead, onLose func()) {
	var kv jetstream.KeyValue
	var rev uint64
	leading := false
	var renewed time.Time
	lose := func() {
		if leading {
			leading = false
			e.log.Info("cluster: this node no longer runs "+name, "holder", holder)
			onLose()
		}
	}
	tick := time.NewTicker(leaseRenew)
	defer tick.Stop()
	for {
		if kv == nil {
			c, cancel := context.WithTimeout(ctx, apiTimeout)
			var err error
			kv, err = e.ensureKeyValue(c, jetstream.KeyValueConfig{
				Bucket: leaseBucket, Description: "stompd: which node runs each single-node job",
				TTL: leaseTTL, History: 1, Storage: jetstream.MemoryStorage, Replicas: max(e.cfg.Replicas, 1),
			})
			cancel()
			if err != nil {
				kv = nil
				e.log.Debug("cluster: lease bucket not ready", "error", err)
			}
		}
		if kv != nil {
			c, cancel := context.WithTimeout(ctx, leaseRenew)
			var next uint64
			var err error
			// rev changes only when the write succeeds: after a failed renewal (unanswered in time),
			// the next must still name the revision the server holds, or it is refused too and the
			// lease is given up for nothing.
			if leading {
				if next, err = kv.Update(c, name, []byte(holder), rev); err == nil {
					rev, renewed = next, time.Now()
				}
			} else if next, err = kv.Create(c, name, []byte(holder)); err == nil {
				rev, renewed = next, time.Now()
				leading = true
				e.log.Info("cluster: this node runs "+name, "holder", holder)
				onLead()
			}
			cancel()
			var refused *jetstream.APIError
			switch {
			case err == nil || !leading:
			case errors.As(err, &refused) || errors.Is(err, jetstream.ErrKeyExists):
				lose() // the server says the key is not ours any more: another node holds it
			case time.Since(renewed) > leaseTTL-leaseRenew:
				lose() // unanswered for so long that another node may take over any moment now
			}
		} else if leading && time.Since(renewed) > leaseTTL-leaseRenew {
			lose()
		}
		select {
		case <-ctx.Done():
			if leading && kv != nil {
				c, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = kv.Delete(c, name, jetstream.LastRevision(rev))
				cancel()
			}
			lose()
			return
		case <-tick.C:
		}
	}
}
