package natsengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stompd/stompd/broker"
)

// DefaultSyncInterval is how often, without Config.SyncAlways, written messages are flushed to the
// disk (fsync): a power loss may lose what was stored within the last interval; a process crash loses
// nothing, since every write has reached the operating system before it is acknowledged.
const DefaultSyncInterval = time.Second

// startTimeout bounds how long Start waits for the embedded server.
const startTimeout = 30 * time.Second

// apiTimeout bounds one JetStream request (publish, consumer management).
const apiTimeout = 10 * time.Second

// lockName is the lock file in the data directory; it holds the owner's process id.
const lockName = "stompd.lock"

var errLocked = errors.New("locked")

// ErrDirInUse is returned by Start when another process owns the data directory.
var ErrDirInUse = errors.New("data directory in use by another stompd")

// Config configures Start.
type Config struct {
	// Dir is the data directory; created (mode 0700) if missing. Required.
	Dir string
	// SyncAlways flushes every write to the disk before it is acknowledged, so that a power loss loses
	// nothing acknowledged; otherwise writes are flushed every SyncInterval.
	SyncAlways bool
	// SyncInterval is DefaultSyncInterval when zero.
	SyncInterval time.Duration
	// MaxStoreBytes bounds the disk the stored queues take; a publish past it is refused. 0: no bound
	// but the disk.
	MaxStoreBytes int64
	// Logger receives the embedded server's warnings and errors (its notices at debug level). Default:
	// discard.
	Logger *slog.Logger
	// RetainedPerDestination is the most retained messages any topic destination keeps (the largest
	// history of the policies; 1 for last values); the store keeps as many per destination. 0 means 1.
	RetainedPerDestination int
	// ObserveWrite, when set, is called after each message stored, or failed to store, with how long
	// it took. ObserveFailure, when set, is called for each failed acknowledgement ("ack") or fetch
	// ("fetch"). Both are called from the goroutines doing the work and must not block.
	ObserveWrite   func(d time.Duration, err error)
	ObserveFailure func(op string)
	// Replicas is how many servers of a NATS cluster keep each stream (OpenStore); 1 for the
	// embedded server. 0 means 1.
	Replicas int
	// AckWait, in a cluster, is how long a crashed node's unacknowledged queue messages wait before
	// the server hands them to other nodes. 0 means DefaultClusterAckWait.
	AckWait time.Duration
}

// Engine is an embedded NATS server with JetStream on a data directory, and the broker.Store on it.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	lock     *os.File
	srv      *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	fetched  jetstream.KeyValue // queue consumer name → highest stream sequence fetched (see queue.markFetched)
	durables jetstream.KeyValue // the durable topic subscriptions (see durable.go)
	started  time.Duration      // how long Start took

	stop    context.Context // ended by Close: pending fetches return
	cancel  context.CancelFunc
	failure atomic.Pointer[storeFailure] // the last failed operation; see Health

	confirmations chan pendingAppend // AppendNoWait's publishes, in order, for confirmLoop
	confirming    sync.WaitGroup
	sends         sync.RWMutex // held to read by AppendNoWait while it queues, to write by Close
	sendsClosed   bool         // guarded by sends
	mu            sync.Mutex
	closed        bool
	shared        bool              // on a Cluster's connection (OpenStore): Close leaves the connection open
	recovered     map[string]uint64 // queue consumer name → last stream sequence it had delivered, from the previous process
	fetchers      sync.WaitGroup
	queues        []*queue // opened; guarded by mu
}

// Start takes the data directory, starts the embedded server on it, and readies the stream that keeps
// queues. Errors name the directory and say what is wrong: another stompd owns it (ErrDirInUse), it
// cannot be created or written, or what it holds cannot be read.
func Start(cfg Config) (*Engine, error) {
	begin := time.Now()
	if cfg.Dir == "" {
		return nil, errors.New("natsengine: no data directory")
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	e := &Engine{cfg: cfg, log: cfg.Logger}
	e.stop, e.cancel = context.WithCancel(context.Background())
	if err := e.takeDir(); err != nil {
		return nil, err
	}
	if err := e.startServer(); err != nil {
		e.releaseDir()
		return nil, err
	}
	e.startConfirming()
	if err := e.prepareQueues(); err != nil {
		e.Close()
		return nil, err
	}
	e.started = time.Since(begin)
	return e, nil
}

// takeDir creates the directory if needed and locks it for this process.
func (e *Engine) takeDir() error {
	dir := e.cfg.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s cannot be created: %w", dir, unwrapPath(err))
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, unwrapPath(err))
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			owner := "another process"
			if b, err := os.ReadFile(filepath.Join(dir, lockName)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					owner = "process " + strconv.Itoa(pid)
				}
			}
			return fmt.Errorf("%w: %s is held by %s", ErrDirInUse, dir, owner)
		}
		return fmt.Errorf("data directory %s cannot be locked: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			f.Close()
			return fmt.Errorf("data directory %s is not writable: %w", dir, unwrapPath(err))
		}
	}
	// A directory whose files cannot be written fails here rather than in the server's first write.
	probe := filepath.Join(dir, ".write-test")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		f.Close()
		return fmt.Errorf("data directory %s is not writable: %w", dir, unwrapPath(err))
	}
	_ = os.Remove(probe)
	e.lock = f
	return nil
}

