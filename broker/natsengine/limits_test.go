package natsengine

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stompd/stompd/broker"
)

// longName is a destination name whose NATS subject, escaped, takes 4,800 bytes: past a NATS
// server's max_control_line (4 KiB), which closes a connection that sends a longer protocol line.
var longName = strings.Repeat("é", 800)

// A long topic name is neither forwarded nor watched: the node's NATS connection stays up, and
// other topics keep crossing.
func TestClusterLongTopicKeepsConnection(t *testing.T) {
	url := startNATS(t)
	a, b := joinNode(t, url, "a"), joinNode(t, url, "b")
	waitUntil(t, "connected", func() bool { return a.c.Connected() && b.c.Connected() })
	ok := &consumer{}
	if _, err := b.b.Subscribe("/topic/ok", ok, broker.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	// A subscription to a long topic works on its node; the cluster refuses to watch it.
	local := &consumer{}
	if _, err := b.b.Subscribe("/topic/"+longName, local, broker.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.c.Watch("/topic/x." + longName + ".#"); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("Watch of a long pattern: %v, want ErrNameTooLong", err)
	}
	b.c.Unwatch("/topic/x." + longName + ".#")
	publishOne(t, b.b, "/topic/"+longName, "here")
	local.wait(t, 1)

	publishOne(t, a.b, "/topic/"+longName, "lost")
	a.c.ForwardReply(longName, &broker.Message{ID: "r", Destination: "/reply-queue/" + longName + "-x", Body: []byte("r")})
	publishOne(t, a.b, "/topic/ok", "after")
	if got := ok.wait(t, 1); string(got[0].Message.Body) != "after" {
		t.Errorf("got %q", got[0].Message.Body)
	}
	if st := a.c.Stats(); st.FailedOut != 2 || !st.Connected {
		t.Errorf("publishing node: %+v, want 2 failed and connected", st)
	}
	if st := b.c.Stats(); !st.Connected || st.Subjects != 1 {
		t.Errorf("subscribing node: %+v, want connected with one subject", st)
	}
	if err := a.c.ConnectionClosed(); err != nil {
		t.Errorf("ConnectionClosed: %v", err)
	}
}

// A connection NATS closes for good is reported, rather than waited for as a reconnect.
func TestClusterConnectionClosedForGood(t *testing.T) {
	url := startNATS(t)
	c := joinCluster(t, url, "a")
	waitUntil(t, "connected", c.Connected)
	if err := c.ConnectionClosed(); err != nil {
		t.Fatalf("ConnectionClosed while connected: %v", err)
	}
	_ = c.nc.Publish(strings.Repeat("x", 5000), nil) // the server closes the connection
	waitUntil(t, "the closed connection reported", func() bool { return c.ConnectionClosed() != nil })
	if c.Connected() {
		t.Error("still connected")
	}
}

// A queue, stream or retained message with a long name is refused by the store, whose connection
// stays up; the broker's error names the reason.
func TestStoreRefusesLongNames(t *testing.T) {
	e := start(t, t.TempDir())
	b := broker.New(broker.Options{Store: e})
	err := b.Publish(&broker.Message{Destination: "/queue/" + longName, Body: []byte("x")})
	// An invalid destination (the client's ERROR says so, and no retry helps), through the store.
	if !errors.Is(err, broker.ErrInvalidDestination) || !errors.Is(err, ErrNameTooLong) {
		t.Fatalf("publish to a long queue: %v", err)
	}
	if strings.Contains(err.Error(), longName[:20]) || !strings.Contains(err.Error(), "too long") {
		t.Errorf("error %q: want the reason, not the name", err)
	}
	if _, err := b.Subscribe("/queue/"+longName, &consumer{}, broker.SubscribeOptions{}); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("subscribe to a long queue: %v", err)
	}
	if _, err := e.OpenStream("/topic/"+longName, broker.StreamLimits{}); !errors.Is(err, ErrNameTooLong) {
		t.Errorf("open a long stream: %v", err)
	}
	e.KeepRetained(&broker.Message{ID: "1", Destination: "/topic/" + longName, Body: []byte("x")})
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	if e.nc.IsClosed() {
		t.Fatalf("the store's connection closed: %v", e.nc.LastError())
	}
	c := &consumer{}
	if _, err := b.Subscribe("/queue/ok", c, broker.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "/queue/ok", "fine")
	c.wait(t, 1)
}

