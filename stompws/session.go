package stompws

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// session is one STOMP connection. The goroutine reading the connection (see start) owns every field
// not marked otherwise; Deliver and Evict (broker goroutines), the transport's drain callback,
// heart-beat timers and Server.Shutdown touch only the fields marked "shared".
type session struct {
	opts   *Options
	broker *broker.Broker
	conn   transport.Conn
	log    *slog.Logger
	id     string // server-assigned session id, sent in CONNECTED
	name   string // display name, from CONNECT's name or login header, else a short form of id

	metrics   *metrics.Metrics  // nil when metrics are off
	transport metrics.Transport // the connection's kind, as a metrics label
	// shared: MESSAGE frames queued by Deliver and not yet added to metrics; flushed by onDrain and
	// finish
	unflushedMessages atomic.Int64
	// shared: what an operator sees of the session (connections.go)
	counters sessionCounters
	// bytes written by the connection already added to metrics; touched by onDrain (the writer) and,
	// once the writer is gone, by finish
	flushedBytes uint64
	opened       time.Time

	parser    *frame.Parser  // nil while the connection is parked between frames (see idle)
	parsers   *sync.Pool     // where idle puts the parser, the server's
	feedFn    func(p []byte) // feed, bound once
	feedErr   error          // the parse or dispatch error of the last feed
	ended     func()         // called once the session has ended; see start
	version   frame.Version  // negotiated; immutable once connected is set
	connected bool
	// errVersion is version for goroutines other than the reading one (the close path): 0 before CONNECT.
	errVersion atomic.Uint32
	done       bool // DISCONNECT handled: stop reading

	subs        map[string]*subscription // by STOMP subscription id
	subsByID    map[uint64]*subscription // by broker subscription id (STOMP 1.2 ack ids carry it)
	txs         map[string]*transaction
	txBytes     atomic.Int64      // Message.Size held by txs (Options.MaxTxBytes); written by the owner, read by Server.TransactionBytes
	tempQueues  map[string]string // /temp-queue/NAME → /reply-queue/… owned by this session
	headerIndex map[string]struct{}

	// heart-beats, negotiated at CONNECT
	hbOut, hbIn   time.Duration
	lastRead      atomic.Int64 // shared: UnixNano of the last inbound bytes
	hbOutTimer    *time.Timer
	hbInTimer     *time.Timer
	connectTimer  *time.Timer // guarded by hbMu; nil once CONNECT arrived or the deadline passed
	hbMu          sync.Mutex  // shared: serializes timer callbacks with stopTimers
	timersStopped bool        // guarded by hbMu
	closing       atomic.Bool // shared: set once the session is ending; deliveries are refused
	closeOnce     sync.Once   // shared
	closeErr      atomic.Pointer[protocolError]
	// ctrlMu orders the frames the server owes the client (CONNECTED, RECEIPT) with the ending ERROR:
	// once closeErr is set under it, no such frame is queued behind the ERROR. Taken after broker locks
	// (terminate may run inside Deliver) and before transport locks.
	ctrlMu  sync.Mutex
	closers sync.WaitGroup // shared: close goroutines started by terminate
	// shared: signalled (non-blocking) each time the outbound queue empties, once sendErrorAndClose has
	// made it (it is the only one to wait for the queue)
	drained        atomic.Pointer[chan struct{}]
	fullMu         sync.Mutex // shared: guards full, resumersDone and resumers.Add
	full           []*subscription
	resumers       sync.WaitGroup // shared: onDrain calls started by markFull
	resumersDone   bool           // cleanup waits for resumers: start no more
	cancelCtxWatch func() bool
	sendLimiter    *rate.Limiter // nil when Options.SendRate is off

	sendBytesLimiter *rate.Limiter            // nil when Options.SendBytesRate is off
	unackedLimit     *broker.UnackedLimit     // shared by the session's subscriptions; nil: no bound
	quota            *broker.DestinationQuota // the destinations the session may create; nil: no bound
	memory           *memoryGuard             // the server's; nil: no memory flow control
	ending           chan struct{}            // shared: closed once the session is ending
	held             atomic.Bool              // shared: a SEND is waiting for the memory alarm to clear

	// who the client is, set before the session starts (handshake) or at CONNECT; reading goroutine only,
	// read-only once connected
	principal     auth.Principal
	authenticated bool
	expiryTimer   *time.Timer // guarded by hbMu; ends the session when the principal's token expires
}

