// Package stompws serves STOMP 1.0, 1.1 and 1.2 over WebSocket and over TCP on top of a broker.Broker.
//
// It is the only package that knows STOMP semantics. A Server accepts connections (ServeHTTP upgrades
// WebSocket requests, ServeTCP accepts from a listener, SockJSHandler serves SockJS sessions) and runs one session per connection: CONNECT
// negotiation, heart-beats, SUBSCRIBE/UNSUBSCRIBE, SEND, ACK/NACK, BEGIN/COMMIT/ABORT, receipts, and
// ERROR-then-close on every protocol violation.
//
// # Destinations
//
// /topic/NAME fans out to every subscriber (SUBSCRIBE may use * and # word wildcards), /queue/NAME
// delivers each message to one of its consumers, and /temp-queue/NAME names a queue private to the
// session: when a SEND carries reply-to:/temp-queue/NAME the header is rewritten to a /reply-queue/…
// destination that other sessions can SEND to, and the session receives those replies on subscription
// id /temp-queue/NAME without subscribing. The queue is deleted with the session.
//
// # Authentication and authorization
//
// With Options.Authenticator on, a client proves who it is at the WebSocket upgrade (an Authorization
// header, Basic or Bearer, or an access_token query parameter; a bad credential gets 401 with
// WWW-Authenticate, and with HandshakeAuthRequired so does a missing one) or in CONNECT (login and
// passcode, a token as passcode, or an Authorization: Bearer header). A refused CONNECT waits
// Options.AuthFailureDelay, then gets ERROR "authentication failed", or "token expired" for a genuine
// token past its exp; a session whose token expires is ended with that ERROR at exp. Options.Policy
// then decides each SEND and SUBSCRIBE by destination (ERROR "access denied"). Every message of an
// authenticated session carries its user as user-id, which clients cannot set.
//
// # Abuse limits
//
// A connection must send CONNECT within Options.ConnectTimeout. ServeHTTP and ServeTCP admit a
// connection only within Options.MaxConnections, Options.MaxConnectionsPerIP and Options.AcceptRate;
// a refused WebSocket upgrade gets HTTP 503 with Retry-After before any upgrade, a refused TCP
// connection an ERROR frame and an immediate close, and both count as handshake failures with reason
// "limit". A session sending SEND frames faster than Options.SendRate, or body bytes faster than
// Options.SendBytesRate, gets ERROR "rate limit exceeded" and is closed; one holding
// Options.MaxUnacked unacknowledged messages gets no more until it acknowledges some. Limits cost no goroutine: the CONNECT deadline is a timer, the rates are
// token buckets checked on the goroutine that accepts or reads.
//
// # Invariants
//
//   - Every protocol violation is answered with an ERROR frame carrying a message header (and
//     receipt-id when the offending frame asked for a receipt); the ERROR is flushed before the
//     connection is closed. Nothing else is affected.
//   - A session never blocks a publisher for a subscriber: deliveries are encoded and queued on the
//     connection without waiting. The one wait a publisher meets is the server's own memory alarm
//     (Options.MaxMemory): its SEND, and the reading of its connection, wait until memory falls or
//     Options.MemoryHoldTimeout refuses the SEND; the session's ending ends the wait. When the connection's outbound queue is full, a topic subscription is handled by its
//     destination's slow-consumer policy and a queue subscription holds the message in the broker until
//     the connection drains.
//   - The part of a MESSAGE frame shared by all subscribers (destination, message-id, user-id, user headers,
//     content-length and body) is encoded once per message and protocol version and shared by every
//     delivery; only the subscription, ack and redelivered headers are written per delivery.
//   - A connection slot taken at admission is given back exactly once, when the connection's session
//     has ended; the per-IP table holds no IP with no connection.
//   - Each session is owned by the goroutine reading its connection: the one ServeHTTP starts after the
//     upgrade, one per accepted TCP connection, or ServeConn's caller, until the connection waits for
//     the client; a session waiting for its client has no goroutine (transport.ServeReads), and the
//     next read runs on a transport worker, which then owns it. One read at a time: the session's
//     fields need no lock between them. Timers and the close path run on short-lived goroutines that
//     the session waits for before it ends; Shutdown leaves no goroutine behind.
//
// # Locks
//
// Lock order: broker locks → session.mu → transport locks. Deliver runs with broker locks held, so
// session code never calls into the broker while holding session.mu, and the transport never calls the
// session while holding its own lock.
package stompws