// newSender is a Cluster with only what send and sender need, on nc; the sender is not started.
// countForwarded subscribes on url to every topic subject and counts the messages the batches
// published there hold, until the test ends.
func countForwarded(t *testing.T, url string) *atomic.Int64 {
	t.Helper()
	recv, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recv.Close)
	var got atomic.Int64
	if _, err := recv.Subscribe("t.>", func(m *nats.Msg) {
		d := decoder{p: m.Data[1:]}
		d.bytes()   // origin
		d.uvarint() // sequence
		got.Add(int64(d.uvarint()))
	}); err != nil {
		t.Fatal(err)
	}
	if err := recv.Flush(); err != nil {
		t.Fatal(err)
	}
	return &got
}

func newSender(nc *nats.Conn) *Cluster {
	c := &Cluster{nc: nc, origin: "x/1", outKick: make(chan struct{}, 1), stop: make(chan struct{})}
	c.setBatchLimit(nc.MaxPayload())
	return c
}

// A large message does not take the messages of its batch past NATS's payload limit with it: it
// goes in a batch of its own, and one too large for NATS is the only one counted as failed.
func TestClusterBatchWithinPayloadLimit(t *testing.T) {
	url := startNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := countForwarded(t, url)
	c := newSender(nc)
	msg := func(id string, size int) *broker.Message {
		return &broker.Message{ID: id, Destination: "/topic/d", Body: make([]byte, size)}
	}
	c.send("t.d", msg("1", 400<<10)) // queued while the sender is not running
	c.send("t.d", msg("2", 700<<10)) // with the first, past the server's 1 MiB
	c.send("t.d", msg("3", 1<<20))   // alone past it
	c.send("t.d", msg("4", 10))
	for _, b := range c.order {
		if len(b.buf) > maxBatchBytes && b.n > 1 {
			t.Errorf("a batch of %d messages takes %d bytes", b.n, len(b.buf))
		}
	}
	c.done.Add(1)
	go c.sender()
	close(c.stop)
	c.done.Wait()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three messages", func() bool { return got.Load() == 3 })
	if out, failed := c.stats.out.Load(), c.stats.failedOut.Load(); out != 3 || failed != 1 {
		t.Errorf("out %d, failed %d; want 3 and 1", out, failed)
	}
}

// Close publishes what waits for the sender before it closes the connection.
func TestClusterCloseFlushesPending(t *testing.T) {
	url := startNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	got := countForwarded(t, url)
	c := newSender(nc)
	const sent = 2000
	for i := range sent {
		c.Forward(&broker.Message{ID: strconv.Itoa(i), Destination: "/topic/d" + strconv.Itoa(i%7), Published: time.Now(), Body: make([]byte, 100)})
	}
	<-c.outKick // the messages wait for the sender when Close comes
	c.done.Add(1)
	go c.sender()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if out, failed := c.stats.out.Load(), c.stats.failedOut.Load(); out != sent || failed != 0 {
		t.Errorf("out %d, failed %d; want %d and 0", out, failed, sent)
	}
	c.Forward(&broker.Message{ID: "late", Destination: "/topic/d"})
	if failed := c.stats.failedOut.Load(); failed != 1 {
		t.Errorf("a message forwarded after Close: %d failed, want 1", failed)
	}
	waitUntil(t, "every message received", func() bool { return got.Load() == sent })
}

// remoteBatch is a batch of one message as another node sends it.
func remoteBatch(origin string, seq uint64, id string) *nats.Msg {
	p := []byte{backplaneWire}
	p = appendString(p, origin)
	p = binary.AppendUvarint(p, seq)
	p = binary.AppendUvarint(p, 1)
	p = binary.AppendUvarint(p, 0)
	p = appendMessageLen(p, &broker.Message{ID: id, Destination: "/topic/a.b", Published: time.Now()})
	return &nats.Msg{Data: p}
}