func newSession(srv *Server) *session {
	return &session{
		opts:             &srv.opts,
		broker:           srv.broker,
		log:              srv.opts.Logger,
		metrics:          srv.opts.Metrics,
		id:               uuid.NewString(),
		opened:           time.Now(),
		parsers:          &srv.parsers,
		subs:             make(map[string]*subscription),
		subsByID:         make(map[uint64]*subscription),
		sendLimiter:      newSendLimiter(&srv.opts),
		sendBytesLimiter: newSendBytesLimiter(&srv.opts),
		unackedLimit:     broker.NewUnackedLimit(srv.opts.MaxUnacked),
		quota:            broker.NewDestinationQuota(srv.opts.MaxDestinationsPerSession),
		memory:           srv.memory,
		ending:           make(chan struct{}),
	}
}

// identity is who this session is to the broker: the sender of its messages, the owner of its
// subscriptions.
func (s *session) identity() broker.Identity {
	return broker.Identity{Session: s.id, Name: s.name, User: s.principal.User, Quota: s.quota}
}

// start runs the session on conn until the peer goes away, a protocol error or DISCONNECT ends it, or
// the server shuts it down; then ended is called, once every goroutine of the session has stopped.
// start returns when the session has ended, or earlier, once the connection waits for the client
// without a goroutine (transport.ServeReads): the session then goes on, and ends, on goroutines
// started when the client next sends something or the connection closes.
func (s *session) start(ctx context.Context, ended func()) {
	s.ended = ended
	s.feedFn = s.feed
	s.lastRead.Store(time.Now().UnixNano())
	s.cancelCtxWatch = keepWatching
	if ctx.Done() != nil {
		s.cancelCtxWatch = context.AfterFunc(ctx, func() { s.terminate(errShuttingDown) })
	}
	s.metrics.ConnectionOpened(s.transport)
	s.logOpened()

	s.startConnectTimer()
	transport.ServeReads(s.conn, s.feedFn, s.afterRead, s.idle)
}

// keepWatching stands for the stop function of a context watch for a context that is never done.
func keepWatching() bool { return true }

// feed parses inbound bytes and dispatches the frames they complete. A parse or dispatch error is kept
// for afterRead.
func (s *session) feed(p []byte) {
	s.lastRead.Store(time.Now().UnixNano())
	s.counters.bytesIn.Add(uint64(len(p)))
	s.metrics.BytesReceived(s.transport, len(p))
	if s.parser == nil {
		s.parser = s.parsers.Get().(*frame.Parser)
		if s.connected {
			s.parser.SetVersion(s.version)
		}
	}
	s.feedErr = s.parser.Feed(p, s.dispatch)
	if s.feedErr == nil && s.memory != nil && s.parser.Buffered() > partialFrameHoldBytes {
		// A frame still arriving is memory too: under the alarm, its client waits, as a SEND does.
		if pe := s.waitForMemory(); pe != nil {
			s.feedErr = pe
		}
	}
}

// partialFrameHoldBytes is how much of an unfinished frame a session buffers before the memory alarm
// holds its client back; below it, a frame is let finish (it is small, or a SEND that the alarm holds
// once complete).
const partialFrameHoldBytes = 64 << 10

// idle runs before the connection parks: between frames, the parser goes back to the server's pool,
// and the next bytes take one from it.
func (s *session) idle() {
	if s.parser != nil && s.parser.Buffered() == 0 && s.feedErr == nil {
		s.parser.Reset()
		s.parsers.Put(s.parser)
		s.parser = nil
	}
}

