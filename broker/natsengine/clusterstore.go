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
	e.js = guardedJS{js}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, errors.New("cluster: the NATS servers have no JetStream (start them with -js, or jetstream {} in their configuration)")
		}
		return nil, err
	}
	cancel()
	e.startConfirming()
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

// clusterCallTimeout bounds one JetStream management call in a cluster. Nodes starting together race
// to create the same streams, and a create that loses the race can go unanswered: a short bound and a
// look before creating let the retry find the stream made by the other node.
const clusterCallTimeout = 3 * time.Second

// ensureStream makes sure stream cfg exists: on one node, created or updated to cfg; in a cluster,
// looked up first, created when missing and updated only when its settings differ. A subject past
// maxSubjectBytes is refused (ErrNameTooLong), as nothing could be published on it.
func (e *Engine) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	for _, subject := range cfg.Subjects {
		if err := checkSubject(subject); err != nil {
			return err
		}
	}
	if !e.shared {
		_, err := e.js.CreateOrUpdateStream(ctx, cfg)
		return err
	}
	c, cancel := context.WithTimeout(ctx, clusterCallTimeout)
	defer cancel()
	s, err := e.js.Stream(c, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = e.js.CreateStream(c, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another node made it meanwhile
		}
		return err
	case err != nil:
		return err
	}
	have := s.CachedInfo().Config
	if have.Replicas != cfg.Replicas || have.MaxAge != cfg.MaxAge || have.MaxMsgs != cfg.MaxMsgs ||
		have.MaxBytes != cfg.MaxBytes || have.MaxMsgsPerSubject != cfg.MaxMsgsPerSubject {
		_, err = e.js.UpdateStream(c, cfg)
	}
	return err
}

// ensureKeyValue is ensureStream for a key-value bucket.
func (e *Engine) ensureKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if !e.shared {
		return e.js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	c, cancel := context.WithTimeout(ctx, clusterCallTimeout)
	defer cancel()
	kv, err := e.js.KeyValue(c, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = e.js.CreateKeyValue(c, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return e.js.KeyValue(c, cfg.Bucket)
		}
	}
	return kv, err
}

// ensureConsumer is ensureStream for a queue's durable consumer, shared by the nodes of a cluster.
func (e *Engine) ensureConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if !e.shared {
		return e.js.CreateOrUpdateConsumer(ctx, queueStream, cfg)
	}
	c, cancel := context.WithTimeout(ctx, clusterCallTimeout)
	defer cancel()
	cons, err := e.js.Consumer(c, queueStream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = e.js.CreateConsumer(c, queueStream, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			return e.js.Consumer(c, queueStream, cfg.Durable)
		}
	}
	return cons, err
}
