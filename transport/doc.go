// Package transport carries bytes between the broker and its clients over WebSocket, TCP and SockJS. It
// knows connections and bytes, never STOMP or the broker, and imports nothing else from this module.
//
// A Conn is an inbound byte stream, read by the caller's goroutine, plus a bounded, non-blocking
// outbound frame queue. AcceptWebSocket upgrades an HTTP request (subprotocol choice in the server's
// order of preference, origin check, read limit); NewTCPConn wraps an accepted stream connection.
// ReadPooled reads a Conn without the caller owning a buffer; ServeReads reads it without the caller
// owning a goroutine while nothing arrives.
//
// # Invariants
//
//  1. Enqueue never blocks on the network. The queued bytes never exceed Options.MaxQueuedBytes, except
//     for a single frame accepted into an empty queue; beyond that the caller gets ErrSlowConsumer and
//     decides what a slow consumer costs.
//  2. Frames are written in Enqueue order. A frame's head is copied at Enqueue; its tail is never copied
//     at Enqueue and never modified, so one encoded body can be queued on many connections.
//  3. A connection has a writer only while it has something to write: Enqueue starts it, it drains
//     the queue in batches, calls the drain callback (SetOnDrain) once the queue is empty, and ends. An
//     idle connection holds no writer, no queue memory and no write buffer (they come from pools), and
//     a connection waiting in ReadPooled holds no read buffer: it borrows one from a pool once the
//     socket is readable and gives it back when the bytes have been consumed. Over WebSocket the
//     library's own buffers are 16 and 127 bytes, and net/http's 8 KiB are freed at the hijack. A
//     connection read with ServeReads holds no goroutine either while nothing arrives (see Parking).
//  4. Every write call is bounded by Options.WriteTimeout: a watchdog closes the network connection
//     under a write that stays blocked longer, and the connection fails with ErrWriteTimeout.
//  5. Close writes every frame queued before it, then the WebSocket close frame or the TCP FIN, so an
//     ERROR frame queued just before Close reaches the peer. Close and Abort are bounded: by ctx for the
//     flush, and by one second for the peer's side of the shutdown.
//  6. When Close or Abort returns, no goroutine owned by the Conn is running, Read returns an error and
//     Enqueue returns ErrClosed.
//
// # Locking
//
// Each connection has one mutex guarding its queue and its state. It is a leaf: it is never held while
// calling into the network, the WebSocket library, or the drain callback. A TCP connection also serializes its
// reads with a second mutex so that Close can take over the read side to drain it; a WebSocket
// connection serializes its writes to the network with a second mutex, held across one write call, by
// the writer or by the library writing a control frame. Neither is ever held with the first.
//
// # Parking
//
// Writers, and readers resumed from parking, run on a pool of worker goroutines that keep their grown
// stacks between tasks and exit after a second without one; at most 1,024 wait idle.
//
// ServeReads parks a connection that has nothing to read: its goroutine returns, and one epoll
// instance for the process (watched through the runtime's own poller) reports its socket once, when
// bytes or the peer's end arrive; reading then resumes on a worker. Close, Abort and a write torn down
// by the watchdog resume a parked reader too, so that the reader always sees how its connection ended.
// A reader about to park publishes its token before it checks whether the connection is ending, and
// the closing side marks the connection before it looks for a token: one of the two always sees the
// other, and exactly one of the poller, the closing side and the reader itself takes the token and
// runs the reader on.
//
// Over WebSocket the library reads through a bufio.Reader that is fed one byte at a time, so that
// between messages every byte not yet consumed is in the transport's own reader, where ServeReads can
// see it; readability is checked with MSG_PEEK, since the library's close handshake may be reading the
// socket from another goroutine. Only Linux has the poller; elsewhere, and for TLS connections, whose
// reads go through the TLS layer, ServeReads waits on its goroutine.
//
// # WebSocket writes
//
// Data messages bypass the WebSocket library: the writer writes each message as one unfragmented frame,
// its header built here, in one write call (a batch copied behind the header; a single frame as one
// writev of header, head and tail, so that a shared tail is never copied). Consecutive queued frames
// share a message, except a frame of line breaks alone (a STOMP heart-beat), which is always a message
// of its own: older clients tell heart-beats by a message that holds nothing else, and parse a leading
// one as part of the next frame, losing it. The library writes only the control frames it sends on its
// own (pong, close), each as one write. A mutex per connection
// serializes the two, and once the library has sent a close frame no data frame follows.
//
// # WebSocket close handshake
//
// The WebSocket library's Close writes a close frame and then waits up to 5 s for the peer's, and it
// needs the read side to see the answer, which the caller's goroutine may be holding in Read at that
// moment. Both cases work: a Read in progress receives the peer's close frame and releases the read side
// (the caller then sees ErrClosed), or Close reads it itself. A peer that never answers is cut off after
// one second by closing the network connection, which this package keeps for that purpose when the
// request is hijacked.
//
// # SockJS
//
// SockJSHandler serves the SockJS protocol for browsers whose network lets no WebSocket through; each
// SockJS session is a Conn. Its inbound messages (from xhr_send requests or its WebSocket) are queued
// for the reader, bounded by the read limit: an xhr_send waits while the reader is behind. Its outbound
// frames are encoded as JSON strings at Enqueue, bounded by MaxQueuedBytes as for the other transports,
// and written by whichever receiving request is attached (one at a time: xhr polling, xhr_streaming,
// eventsource, or the session's WebSocket), on that request's goroutine; the session itself owns no
// goroutine. A frame that is not UTF-8 is refused with ErrNotText, since SockJS carries JavaScript
// strings. A session with no receiving request for DisconnectDelay counts as gone (Read returns io.EOF);
// an ended one answers its close frame for DisconnectDelay more, then is forgotten. Its mutex is a
// leaf, like a connection's.
package transport