// afterRead looks at the outcome of one read and of the frames it carried, and reports whether to
// read on. When not, the session is over and has been finished.
func (s *session) afterRead(err error) bool {
	reason, detail, over := s.readOutcome(err)
	if !over {
		return true
	}
	s.finish(reason, detail)
	return false
}

// readOutcome reports whether the session is over after a read that returned err, and if so why, as a
// metrics label and in words for the log.
func (s *session) readOutcome(err error) (metrics.CloseReason, string, bool) {
	if s.feedErr != nil {
		pe := asProtocolError(s.feedErr)
		s.closeWithError(pe)
		return pe.closeLabel(), pe.Error(), true
	}
	if s.done {
		return metrics.CloseClientDisconnect, "DISCONNECT", true
	}
	if err == nil {
		return 0, "", false
	}
	if pe := s.closeErr.Load(); pe != nil {
		return pe.closeLabel(), pe.Error(), true
	}
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		return metrics.ClosePeerClosed, "peer closed the connection", true
	case errors.Is(err, transport.ErrWriteTimeout):
		return metrics.CloseWriteTimeout, err.Error(), true
	}
	return metrics.CloseIOError, err.Error(), true
}

// finish releases what the ended session holds, records its end, and calls ended.
func (s *session) finish(reason metrics.CloseReason, detail string) {
	s.cancelCtxWatch()
	// From here on terminate starts nothing: closers can be waited for without racing its Add.
	s.closeOnce.Do(func() { s.closing.Store(true) })
	s.cleanup()
	s.flushMetrics()
	s.metrics.ConnectionClosed(s.transport, reason)
	s.logClosed(reason, detail)
	s.ended()
}

// dispatch handles one parsed frame; nil is a heart-beat. Called by the parser on the reading goroutine.
// A returned error ends the session with an ERROR frame.
func (s *session) dispatch(f *frame.Frame) error {
	if f == nil {
		s.metrics.FrameReceived(metrics.CommandHeartbeat)
		return nil // liveness was recorded by the read loop
	}
	if cmd, ok := metrics.ParseCommand(f.Command); ok {
		s.metrics.FrameReceived(cmd)
	}
	if s.done {
		return nil
	}
	if !s.connected {
		switch f.Command {
		case frame.CONNECT, frame.STOMP:
			return s.handleConnect(f)
		}
		return protoErr("expected CONNECT or STOMP frame", "received %s before CONNECT", f.Command)
	}
	receipt, _ := f.Get("receipt")
	var err error
	switch f.Command {
	case frame.SEND:
		err = s.handleSend(f)
	case frame.SUBSCRIBE:
		err = s.handleSubscribe(f)
	case frame.UNSUBSCRIBE:
		err = s.handleUnsubscribe(f)
	case frame.ACK:
		err = s.handleAck(f, false)
	case frame.NACK:
		err = s.handleAck(f, true)
	case frame.BEGIN:
		err = s.handleBegin(f)
	case frame.COMMIT:
		err = s.handleCommit(f)
	case frame.ABORT:
		err = s.handleAbort(f)
	case frame.DISCONNECT:
		return s.handleDisconnect(receipt)
	case frame.CONNECT, frame.STOMP:
		err = protoErr("already connected", "%s received on a connected session", f.Command)
	default:
		err = protoErr("unexpected frame", "clients may not send %s", f.Command)
	}
	if err != nil {
		return asProtocolError(err).withReceipt(receipt)
	}
	if receipt != nil {
		s.sendReceipt(receipt)
	}
	return nil
}

