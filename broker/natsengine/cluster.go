package natsengine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stompd/stompd/broker"
)

// ClusterConfig configures JoinCluster.
type ClusterConfig struct {
	// URLs are the NATS servers to connect to (nats:// or tls://); the client fails over between them.
	URLs []string
	// NodeName names this node to the others and in NATS's connection list. Required.
	NodeName string
	// Options are extra connection options: TLS, credentials. They are applied after the engine's own.
	Options []nats.Option
	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
	// ObserveLatency, when set, is given the time from publish on another node to arrival here, for
	// one message in latencySampling. Called from the receiving goroutine; must not block.
	ObserveLatency func(time.Duration)
}

// Timings of the cluster's node heart-beats and of interest that is no longer needed.
const (
	nodeHeartbeat = 2 * time.Second
	// nodeTimeout is how long after its last heart-beat a node counts as gone.
	nodeTimeout = 7 * time.Second
	// unwatchLinger keeps a NATS subscription that lost its last watcher for a moment, so that a
	// client that resubscribes at once (a page reload) does not make the node unsubscribe and
	// subscribe again.
	unwatchLinger = time.Second
	// watchTimeout bounds how long Watch waits for the NATS server to confirm a new subscription.
	watchTimeout = 5 * time.Second
	// inboundBuffer and inboundBytes bound the batches from other nodes (NATS messages: topic
	// batches and reply batches) that wait for the receiving goroutine, by count and by payload
	// bytes, the batch being delivered included; past either, admit drops a batch and counts it in
	// ClusterStats.Dropped. A batch is admitted whatever its size when none waits, so that one as
	// large as the server's max_payload always gets through. 32 MiB holds what two senders may
	// have pending (maxPendingBytes), or 64 full batches (maxBatchBytes); the count bounds the
	// nats.Msg overhead, outside the byte figure, of batches of one small message (some 200 bytes
	// each: 13 MiB at most).
	inboundBuffer = 1 << 16
	inboundBytes  = 32 << 20
	// natsChanLen is the channel nats.go delivers every watched subject and the replies into
	// (ChanSubscribe), in arrival order. nats.go applies no byte limit to a channel subscription:
	// a full channel is its only bound, past which it drops what arrives and counts it per
	// subscription (Subscription.Dropped, read into ClusterStats.Dropped). admit takes from it at
	// once and does nothing else, so it holds only what NATS's reader parses while admit waits to be
	// scheduled; that wait can be long on a busy machine (a garbage collection, a starved CPU) while
	// a burst of small batches arrives, hundreds per 32 KiB read, so the channel is as long as
	// inboundBuffer: a burst that inbound could take is not lost in front of it.
	natsChanLen = inboundBuffer
	// latencySampling is how many received messages make one latency observation.
	latencySampling = 64
)

const (
	nodeSubject        = "_stompd.node"   // node heart-beats
	replySubjectPrefix = "_stompd.reply." // + a node's broker NodeID: replies for its reply queues
	backplaneWire      = 3                // first byte of every batch on a topic or reply subject
)

