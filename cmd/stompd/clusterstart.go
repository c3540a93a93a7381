package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/chat"
	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/broker/stocks"
)

// clusterShared is the broker's Store and RetainedStore in a cluster: the cluster's JetStream once the
// node has reached it (clusterStartup). Before that, queues cannot be opened (a SEND or SUBSCRIBE to
// a new queue gets ERROR store unavailable, naming why), and retained messages published meanwhile are
// retained here and reach the other nodes but are not stored.
type clusterShared struct {
	store atomic.Pointer[natsengine.Engine]
}

var errClusterStoreNotReady = errors.New("not connected to the cluster's store yet")

// health is the cluster store's trouble, for /readyz's line after "ready" as with -data-dir (an
// operation failed in the last minute, its connection closed for good); "" before the store is
// reached, which /readyz reports as not ready by itself.
func (r *clusterShared) health() string {
	if e := r.store.Load(); e != nil {
		return e.Health()
	}
	return ""
}

// LoadRetained returns nothing: clusterStartup restores what the cluster kept once it reaches it.
func (r *clusterShared) LoadRetained() ([]*broker.Message, error) { return nil, nil }

// KeepRetained implements broker.RetainedStore.
func (r *clusterShared) KeepRetained(m *broker.Message) {
	if e := r.store.Load(); e != nil {
		e.KeepRetained(m)
	}
}

// OpenQueue implements broker.Store.
func (r *clusterShared) OpenQueue(dest string, feed broker.QueueFeed) (broker.StoredQueue, error) {
	e := r.store.Load()
	if e == nil {
		return nil, errClusterStoreNotReady
	}
	return e.OpenQueue(dest, feed)
}

// AppendAll implements broker.Store: the queues are the store's, so it is there once they are open.
func (r *clusterShared) AppendAll(queues []broker.StoredQueue, msgs []*broker.Message) error {
	e := r.store.Load()
	if e == nil {
		return errClusterStoreNotReady
	}
	return e.AppendAll(queues, msgs)
}

// OpenStream implements broker.StreamStore.
func (r *clusterShared) OpenStream(dest string, limits broker.StreamLimits) (broker.StoredStream, error) {
	e := r.store.Load()
	if e == nil {
		return nil, errClusterStoreNotReady
	}
	return e.OpenStream(dest, limits)
}

// LoadDurables returns nothing: clusterStartup binds the cluster's durable subscriptions, and every
// one made later, from the store's watch.
func (r *clusterShared) LoadDurables() ([]broker.DurableSubscription, error) { return nil, nil }

// KeepDurable implements broker.DurableStore.
func (r *clusterShared) KeepDurable(d broker.DurableSubscription) (uint64, error) {
	e := r.store.Load()
	if e == nil {
		return 0, errClusterStoreNotReady
	}
	return e.KeepDurable(d)
}

// DropDurable implements broker.DurableStore.
func (r *clusterShared) DropDurable(user, name string) error {
	e := r.store.Load()
	if e == nil {
		return errClusterStoreNotReady
	}
	return e.DropDurable(user, name)
}

// Sync implements broker.Store.
func (r *clusterShared) Sync() error {
	if e := r.store.Load(); e != nil {
		return e.Sync()
	}
	return nil
}

// clusterStartup is what a node of a cluster does once NATS answers: it opens the cluster's shared
// store, restores the retained messages the cluster kept, and campaigns for the stock feed (when the
// node runs one), which only one node of the cluster runs at a time. Until it is done, ready reports
// why the node is not ready.
type clusterStartup struct {
	cluster *natsengine.Cluster
	b       *broker.Broker
	shared  *clusterShared
	feed    *stocks.Feed // nil when the node runs no feed
	cfg     natsengine.Config
	log     *slog.Logger

	state    atomic.Value // string: why the node is not ready yet; "" once done
	cancel   context.CancelFunc
	done     sync.WaitGroup
	mu       sync.Mutex
	stopFeed func()
}

// start runs the startup on its own goroutine until stop.
func (s *clusterStartup) start() {
	s.state.Store("cluster: opening the store shared by the cluster")
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		s.run(ctx)
	}()
}

func (s *clusterStartup) run(ctx context.Context) {
	var store *natsengine.Engine
	for store == nil {
		if s.cluster.Connected() {
			var err error
			if store, err = s.cluster.OpenStore(s.cfg); err != nil {
				s.state.Store("cluster: " + err.Error())
				s.log.Warn("cluster: the shared store cannot be opened yet; trying again", "error", err)
			}
		}
		if store == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	msgs, err := store.LoadRetained()
	if err != nil {
		s.log.Warn("cluster: retained messages could not be loaded; topics go on from what they see", "error", err)
	}
	s.b.RestoreRetained(msgs)
	s.shared.store.Store(store)
	// Every durable subscription of the cluster is bound on every node, which keeps for it what is
	// published here. The watch's notices come after the fact, this node's own too: each carries the
	// revision of its change, and a deletion older than the durable subscription a node has (made
	// again here since, or learned of since) leaves it alone (broker.ForgetDurable).
	for {
		err := store.WatchDurables(func(d broker.DurableSubscription, revision uint64) {
			if err := s.b.EnsureDurable(d, revision); err != nil {
				s.log.Warn("cluster: a durable subscription is not bound on this node", "subscription", d.Name, "error", err)
			}
		}, s.b.ForgetDurable)
		if err == nil {
			break
		}
		s.log.Warn("cluster: the durable subscriptions cannot be watched yet; trying again", "error", err)
		select {
		case <-ctx.Done():
			_ = store.Close()
			return
		case <-time.After(time.Second):
		}
	}
	s.mu.Lock()
	if s.feed != nil && ctx.Err() == nil {
		s.stopFeed = store.Lead("stocks", s.cluster.Origin(), s.feed.Start, s.feed.Stop)
	}
	s.mu.Unlock()
	s.state.Store("")
	<-ctx.Done()
	s.mu.Lock()
	if s.stopFeed != nil {
		s.stopFeed() // gives the feed up at once, for another node to take over
	}
	s.mu.Unlock()
	_ = store.Close()
}

// problem says why the node is not ready for the cluster yet, or "".
func (s *clusterStartup) problem() string {
	v, _ := s.state.Load().(string)
	return v
}

// stop ends the startup, gives the feed up and closes the shared store.
func (s *clusterStartup) stop() {
	if s.cancel != nil {
		s.cancel()
		s.done.Wait()
	}
}

// chatPeers is the chat room's view of the other nodes (chat.Peers): each node shares its members
// with its heart-beats, under chatStateKey.
type chatPeers struct{ c *natsengine.Cluster }

const chatStateKey = "chat.members"

// Share implements chat.Peers.
func (p chatPeers) Share(members []chat.Member) {
	data, err := json.Marshal(members)
	if err == nil {
		p.c.SetState(chatStateKey, data)
	}
}

// Members implements chat.Peers.
func (p chatPeers) Members() []chat.Member {
	var out []chat.Member
	for _, n := range p.c.Peers() {
		out = append(out, chatMembersOf(n)...)
	}
	return out
}

// chatMembersOf reads the members a node shares.
func chatMembersOf(n natsengine.NodeState) []chat.Member {
	var members []chat.Member
	if raw := n.State[chatStateKey]; raw != nil {
		_ = json.Unmarshal(raw, &members)
	}
	return members
}

// joinChatToCluster makes room one room across the cluster: its members are shared, and the members
// of a node that goes away leave.
func joinChatToCluster(c *natsengine.Cluster, room *chat.Room) {
	c.OnNodeGone(func(n natsengine.NodeState) { room.PeersGone(chatMembersOf(n)) })
}