func (e *Engine) releaseDir() {
	if e.lock != nil {
		_ = e.lock.Close() // the lock goes with the descriptor
		e.lock = nil
	}
}

// unwrapPath drops the path from an *os.PathError, which the caller's message already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// startServer starts the embedded server (no listener, JetStream on the directory) and connects to it
// in process.
func (e *Engine) startServer() error {
	opts := &server.Options{
		ServerName:   "stompd",
		DontListen:   true,
		JetStream:    true,
		StoreDir:     e.cfg.Dir, // the server keeps its files under DIR/jetstream
		NoSigs:       true,
		SyncAlways:   e.cfg.SyncAlways,
		SyncInterval: e.cfg.SyncInterval,
	}
	// -max-store-bytes bounds the queue stream (prepareQueues), not the server: the fetch marks must
	// still be written when the queues are full.
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("data directory %s: embedded NATS server: %w", e.cfg.Dir, err)
	}
	srv.SetLoggerV2(&serverLog{log: e.log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		return fmt.Errorf("data directory %s: the embedded NATS server did not start within %s", e.cfg.Dir, startTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return fmt.Errorf("data directory %s: JetStream could not start on it (the log says why)", e.cfg.Dir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("stompd"), nats.NoReconnect())
	if err != nil {
		srv.Shutdown()
		return fmt.Errorf("data directory %s: connecting to the embedded NATS server: %w", e.cfg.Dir, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPendingAppends),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if strings.HasPrefix(m.Subject, retainedSubjectPrefix) {
				e.retainedPublishFailed(err)
			}
		}))
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return err
	}
	e.srv, e.nc, e.js = srv, nc, guardedJS{js}
	return nil
}

// prepareQueues creates the queue stream if needed and replaces the consumers the previous process
// left (see the package doc), remembering how far each had delivered.
//
// On an Engine of OpenStore, only the stream: see below.
func (e *Engine) prepareQueues() error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:        queueStream,
		Description: "stompd /queue/ destinations",
		Subjects:    []string{queueSubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    -1,
		Replicas:    1,
		// A COMMIT's SENDs are stored as one batch (Engine.AppendAll).
		AllowAtomicPublish: true,
	}
	if e.cfg.MaxStoreBytes > 0 {
		cfg.MaxBytes = e.cfg.MaxStoreBytes
	}
	if err := e.prepareRetained(ctx); err != nil {
		return err
	}
	if e.shared {
		// A cluster's consumers are shared by its nodes, which all stay up while one restarts: they
		// are kept, and redelivery is the server's (NumDelivered), with no marks of this node's own.
		cfg.Replicas = max(e.cfg.Replicas, 1)
		if err := e.ensureStream(ctx, cfg); err != nil {
			return fmt.Errorf("the cluster's queue stream cannot be opened: %w", err)
		}
		return e.prepareDurables(ctx)
	}
	if err := e.prepareDurables(ctx); err != nil {
		return err
	}
	for _, name := range []string{queueStream, "KV_" + fetchedBucket} {
		if err := e.checkReadable(ctx, name); err != nil {
			return err
		}
	}
	stream, err := e.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("data directory %s: the queue stream cannot be opened: %w", e.cfg.Dir, err)
	}
	e.fetched, err = e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      fetchedBucket,
		Description: "stompd: per queue, the highest stream sequence fetched for its consumers",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("data directory %s: the delivery marks cannot be opened: %w", e.cfg.Dir, err)
	}
	e.recovered = make(map[string]uint64)
	if err := e.readFetchedMarks(ctx); err != nil {
		return fmt.Errorf("data directory %s: reading delivery marks: %w", e.cfg.Dir, err)
	}
	lister := stream.ListConsumers(ctx)
	var names []string
	for info := range lister.Info() {
		e.recovered[info.Name] = max(e.recovered[info.Name], info.Delivered.Stream)
		names = append(names, info.Name)
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("data directory %s: listing queue consumers: %w", e.cfg.Dir, err)
	}
	for _, name := range names {
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("data directory %s: resetting queue consumer %s: %w", e.cfg.Dir, name, err)
		}
	}
	return nil
}