// Cluster is this node's link to the other stompd nodes through NATS: the broker.Backplane for topic
// messages and a view of which nodes are alive. Its methods are safe for concurrent use.
type Cluster struct {
	cfg    ClusterConfig
	log    *slog.Logger
	nc     *nats.Conn
	origin string // NodeName plus a per-process id, so that a restarted node is a new origin
	seq    atomic.Uint64

	receiver atomic.Pointer[func(*broker.Message) error]
	// in is what NATS hands over (natsChanLen), taken by admit; inbound what admit let through for
	// receive (inboundBuffer), and inboundHeld the payload bytes in inbound and in the batch receive
	// is on (inboundBytes), added by admit and taken off by receive once it has delivered a batch.
	in          chan *nats.Msg
	inbound     chan *nats.Msg
	inboundHeld atomic.Int64
	beatNow     chan struct{} // a node joined: announce this one at once rather than at the next tick
	stop        chan struct{}
	done        sync.WaitGroup

	mu      sync.Mutex
	watched map[string]*watchedSubject // NATS subject → its subscription
	nodes   map[string]nodeSeen        // origin → last heart-beat
	state   map[string]json.RawMessage // this node's shared state (SetState), sent with its heart-beats
	figures func() json.RawMessage     // this node's figures (SetFigures), read at each heart-beat
	onGone  []func(node NodeState)     // OnNodeGone callbacks
	onState []func()                   // OnStateChange callbacks
	closed  bool
	replies []*nats.Subscription // ListenReplies' subscriptions
	// dropSeen is, per subscription into in (watched subjects and replies), the running total of
	// what NATS dropped for it when last read (noteDroppedLocked); the entry goes with the
	// subscription, once its last total is counted.
	dropSeen map[*nats.Subscription]uint64

	stats clusterCounters
	// outMu guards the batches waiting for the sender goroutine, oldest first, their bytes, and
	// spare buffers; outKick wakes the sender.
	outMu        sync.Mutex
	order        []*batch
	pendingBytes int
	spare        [][]byte
	outKick      chan struct{}
	// subjects caches Forward's subject per destination (subjectOf).
	subjects     sync.Map
	subjectCount atomic.Int64
	// lostAt is when the connection was last lost (Unix nanoseconds), 0 while connected or before
	// the first connection.
	lostAt atomic.Int64
	// closedBy is why NATS closed the connection for good (nats.go does not reconnect after some
	// server errors), nil while it is open or when Close closed it; see ConnectionClosed.
	closedBy atomic.Pointer[error]
	// outStopped is set, under outMu, once the sender has taken its last batches (Close): what send
	// gets afterwards is counted as failed.
	outStopped bool
	// batchLimit is maxBatchBytes, or less when the server's max_payload leaves less room for a
	// batch's messages; set at each connection.
	batchLimit atomic.Int64
}

// watchedSubject is one NATS subscription of the node and how many watches need it.
type watchedSubject struct {
	sub    *nats.Subscription
	refs   int
	ready  chan struct{} // closed once the server confirmed the subscription, or that it could not
	err    error         // why not; read after ready is closed
	linger *time.Timer   // pending unsubscribe after the last Unwatch
}

// made reports whether ready is closed: sub and err may be read.
func (w *watchedSubject) made() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

type nodeSeen struct {
	Name    string
	Started time.Time
	State   map[string]json.RawMessage
	Figures json.RawMessage
	seen    time.Time
}

func (n nodeSeen) public(origin string) NodeState {
	return NodeState{Origin: origin, Name: n.Name, Started: n.Started, State: n.State, Figures: n.Figures, Seen: n.seen}
}

// NodeState is what another node shares with the cluster: its name, start time, the state it set
// (SetState) and its figures (SetFigures), as its last heart-beat carried them, and when that was.
type NodeState struct {
	Origin  string
	Name    string
	Started time.Time
	State   map[string]json.RawMessage
	Figures json.RawMessage
	Seen    time.Time
}

// heartbeatMessage is a node heart-beat on nodeSubject.
type heartbeatMessage struct {
	Origin  string                     `json:"origin"`
	Name    string                     `json:"name"`
	Started time.Time                  `json:"started"`
	State   map[string]json.RawMessage `json:"state,omitempty"`
	Figures json.RawMessage            `json:"figures,omitempty"`
}

// clusterCounters are the figures ClusterStats reports.
type clusterCounters struct {
	out, in, failedOut, duplicates, dropped, reconnects atomic.Uint64
}

// ClusterStats is a snapshot of the node's link to the cluster.
type ClusterStats struct {
	Connected  bool
	MessagesIn uint64 // topic messages from other nodes delivered here
	// MessagesOut counts topic messages handed to NATS; FailedOut those not forwarded (NATS not
	// connected and its reconnect buffer full, a subject past maxSubjectBytes, a message past the
	// server's max_payload, or forwarded after Close): they reached this node only.
	MessagesOut, FailedOut uint64
	// Dropped counts the batches from other nodes (NATS messages, each of one or more topic
	// messages or replies) not delivered because this node received them too slowly: dropped by
	// NATS (more than natsChanLen waiting for the node to take them) or by the node (more than
	// inboundBuffer batches or inboundBytes bytes waiting for delivery), summed over the node's
	// subscriptions, past ones included. Duplicates counts the repeats of one message that
	// overlapping subscriptions brought.
	Dropped, Duplicates uint64
	Reconnects          uint64
	Nodes               int // nodes heard from within the heart-beat timeout, this one included
	Subjects            int // NATS subscriptions held
}