// handleDisconnect answers DISCONNECT: the receipt, if asked for, is flushed before the close.
func (s *session) handleDisconnect(receipt []byte) error {
	// Deliveries stop before the RECEIPT goes out: a client that has its RECEIPT may count on getting
	// nothing more, and a queue message offered now stays in the queue for another consumer.
	s.done = true
	s.closing.Store(true)
	if receipt != nil {
		// The RECEIPT says every earlier frame was taken: what went to a store without waiting too.
		if err := s.broker.SyncStore(); err != nil {
			s.log.Warn("DISCONNECT receipt: the store did not confirm in time", "session", s.id, "error", err)
		}
		s.sendReceipt(receipt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	_ = s.conn.Close(ctx, transport.CloseNormal, "disconnect")
	return nil
}

// sendReceipt queues a RECEIPT frame for receipt.
func (s *session) sendReceipt(receipt []byte) {
	b := frame.AppendCommand(nil, frame.RECEIPT)
	b = frame.AppendHeader(b, s.version, "receipt-id", string(receipt))
	b = frame.AppendBody(b, nil)
	s.enqueueControl(b, metrics.CommandReceipt)
}

// enqueueControl queues a frame the server owes the client (CONNECTED, RECEIPT). It is not subject to the
// slow-consumer bound the way deliveries are: if the queue is full, the client is too slow to stay.
func (s *session) enqueueControl(b []byte, cmd metrics.Command) {
	s.ctrlMu.Lock()
	if s.closeErr.Load() != nil {
		s.ctrlMu.Unlock()
		return // the session is ending with an ERROR, which must be the last frame
	}
	err := s.conn.Enqueue(nil, b, !utf8.Valid(b))
	s.ctrlMu.Unlock()
	switch {
	case err == nil:
		s.sent(cmd)
	case errors.Is(err, transport.ErrSlowConsumer):
		s.terminate(errSlowConsumer)
	}
}

// flushMetrics adds the deliveries counted since the last flush to the shared counters.
func (s *session) flushMetrics() {
	if s.metrics == nil {
		return
	}
	n := s.unflushedMessages.Swap(0)
	s.counters.messagesOut.Add(uint64(max(0, n)))
	s.metrics.FramesSent(metrics.CommandMessage, int(n))
	written := s.conn.Written()
	s.metrics.BytesSent(s.transport, int(written-s.flushedBytes))
	s.flushedBytes = written
}

// sent counts a frame handed to the connection; its bytes are counted when written (flushMetrics).
func (s *session) sent(cmd metrics.Command) {
	s.metrics.FrameSent(cmd)
}

// terminate ends the session from any goroutine: the first call wins, queues ERROR for pe and closes
// the connection on a goroutine the session waits for. Safe to call concurrently and repeatedly.
func (s *session) terminate(pe *protocolError) {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		close(s.ending)
		s.ctrlMu.Lock()
		s.closeErr.Store(pe)
		s.ctrlMu.Unlock()
		s.closers.Add(1)
		go func() {
			defer s.closers.Done()
			s.sendErrorAndClose(pe)
		}()
	})
}

// closeWithError ends the session from the reading goroutine, synchronously.
func (s *session) closeWithError(pe *protocolError) {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		close(s.ending)
		s.ctrlMu.Lock()
		s.closeErr.Store(pe)
		s.ctrlMu.Unlock()
		s.sendErrorAndClose(pe)
	})
}

// sendErrorAndClose queues the ERROR frame for pe behind whatever is already queued, waiting for the
// queue to make room if it is full, flushes, and closes; all within CloseTimeout.
func (s *session) sendErrorAndClose(pe *protocolError) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	b := s.encodeError(pe)
	// Made before the first try, so that a drain between a refusal and the wait is not missed.
	drained := make(chan struct{}, 1)
	s.drained.Store(&drained)
	for {
		err := s.conn.Enqueue(nil, b, !utf8.Valid(b))
		if err == nil {
			s.sent(metrics.CommandError)
			s.metrics.ErrorSent(pe.reason)
		}
		if !errors.Is(err, transport.ErrSlowConsumer) {
			break
		}
		select {
		case <-drained:
		case <-ctx.Done():
			s.conn.Abort()
			return
		}
	}
	if err := s.conn.Close(ctx, pe.code, pe.message); err != nil {
		s.conn.Abort()
	}
}

