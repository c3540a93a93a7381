package natsengine

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OpenStore readies, on the cluster's JetStream, what the nodes of a cluster share through it, each
// stream with cfg.Replicas copies: the queues (broker.Store; one durable consumer per queue shared by
// every node, each node fetching what its own consumers have room for, and keeping the messages it
// holds alive so that they go to another node cfg.AckWait after it crashes) and the retained messages
// of topics (broker.RetainedStore, cfg.RetainedPerDestination per destination). cfg.Dir and the sync
// settings are the NATS servers' business and are ignored. It needs the connection up (Connected) and fails otherwise, or
// when the servers have no JetStream. The Engine shares the Cluster's connection: close it before
// the Cluster.
func (c *Cluster) OpenStore(cfg Config) (*Engine, error) {
	if !c.Connected() {
		return nil, errors.New("cluster: not connected to NATS")
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, nc: c.nc, shared: true}
	e.stop, e.cancel = context.WithCancel(context.Background())
	js, err := jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(maxPendingAppends),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if strings.HasPrefix(m.Subject, retainedSubjectPrefix) {
				e.retainedPublishFailed(err)
			}
		}))
	if err != nil {
		return nil, err
	}
	e.js = js
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, errors.New("cluster: the NATS servers have no JetStream (start them with -js, or jetstream {} in their configuration)")
		}
		return nil, err
	}
	cancel()
	e.confirmations = make(chan pendingAppend, maxPendingAppends)
	e.confirming.Add(1)
	go e.confirmLoop()
	if err := e.prepareQueues(); err != nil {
		e.Close()
		return nil, err
	}
	e.fetchers.Add(1)
	go e.keepAlive()
	return e, nil
}

// keepAlive renews, every AckWait/3, the server's hold of the messages this node's queues hold.
func (e *Engine) keepAlive() {
	defer e.fetchers.Done()
	tick := time.NewTicker(e.ackWait() / 3)
	defer tick.Stop()
	for {
		select {
		case <-e.stop.Done():
			return
		case <-tick.C:
		}
		e.mu.Lock()
		queues := e.queues
		e.mu.Unlock()
		for _, q := range queues {
			q.keepAlive()
		}
	}
}