// JoinCluster connects to NATS and starts the node's heart-beats. It does not wait for a connection:
// when no server answers it keeps trying in the background (Connected reports when it has one), and
// it reconnects whenever the connection is lost, subscriptions included. Close leaves.
func JoinCluster(cfg ClusterConfig) (*Cluster, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("natsengine: no NATS URL")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("natsengine: no node name")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	c := &Cluster{
		cfg: cfg, log: cfg.Logger,
		origin:  cfg.NodeName + "/" + hex.EncodeToString(id[:]),
		in:      make(chan *nats.Msg, natsChanLen),
		inbound: make(chan *nats.Msg, inboundBuffer),
		beatNow: make(chan struct{}, 1),
		outKick: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		watched: make(map[string]*watchedSubject),
		nodes:   make(map[string]nodeSeen),
		state:   make(map[string]json.RawMessage),
	}
	c.batchLimit.Store(maxBatchBytes)
	opts := []nats.Option{
		nats.Name("stompd " + cfg.NodeName),
		// The node delivers its own messages itself: NATS need not send them back to it.
		nats.NoEcho(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.setBatchLimit(nc.MaxPayload())
			c.beatSoon()
			c.log.Info("cluster: connected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.lostAt.CompareAndSwap(0, time.Now().UnixNano())
			c.log.Warn("cluster: disconnected from NATS; local traffic goes on", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.setBatchLimit(nc.MaxPayload())
			c.lostAt.Store(0)
			c.stats.reconnects.Add(1)
			c.log.Info("cluster: reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			c.mu.Lock()
			leaving := c.closed
			c.mu.Unlock()
			if leaving {
				return
			}
			err := nc.LastError()
			if err == nil {
				err = errors.New("closed by the NATS client")
			}
			c.closedBy.Store(&err)
			c.log.Error("cluster: the NATS connection is closed for good; this node serves only its own clients until it restarts", "error", err)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
				// nats.go reports a subscription's first drop after it last kept up, not every
				// drop: Stats reads the totals (noteDroppedLocked).
				c.mu.Lock()
				c.noteDroppedLocked(sub)
				c.mu.Unlock()
				c.log.Warn("cluster: NATS dropped messages for this node: it receives too slowly", "subject", sub.Subject)
				return
			}
			c.log.Warn("cluster: NATS error", "error", err)
		}),
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), append(opts, cfg.Options...)...)
	if err != nil {
		return nil, fmt.Errorf("cluster: NATS %s: %w", redactURLs(cfg.URLs), err)
	}
	c.nc = nc
	c.setBatchLimit(nc.MaxPayload())
	if _, err := nc.Subscribe(nodeSubject, c.heardNode); err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.done.Add(4)
	go c.admit()
	go c.receive()
	go c.heartbeat()
	go c.sender()
	return c, nil
}

// noteDroppedLocked adds to ClusterStats.Dropped what NATS dropped for sub since it was last read:
// nats.go keeps a running total per subscription, so the node keeps the last total it read of each
// of its subscriptions into in (dropSeen) and adds the difference; a total lower than the last
// read (a concurrent reader got the later one first) adds nothing. Subscriptions that are not the
// node's channel subscriptions, and ended ones, are ignored. The caller holds c.mu.
func (c *Cluster) noteDroppedLocked(sub *nats.Subscription) {
	if !c.feedsIn(sub) {
		return
	}
	total, err := sub.Dropped()
	if err != nil || total <= 0 {
		return
	}
	if c.dropSeen == nil {
		c.dropSeen = make(map[*nats.Subscription]uint64)
	}
	if last := c.dropSeen[sub]; uint64(total) > last {
		c.stats.dropped.Add(uint64(total) - last)
		c.dropSeen[sub] = uint64(total)
	}
}

// feedsIn reports whether sub is one of the node's current subscriptions into in: a watched
// subject's or a reply subscription. The caller holds c.mu.
func (c *Cluster) feedsIn(sub *nats.Subscription) bool {
	if w := c.watched[sub.Subject]; w != nil && w.made() && w.sub == sub {
		return true
	}
	for _, r := range c.replies {
		if r == sub {
			return true
		}
	}
	return false
}

// forgetDroppedLocked counts what NATS dropped for sub, a subscription about to end, and forgets
// it. What NATS drops for it between this and its Unsubscribe is not counted. The caller holds
// c.mu.
func (c *Cluster) forgetDroppedLocked(sub *nats.Subscription) {
	c.noteDroppedLocked(sub)
	delete(c.dropSeen, sub)
}