// Repeats of an origin not heard from (its batches came before its first heart-beat) are dropped
// however many batches it sends.
func TestClusterRepeatsOfUnknownOrigin(t *testing.T) {
	url := startNATS(t)
	c := joinCluster(t, url, "b")
	var mu sync.Mutex
	seen := map[string]int{}
	var total atomic.Int64
	c.SetReceiver(func(m *broker.Message) error {
		mu.Lock()
		seen[m.ID]++
		mu.Unlock()
		total.Add(1)
		return nil
	})
	const batches = 4200
	for i := uint64(1); i <= batches; i++ {
		id := strconv.FormatUint(i, 10)
		c.in <- remoteBatch("other/abcd", i, id)
		c.in <- remoteBatch("other/abcd", i, id) // the copy of an overlapping subscription
	}
	waitUntil(t, "every batch handled", func() bool { return total.Load()+int64(c.stats.duplicates.Load()) >= 2*batches })
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		if n > 1 {
			t.Errorf("message %s delivered %d times", id, n)
		}
	}
	if len(seen) != batches {
		t.Errorf("%d messages delivered, want %d", len(seen), batches)
	}
}

func TestForgetIdle(t *testing.T) {
	// At the end of round 2, a window last fed in round 1 has been idle for all of round 2.
	seen := map[string]*seenWindow{"idle": {round: 1}, "now": {round: 2}}
	forgetIdle(seen, 2)
	if _, ok := seen["now"]; !ok || len(seen) != 1 {
		t.Errorf("after pruning round 2: %v", seen)
	}
}

// flakyJS hands out key-value buckets whose next Update fails, unanswered, when failUpdate is set.
type flakyJS struct {
	jetstream.JetStream
	failUpdate *atomic.Bool
}

func (f flakyJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := f.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return flakyKV{kv, f.failUpdate}, nil
}

type flakyKV struct {
	jetstream.KeyValue
	failUpdate *atomic.Bool
}

func (f flakyKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	if f.failUpdate.CompareAndSwap(true, false) {
		return 0, context.DeadlineExceeded
	}
	return f.KeyValue.Update(ctx, key, value, revision)
}

// One renewal unanswered does not lose the lease: the next names the revision the server holds.
func TestLeaseSurvivesOneFailedRenewal(t *testing.T) {
	e := start(t, t.TempDir())
	var fail atomic.Bool
	e.js = flakyJS{e.js, &fail}
	led, lost := make(chan struct{}, 1), make(chan struct{}, 1)
	stop := e.Lead("job", "a", func() { led <- struct{}{} }, func() { lost <- struct{}{} })
	defer stop()
	select {
	case <-led:
	case <-time.After(10 * time.Second):
		t.Fatal("not leading")
	}
	fail.Store(true)
	select {
	case <-lost:
		t.Fatal("the lease was lost after one failed renewal")
	case <-time.After(2*leaseRenew + leaseRenew/2):
	}
	if fail.Load() {
		t.Error("no renewal was attempted")
	}
}

// blockingFeed blocks its first Stored until release is closed.
type blockingFeed struct {
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func (f *blockingFeed) Stored([]broker.StoredMessage) {
	if f.calls.Add(1) == 1 {
		close(f.entered)
		<-f.release
	}
}

// Closing a cluster's store hands back every message its queues hold, those a fetch under way fed
// while it closed included.
func TestClusterStoreCloseReleasesLateFetches(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	c := joinCluster(t, s.ClientURL(), "a")
	waitUntil(t, "connected", c.Connected)
	e, err := c.OpenStore(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	feed := &blockingFeed{entered: make(chan struct{}), release: make(chan struct{})}
	sq, err := e.OpenQueue("/queue/close", feed)
	if err != nil {
		t.Fatal(err)
	}
	q := sq.(*queue)
	if err := sq.Append(&broker.Message{ID: "1", Destination: "/queue/close"}); err != nil {
		t.Fatal(err)
	}
	sq.Want(2)
	<-feed.entered // the fetcher feeds the first message and waits
	if err := sq.Append(&broker.Message{ID: "2", Destination: "/queue/close"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the second reaches the fetch under way
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	time.Sleep(300 * time.Millisecond) // Close waits for the fetcher
	close(feed.release)
	<-closed
	q.mu.Lock()
	held := len(q.outstanding)
	q.mu.Unlock()
	if held != 0 || feed.calls.Load() != 2 {
		t.Errorf("after Close, %d messages held and not handed back (%d feeds)", held, feed.calls.Load())
	}
}