// Sync implements broker.Store: it waits until the server has answered every publish made without
// waiting, and has received every acknowledgement sent, at most apiTimeout.
func (e *Engine) Sync() error {
	if e.isClosed() {
		return errClosed
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(apiTimeout):
		return fmt.Errorf("store: publishes still unconfirmed after %s", apiTimeout)
	}
	return e.nc.FlushTimeout(apiTimeout)
}

// Usage is what the store holds, by kind.
type Usage struct {
	Queues   KindUsage // queue messages, delivered or not
	Streams  KindUsage // messages of stream destinations
	Retained KindUsage // retained topic messages
}

// KindUsage counts stored messages and the bytes they take in the store.
type KindUsage struct {
	Messages, Bytes uint64
}

// Usage reports what the store holds. It asks the embedded server: call it at scrape rate.
func (e *Engine) Usage() (Usage, error) {
	var u Usage
	if e.isClosed() {
		return u, errClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	names := e.js.ListStreams(ctx)
	for info := range names.Info() {
		k := KindUsage{Messages: info.State.Msgs, Bytes: info.State.Bytes}
		switch {
		case info.Config.Name == queueStream:
			u.Queues = k
		case info.Config.Name == retainedStream:
			u.Retained = k
		case strings.HasPrefix(info.Config.Name, streamNamePrefix):
			u.Streams.Messages += k.Messages
			u.Streams.Bytes += k.Bytes
		}
	}
	return u, names.Err()
}

// observeFailure records a failed operation for Health and reports it to Config.ObserveFailure.
func (e *Engine) observeFailure(op string, err error) {
	e.failure.Store(&storeFailure{at: time.Now(), op: op, err: err})
	if e.cfg.ObserveFailure != nil {
		e.cfg.ObserveFailure(op)
	}
}

// storeFailure is a failed store operation, for Health.
type storeFailure struct {
	at  time.Time
	op  string
	err error
}

// healthWindow is how long a failed operation keeps Health reporting it.
const healthWindow = time.Minute

// Health says what is wrong with the store, or "" when nothing is: its NATS connection is closed
// for good, an operation failed within the last minute, or the stored messages take 95% or more of Config.MaxStoreBytes.
func (e *Engine) Health() string {
	if e.isClosed() {
		return "store closed"
	}
	if e.nc.IsClosed() {
		// nats.go gave up on the connection (a server error): nothing reaches the store any more.
		return fmt.Sprintf("store: the NATS connection is closed for good (%v); restart stompd", e.nc.LastError())
	}
	if f := e.failure.Load(); f != nil && time.Since(f.at) < healthWindow {
		return fmt.Sprintf("store: %s failed %s ago: %v", f.op, time.Since(f.at).Round(time.Second), f.err)
	}
	if limit := e.cfg.MaxStoreBytes; limit > 0 {
		if u, err := e.Usage(); err == nil && u.Queues.Bytes >= uint64(limit)/100*95 {
			return fmt.Sprintf("store: %d of %d bytes used (max-store-bytes)", u.Queues.Bytes, limit)
		}
	}
	return ""
}

// checkReadable refuses a directory that holds files of stream name which the server could not load
// (it logs why and carries on without the stream): creating the stream afresh would lose what they
// hold.
func (e *Engine) checkReadable(ctx context.Context, name string) error {
	if e.srv == nil {
		return nil // a cluster's servers load their own files
	}
	dir := filepath.Join(e.cfg.Dir, "jetstream", "$G", "streams", name)
	if _, err := os.Stat(dir); err != nil {
		return nil // never created: nothing to lose
	}
	if _, err := e.js.Stream(ctx, name); errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("data directory %s: the store cannot read %s (the log above says why); refusing to start rather than replace it", e.cfg.Dir, dir)
	} else if err != nil {
		return fmt.Errorf("data directory %s: %w", e.cfg.Dir, err)
	}
	return nil
}

// maxPendingAppends bounds the publishes of AppendNoWait awaiting the server's answer; past it,
// AppendNoWait waits for room.
const maxPendingAppends = 8192

// pendingAppend is one AppendNoWait publish awaiting its answer.
type pendingAppend struct {
	future jetstream.PubAckFuture
	q      *queue // nil for a stream's append
	size   int64
	begin  time.Time
	done   func(error)
}