// SetReceiver sets where messages from other nodes go: the broker's PublishRemote. Until it is set
// they are dropped (the node has no subscriber yet).
func (c *Cluster) SetReceiver(f func(*broker.Message) error) { c.receiver.Store(&f) }

// Origin is this node's name and per-process id, as the other nodes know it.
func (c *Cluster) Origin() string { return c.origin }

// Connected reports whether the node has a NATS connection now.
func (c *Cluster) Connected() bool { return c.nc.IsConnected() }

// ConnectionClosed returns why the NATS connection is closed for good, nil while it is open or
// reconnecting, and after Close. nats.go gives up on a connection after some server errors (a
// protocol line past the server's max_control_line): a node whose connection is closed never
// reaches the cluster again until it restarts.
func (c *Cluster) ConnectionClosed() error {
	if p := c.closedBy.Load(); p != nil {
		return *p
	}
	return nil
}

// DisconnectedSince is when the NATS connection was lost, zero while it is up and before the first
// connection.
func (c *Cluster) DisconnectedSince() time.Time {
	if n := c.lostAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Forward implements broker.Backplane: the message goes in the batch of the destination's subject. A
// destination whose subject passes maxSubjectBytes is not forwarded (counted in FailedOut).
func (c *Cluster) Forward(m *broker.Message) { c.send(c.subjectOf(m.Destination), m) }

// ForwardReply implements broker.Backplane: the message goes in the batch of the node's replies.
func (c *Cluster) ForwardReply(node string, m *broker.Message) {
	c.send(replySubjectPrefix+escapeToken(node), m)
}

// subjectCacheLimit bounds the destinations whose subjects Forward remembers; past it, the subjects
// of new destinations are computed on every publish.
const subjectCacheLimit = 4096

// subjectOf returns topicSubject(dest), remembered for the first subjectCacheLimit destinations
// whose subjects fit maxSubjectBytes.
func (c *Cluster) subjectOf(dest string) string {
	if s, ok := c.subjects.Load(dest); ok {
		return s.(string)
	}
	s := topicSubject(dest)
	if len(s) <= maxSubjectBytes && c.subjectCount.Load() < subjectCacheLimit { // send refuses longer
		if _, loaded := c.subjects.LoadOrStore(strings.Clone(dest), s); !loaded {
			c.subjectCount.Add(1)
		}
	}
	return s
}

// Messages cross NATS in batches: Forward adds a message to the newest batch if it is for the same
// subject, else starts one, and the sender goroutine publishes each batch as one NATS message, in
// order. While NATS keeps up a batch holds one message; under load, the messages to one destination
// published while the sender was busy go together, so that a node pays one NATS publish, one hand-off
// and one wake-up per batch rather than per message, and so does each receiving node.
//
// A message joins a batch only if the batch stays within maxBatchBytes with it (a message larger than
// that goes in a batch of its own), so that a large message cannot take others over NATS's payload
// limit with it; a batch whose NATS message would pass the server's max_payload (1 MiB by default;
// a STOMP frame may take 4 MiB) is not published and its messages are counted as failed.
const (
	// maxBatchBytes bounds one batch of several messages, below NATS's default 1 MiB payload limit.
	maxBatchBytes = 512 << 10
	// maxPendingBytes bounds what waits for the sender (NATS slow or away, its own buffer full);
	// past it messages are not forwarded and are counted as failed.
	maxPendingBytes = 16 << 20
)

// batch is the messages waiting to cross on one subject, encoded one after the other.
type batch struct {
	subject string
	buf     []byte
	n       int
}

// send adds m to the batch of subject and wakes the sender.
func (c *Cluster) send(subject string, m *broker.Message) {
	if len(subject) > maxSubjectBytes {
		c.stats.failedOut.Add(1) // NATS would close the connection (see maxSubjectBytes)
		return
	}
	size := encodedBound(m)
	c.outMu.Lock()
	if c.pendingBytes >= maxPendingBytes || c.outStopped {
		c.outMu.Unlock()
		c.stats.failedOut.Add(1)
		return
	}
	// Only consecutive messages to one subject share a batch, so that batches cross in the order
	// their messages were published, whatever their destinations.
	var b *batch
	if n := len(c.order); n > 0 && c.order[n-1].subject == subject && int64(len(c.order[n-1].buf)+size) <= c.batchLimit.Load() {
		b = c.order[n-1]
	} else {
		b = &batch{subject: subject, buf: c.takeBuffer()}
		c.order = append(c.order, b)
	}
	before := len(b.buf)
	b.buf = binary.AppendUvarint(b.buf, m.Offset) // a stream message's offset, 0 otherwise
	b.buf = appendMessageLen(b.buf, m)
	b.n++
	c.pendingBytes += len(b.buf) - before
	c.outMu.Unlock()
	select {
	case c.outKick <- struct{}{}:
	default:
	}
}

// setBatchLimit bounds batches by the server's max_payload (0: not known yet), leaving room for a
// batch's header.
func (c *Cluster) setBatchLimit(maxPayload int64) {
	if maxPayload > 0 {
		c.batchLimit.Store(max(min(maxBatchBytes, maxPayload-int64(len(c.origin))-32), 0))
	}
}

// encodedBound is at least the bytes send appends to a batch for m (its offset, its length and
// appendMessage's encoding), computed without encoding it.
func encodedBound(m *broker.Message) int {
	n := 8*binary.MaxVarintLen64 + len(m.ID) + len(m.Destination) + len(m.Sender.User) + len(m.Body)
	for _, h := range m.Header {
		n += 2*binary.MaxVarintLen64 + len(h.Name) + len(h.Value)
	}
	return n
}

// takeBuffer returns an empty buffer, a recycled one if there is one. The caller holds outMu.
func (c *Cluster) takeBuffer() []byte {
	if n := len(c.spare); n > 0 {
		buf := c.spare[n-1][:0]
		c.spare = c.spare[:n-1]
		return buf
	}
	return make([]byte, 0, 4096)
}

// sender publishes the pending batches, oldest first, until Close, and then once more what is
// pending then, for Close to flush.
func (c *Cluster) sender() {
	defer c.done.Done()
	var header []byte
	for {
		stopping := false
		select {
		case <-c.stop:
			stopping = true
		case <-c.outKick:
		}
		c.outMu.Lock()
		batches := c.order
		c.order = nil
		c.pendingBytes = 0
		c.outStopped = stopping
		c.outMu.Unlock()
		maxPayload := c.nc.MaxPayload() // the server's max_payload; 0 before the first connection
		for _, b := range batches {
			header = append(header[:0], backplaneWire)
			header = appendString(header, c.origin)
			header = binary.AppendUvarint(header, c.seq.Add(1))
			header = binary.AppendUvarint(header, uint64(b.n))
			if maxPayload > 0 && int64(len(header)+len(b.buf)) > maxPayload {
				// Refused by NATS whole: a message too large for the cluster (alone in its batch).
				c.stats.failedOut.Add(uint64(b.n))
				c.recycle(b)
				continue
			}
			payload := append(header, b.buf...)
			if err := c.nc.Publish(b.subject, payload); err != nil {
				c.stats.failedOut.Add(uint64(b.n))
			} else {
				c.stats.out.Add(uint64(b.n))
			}
			header = payload[:0] // nats.go copied it
			c.recycle(b)
		}
		if stopping {
			return
		}
	}
}

// recycle keeps b's buffer for a later batch, if it is not large.
func (c *Cluster) recycle(b *batch) {
	c.outMu.Lock()
	if cap(b.buf) <= 64<<10 && len(c.spare) < 64 {
		c.spare = append(c.spare, b.buf)
	}
	c.outMu.Unlock()
}

// ListenReplies receives the replies other nodes publish to this node's reply queues: those named
// with node, the broker's NodeID (broker.Broker.NewReplyQueueName). They reach the receiver as topic
// messages do.
func (c *Cluster) ListenReplies(node string) error {
	sub, err := c.nc.ChanSubscribe(replySubjectPrefix+escapeToken(node), c.in)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.replies = append(c.replies, sub)
	c.mu.Unlock()
	return nil
}

// Watch implements broker.Backplane. A destination whose subjects pass maxSubjectBytes is refused
// (an error wrapping ErrNameTooLong) and watched for nothing: its subscribers get this node's
// messages only. Unwatch is called for it all the same, and finds nothing to undo.
func (c *Cluster) Watch(dest string) error {
	subjects := watchSubjects(dest)
	for _, subject := range subjects {
		if err := checkSubject(subject); err != nil {
			return fmt.Errorf("cluster: other nodes' messages are never delivered here for it: %w", err)
		}
	}
	var firstErr error
	for _, subject := range subjects {
		if err := c.watchSubject(subject); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func (c *Cluster) watchSubject(subject string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	w := c.watched[subject]
	if w != nil {
		w.refs++
		if w.linger != nil {
			w.linger.Stop()
			w.linger = nil
		}
		c.mu.Unlock()
		<-w.ready
		if w.sub != nil && c.nc.IsConnected() {
			return nil // made while NATS was away, and sent by the client when it came back
		}
		return w.err
	}
	w = &watchedSubject{refs: 1, ready: make(chan struct{})}
	c.watched[subject] = w
	c.mu.Unlock()
	sub, err := c.nc.ChanSubscribe(subject, c.in)
	if err == nil {
		w.sub = sub
		if !c.nc.IsConnected() {
			err = errors.New("not connected to NATS: the subscription is made when the connection is")
		} else {
			err = c.nc.FlushTimeout(watchTimeout)
		}
	}
	if sub == nil {
		// Could not even be registered with the client: forget it, so the next Watch tries again;
		// unless an Unwatch and a new Watch replaced it meanwhile.
		c.mu.Lock()
		if c.watched[subject] == w {
			delete(c.watched, subject)
		}
		c.mu.Unlock()
	}
	w.err = err
	close(w.ready)
	return err
}

// Unwatch implements broker.Backplane.
func (c *Cluster) Unwatch(dest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, subject := range watchSubjects(dest) {
		w := c.watched[subject]
		if w == nil {
			continue
		}
		if w.refs--; w.refs > 0 || c.closed {
			continue
		}
		w.linger = time.AfterFunc(unwatchLinger, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if w.refs == 0 && c.watched[subject] == w && !c.closed {
				if w.sub != nil {
					c.forgetDroppedLocked(w.sub) // while it is still in watched
					_ = w.sub.Unsubscribe()
				}
				delete(c.watched, subject)
			}
		})
	}
}

// seenIdle is how long an origin's repeat window is kept after its last batch: repeats from
// overlapping subscriptions arrive next to the original, and an origin that sends nothing for this
// long has likely gone (a restarted node is a new origin). Windows are pruned every seenIdle, between
// batches, so one lives between seenIdle and twice that after its last batch.
const seenIdle = time.Minute

// admit moves the batches NATS hands over (in) to the receiving goroutine (inbound), in order,
// until Close. A batch past inboundBuffer batches or inboundBytes bytes waiting is dropped and
// counted in ClusterStats.Dropped: batches are lost, never reordered. It neither blocks nor
// decodes, so that in stays nearly empty however slowly receive delivers.
func (c *Cluster) admit() {
	defer c.done.Done()
	for {
		var msg *nats.Msg
		select {
		case <-c.stop:
			return
		case msg = <-c.in:
		}
		size := int64(len(msg.Data))
		if held := c.inboundHeld.Load(); held > 0 && held+size > inboundBytes {
			c.stats.dropped.Add(1)
			continue
		}
		c.inboundHeld.Add(size) // before receive can take it off
		select {
		case c.inbound <- msg:
		default:
			c.inboundHeld.Add(-size)
			c.stats.dropped.Add(1)
		}
	}
}

// receive delivers the messages of other nodes, one at a time in the order NATS hands them over, so
// that each publisher's order holds; it drops this node's own and repeats.
func (c *Cluster) receive() {
	defer c.done.Done()
	r := receiving{seen: make(map[string]*seenWindow)}
	prune := time.NewTicker(seenIdle)
	defer prune.Stop()
	for {
		var msg *nats.Msg
		select {
		case <-c.stop:
			return
		case <-prune.C:
			forgetIdle(r.seen, r.round)
			r.round++
			continue
		case msg = <-c.inbound:
		}
		c.receiveBatch(&r, msg.Data)
		c.inboundHeld.Add(-int64(len(msg.Data)))
	}
}

// receiving is the receive loop's state: each origin's repeat window, the pruning rounds so far (a
// window records the round of its last batch), and the messages received, for latency sampling.
type receiving struct {
	seen     map[string]*seenWindow
	round    uint64
	received uint64
}

// receiveBatch delivers the messages of the batch p, unless it is this node's own or a repeat. The
// messages of a batch of several get bodies of their own, so that none keeps the whole payload
// alive (up to maxBatchBytes, which the broker's memory accounting would not see) while it is
// retained or held; a batch of one keeps its payload, which is that message's size.
func (c *Cluster) receiveBatch(r *receiving, p []byte) {
	if len(p) == 0 || p[0] != backplaneWire {
		return
	}
	d := decoder{p: p[1:]}
	origin := d.bytes() // compared and looked up without making a string of it
	seq := d.uvarint()
	if d.err != nil || string(origin) == c.origin {
		return
	}
	w := r.seen[string(origin)]
	if w == nil {
		w = &seenWindow{}
		r.seen[string(origin)] = w
	}
	w.round = r.round
	count := d.uvarint()
	if !w.first(seq) {
		c.stats.duplicates.Add(count)
		return
	}
	deliver := c.receiver.Load()
	for range count {
		offset := d.uvarint()
		encoded := d.bytes()
		if d.err != nil {
			break
		}
		m, err := decodeMessage(encoded)
		if err != nil {
			continue
		}
		if count > 1 && len(m.Body) > 0 {
			// The body is the only part of m decodeMessage leaves in p (its strings are copies).
			body := make([]byte, len(m.Body)) // with the copy, one allocation and no clearing
			copy(body, m.Body)
			m.Body = body
		}
		m.Offset = offset
		r.received++
		if f := c.cfg.ObserveLatency; f != nil && r.received%latencySampling == 0 {
			f(time.Since(m.Published))
		}
		if deliver != nil {
			if err := (*deliver)(m); err == nil {
				c.stats.in.Add(1)
			}
		}
	}
}

// forgetIdle drops the repeat windows that had no batch since the pruning round before round: idle
// for a whole round, seenIdle, or more. Whether the origin still beats does not matter: a node's
// batches can arrive before its first heart-beat, or after it was last heard from.
func forgetIdle(seen map[string]*seenWindow, round uint64) {
	for origin, w := range seen {
		if w.round < round {
			delete(seen, origin)
		}
	}
}

// seenWindow remembers which of the last 4,096 sequence numbers of one origin have arrived.
type seenWindow struct {
	top   uint64
	bits  [64]uint64
	round uint64 // the receive loop's pruning round of the origin's last batch
}

// first reports whether seq arrives for the first time, and records it. A number more than 4,096
// below the highest seen is taken as new: repeats arrive next to each other.
func (w *seenWindow) first(seq uint64) bool {
	const size = uint64(len(w.bits) * 64)
	switch {
	case seq > w.top:
		for s := w.top + 1; s < seq && s-w.top <= size; s++ {
			w.clear(s)
		}
		w.top = seq
		w.set(seq)
		return true
	case w.top-seq >= size:
		return true
	case w.has(seq):
		return false
	}
	w.set(seq)
	return true
}

func (w *seenWindow) set(s uint64)      { w.bits[(s/64)%64] |= 1 << (s % 64) }
func (w *seenWindow) clear(s uint64)    { w.bits[(s/64)%64] &^= 1 << (s % 64) }
func (w *seenWindow) has(s uint64) bool { return w.bits[(s/64)%64]&(1<<(s%64)) != 0 }

// heartbeat announces the node, with its shared state, every nodeHeartbeat (and at once when a node
// joins or the state changes), and forgets nodes silent past nodeTimeout.
func (c *Cluster) heartbeat() {
	defer c.done.Done()
	started := time.Now()
	tick := time.NewTicker(nodeHeartbeat)
	defer tick.Stop()
	for {
		c.mu.Lock()
		figures := c.figures
		c.mu.Unlock()
		var measured json.RawMessage
		if figures != nil {
			measured = figures() // outside c.mu: it reads the broker and the server
		}
		c.mu.Lock()
		beat, _ := json.Marshal(heartbeatMessage{Origin: c.origin, Name: c.cfg.NodeName, Started: started, State: c.state, Figures: measured})
		var gone []NodeState
		for origin, n := range c.nodes {
			if time.Since(n.seen) > nodeTimeout {
				delete(c.nodes, origin)
				gone = append(gone, n.public(origin))
			}
		}
		callbacks := c.onGone
		c.mu.Unlock()
		_ = c.nc.Publish(nodeSubject, beat)
		for _, n := range gone {
			c.log.Info("cluster: a node is gone", "node", n.Name)
			for _, f := range callbacks {
				f(n)
			}
		}
		select {
		case <-c.stop:
			return
		case <-tick.C:
		case <-c.beatNow:
		}
	}
}

// heardNode records another node's heart-beat.
func (c *Cluster) heardNode(msg *nats.Msg) {
	var beat heartbeatMessage
	if json.Unmarshal(msg.Data, &beat) != nil || beat.Origin == "" || beat.Origin == c.origin {
		return
	}
	c.mu.Lock()
	prev, known := c.nodes[beat.Origin]
	c.nodes[beat.Origin] = nodeSeen{Name: beat.Name, Started: beat.Started, State: beat.State, Figures: beat.Figures, seen: time.Now()}
	changed := !known || !sameState(prev.State, beat.State) // figures change at every beat: not a state change
	callbacks := c.onState
	c.mu.Unlock()
	if !known {
		c.log.Info("cluster: a node joined", "node", beat.Name)
		c.beatSoon() // so that it hears of this node now
	}
	if changed {
		for _, f := range callbacks {
			f()
		}
	}
}

func sameState(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

// beatSoon makes the heart-beat goroutine announce this node now rather than at its next tick.
func (c *Cluster) beatSoon() {
	select {
	case c.beatNow <- struct{}{}:
	default:
	}
}

// SetState sets what this node shares under key (JSON), sent with its heart-beats from now on, the
// first at once; nil removes it.
func (c *Cluster) SetState(key string, value json.RawMessage) {
	c.mu.Lock()
	if value == nil {
		delete(c.state, key)
	} else {
		c.state[key] = value
	}
	c.mu.Unlock()
	c.beatSoon()
}

// SetFigures sets how this node measures what it tells the cluster at each heart-beat (JSON, for
// operators: connections, rates and the like); f runs on the heart-beat goroutine, every
// nodeHeartbeat, and must not block. Unlike SetState, figures that change fire no OnStateChange.
func (c *Cluster) SetFigures(f func() json.RawMessage) {
	c.mu.Lock()
	c.figures = f
	c.mu.Unlock()
	c.beatSoon()
}

// Peers returns what the other live nodes share.
func (c *Cluster) Peers() []NodeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NodeState, 0, len(c.nodes))
	for origin, n := range c.nodes {
		if time.Since(n.seen) <= nodeTimeout {
			out = append(out, n.public(origin))
		}
	}
	return out
}

// OnNodeGone calls f, on the heart-beat goroutine, with the last state of each node that stops
// beating; OnStateChange calls f, on a NATS goroutine, when a node appears or its state changes. f
// must not block.
func (c *Cluster) OnNodeGone(f func(NodeState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onGone = append(c.onGone, f)
}

// OnStateChange: see OnNodeGone.
func (c *Cluster) OnStateChange(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onState = append(c.onState, f)
}

// Nodes returns the names of the nodes heard from within the heart-beat timeout, this one included.
func (c *Cluster) Nodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := []string{c.cfg.NodeName}
	for origin, n := range c.nodes {
		if origin != c.origin && time.Since(n.seen) <= nodeTimeout {
			names = append(names, n.Name)
		}
	}
	return names
}

// Stats returns the node's link figures.
func (c *Cluster) Stats() ClusterStats {
	st := ClusterStats{
		Connected:   c.nc.IsConnected(),
		MessagesIn:  c.stats.in.Load(),
		MessagesOut: c.stats.out.Load(),
		FailedOut:   c.stats.failedOut.Load(),
		Duplicates:  c.stats.duplicates.Load(),
		Reconnects:  c.stats.reconnects.Load(),
		Nodes:       len(c.Nodes()),
	}
	c.mu.Lock()
	st.Subjects = len(c.watched)
	// nats.go counts its drops per subscription, and reports only the first of a run.
	for _, w := range c.watched {
		if w.made() && w.sub != nil {
			c.noteDroppedLocked(w.sub)
		}
	}
	for _, sub := range c.replies {
		c.noteDroppedLocked(sub)
	}
	c.mu.Unlock()
	st.Dropped = c.stats.dropped.Load()
	return st
}

// Close leaves the cluster: subscriptions end, pending publishes are flushed (within a second), the
// connection closes and the node's goroutines end. Safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, w := range c.watched {
		if w.linger != nil {
			w.linger.Stop()
		}
	}
	c.mu.Unlock()
	close(c.stop)
	c.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.nc.FlushWithContext(ctx)
	c.nc.Close()
	return nil
}

// redactURLs writes urls without their passwords, for errors and logs.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndexByte(u, '@'); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				u = u[:scheme+3] + "***" + u[at:]
			}
		}
		out[i] = u
	}
	return strings.Join(out, ",")
}

var _ broker.Backplane = (*Cluster)(nil)