// encodeError builds the ERROR frame for pe.
func (s *session) encodeError(pe *protocolError) []byte {
	v := frame.Version(s.errVersion.Load())
	if v == 0 {
		v = frame.V10 // nothing negotiated yet: write no escapes a 1.0 client could not read
	}
	// An ERROR is text for people: bytes a client sent that are quoted in it are made valid UTF-8, so
	// that every transport, text-only ones too, can carry it.
	b := frame.AppendCommand(nil, frame.ERROR)
	b = frame.AppendHeader(b, v, "message", strings.ToValidUTF8(pe.message, "\ufffd"))
	if pe.receipt != "" {
		b = frame.AppendHeader(b, v, "receipt-id", strings.ToValidUTF8(pe.receipt, "\ufffd"))
	}
	body := pe.message
	if pe.detail != "" {
		body = pe.Error()
	}
	body = strings.ToValidUTF8(body, "\ufffd")
	b = frame.AppendHeader(b, v, "content-type", "text/plain")
	b = frame.AppendHeader(b, v, "content-length", strconv.Itoa(len(body)))
	b = frame.AppendBody(b, []byte(body))
	return b
}

// onDrain runs on the transport's writer when the outbound queue has emptied: queue subscriptions that
// were refused for lack of room get their held messages now, and a pending ERROR may be queued.
func (s *session) onDrain() {
	s.flushMetrics()
	if drained := s.drained.Load(); drained != nil {
		select {
		case *drained <- struct{}{}:
		default:
		}
	}
	s.fullMu.Lock()
	full := s.full
	s.full = nil
	s.fullMu.Unlock()
	for _, sub := range full {
		sub.full.Store(false)
		if bs := sub.brokerSub.Load(); bs != nil && !s.closing.Load() {
			s.broker.Resume(bs)
		}
	}
}

// markFull records that sub refused a delivery for lack of room. Called from Deliver, with broker locks
// held: it must not resume anything itself.
func (s *session) markFull(sub *subscription) {
	if sub.full.Swap(true) {
		return
	}
	s.fullMu.Lock()
	defer s.fullMu.Unlock()
	s.full = append(s.full, sub)
	// The queue may have drained between the refusal and now, and its drain callback may have run
	// before sub was listed: resume from a goroutine of our own, as the writer would have.
	if s.conn.Queued() == 0 && !s.resumersDone {
		s.resumers.Add(1)
		go func() {
			defer s.resumers.Done()
			s.onDrain()
		}()
	}
}

// cleanup releases everything the session holds in the broker, so unacked queue messages go back to
// their queues, and stops timers. Runs on the reading goroutine once reading has stopped.
func (s *session) cleanup() {
	s.closing.Store(true)
	s.stopTimers()
	s.fullMu.Lock()
	s.resumersDone = true
	s.fullMu.Unlock()
	s.resumers.Wait()
	for _, sub := range s.subs {
		s.broker.Unsubscribe(sub.brokerSub.Load())
	}
	clear(s.subs)
	clear(s.subsByID)
	for _, dest := range s.tempQueues {
		_ = s.broker.DeleteQueue(dest)
	}
	for _, tx := range s.txs {
		s.endTransaction(tx)
	}
	// A session that ended because the peer went away still owns a connection to close.
	s.closers.Wait()
	if s.closeErr.Load() == nil && !s.done {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
		defer cancel()
		_ = s.conn.Close(ctx, transport.CloseNormal, "")
	}
	s.conn.Abort()
}

// logOpened and logClosed are kept out of their callers' frames on purpose: the log calls' arguments
// need more than half a kilobyte of stack, and start's frame is live the whole time a connection that
// cannot park (TLS) is idle. Without them, the runtime can shrink such a session's stack from 8 KiB to
// 4 KiB.
//
//go:noinline
func (s *session) logOpened() {
	conn := s.conn
	s.log.Info("connection opened", "session", s.id, "transport", conn.Transport(), "remote", conn.RemoteAddr(), "subprotocol", conn.Subprotocol())
}

//go:noinline
func (s *session) logClosed(reason metrics.CloseReason, detail string) {
	conn := s.conn
	s.log.Info("connection closed", "session", s.id, "transport", conn.Transport(), "remote", conn.RemoteAddr(),
		"name", s.name, "duration", time.Since(s.opened).Round(time.Millisecond), "reason", reason.String(), "detail", detail)
}