// startConfirming starts confirmLoop, which Close stops.
func (e *Engine) startConfirming() {
	e.confirmations = make(chan pendingAppend, maxPendingAppends)
	e.confirming.Add(1)
	go e.confirmLoop()
}

// confirmLoop answers AppendNoWait's publishes as the server confirms them, in order; it ends when Close
// closes the channel.
func (e *Engine) confirmLoop() {
	defer e.confirming.Done()
	for p := range e.confirmations {
		var err error
		select {
		case <-p.future.Ok():
		case err = <-p.future.Err():
		}
		if e.cfg.ObserveWrite != nil {
			e.cfg.ObserveWrite(time.Since(p.begin), err)
		}
		if err != nil {
			e.failure.Store(&storeFailure{at: time.Now(), op: "append", err: err})
			p.done(storeError(err))
			continue
		}
		if p.q != nil {
			p.q.mu.Lock()
			p.q.count++
			p.q.bytes += p.size
			p.q.mu.Unlock()
		}
		p.done(nil)
	}
}

// fetchedBucket is the key-value bucket of the fetch marks.
const fetchedBucket = "STOMPD_FETCHED"

// readFetchedMarks loads the fetch marks the previous process wrote into e.recovered.
func (e *Engine) readFetchedMarks(ctx context.Context) error {
	keys, err := e.fetched.ListKeys(ctx)
	if err != nil {
		return err
	}
	for key := range keys.Keys() {
		entry, err := e.fetched.Get(ctx, key)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue
			}
			return err
		}
		if v := entry.Value(); len(v) == 8 {
			e.recovered[key] = max(e.recovered[key], binary.BigEndian.Uint64(v))
		}
	}
	return nil
}

// StartDuration reports how long Start took, for the log.
func (e *Engine) StartDuration() time.Duration { return e.started }

// Dir is the data directory, as an absolute path.
func (e *Engine) Dir() string { return e.cfg.Dir }

// Close flushes what is pending (acknowledgements), stops the queues' fetching, shuts the embedded
// server down and releases the directory. Safe to call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.fetchers.Wait()
	if e.shared {
		// Once no fetch is under way, so that none feeds a message after its queue was released.
		e.mu.Lock()
		queues := e.queues
		e.mu.Unlock()
		for _, q := range queues {
			q.releaseAll() // to the other nodes at once, rather than after AckWait
		}
	}
	if e.confirmations != nil {
		e.sends.Lock()
		e.sendsClosed = true
		e.sends.Unlock()
		// The publishes still unconfirmed get their answers (or time out) before the connection goes.
		select {
		case <-e.js.PublishAsyncComplete():
		case <-time.After(apiTimeout):
		}
		close(e.confirmations)
		e.confirming.Wait()
	}
	if e.nc != nil && !e.shared {
		_ = e.nc.FlushTimeout(apiTimeout)
		e.nc.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	e.releaseDir()
	return nil
}

// where names the store in errors: the data directory, or the cluster's JetStream.
func (e *Engine) where() string {
	if e.shared {
		return "the cluster's JetStream"
	}
	return "data directory " + e.cfg.Dir
}

// enterFetch counts a read in e.fetchers, which Close waits for, unless the engine is closed.
func (e *Engine) enterFetch() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.fetchers.Add(1)
	return true
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

var _ broker.Store = (*Engine)(nil)

// serverLog passes the embedded server's log to slog: notices at debug level (it is chatty at start),
// warnings and errors as such.
type serverLog struct{ log *slog.Logger }

func (l *serverLog) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Warnf(format string, v ...any) { l.log.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (l *serverLog) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Errorf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Debugf(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l *serverLog) Tracef(format string, v ...any) {}

// guardedJS refuses, before they reach the connection, the JetStream publishes whose subject passes
// maxSubjectBytes (which would make the server close it): the queues and streams refuse such names
// when opened, and this keeps any other (a retained message of a long topic) from the connection.
// The check costs a length comparison per publish.
type guardedJS struct{ jetstream.JetStream }

func (g guardedJS) Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	return g.JetStream.Publish(ctx, subject, payload, opts...)
}

func (g guardedJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := checkSubject(msg.Subject); err != nil {
		return nil, err
	}
	return g.JetStream.PublishMsg(ctx, msg, opts...)
}

func (g guardedJS) PublishAsync(subject string, payload []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	return g.JetStream.PublishAsync(subject, payload, opts...)
}

func (g guardedJS) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if err := checkSubject(msg.Subject); err != nil {
		return nil, err
	}
	return g.JetStream.PublishMsgAsync(msg, opts...)
}
