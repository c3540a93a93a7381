package metrics

import "strconv"

// Transport is the kind of connection a session runs on; it is the "transport" label.
type Transport uint8

// Transports.
const (
	// TransportWS is STOMP over WebSocket (ws and wss alike: TLS is terminated in front of stompd
	// or not, which the server cannot always tell).
	TransportWS Transport = iota
	// TransportTCP is STOMP over a plain TCP stream.
	TransportTCP
	// TransportSockJS is STOMP over SockJS, whichever of its transports (websocket, xhr-streaming,
	// xhr-polling, eventsource) the client chose.
	TransportSockJS
	numTransports
)

var transportNames = [numTransports]string{"ws", "tcp", "sockjs"}

// String returns the label value: "ws", "tcp" or "sockjs".
func (t Transport) String() string { return enumName(transportNames[:], uint8(t), "Transport") }

// CloseReason says why a connection ended; it is the "reason" label of
// stompd_connections_closed_total.
type CloseReason uint8

// Close reasons.
const (
	// CloseClientDisconnect is a client that sent DISCONNECT.
	CloseClientDisconnect CloseReason = iota
	// ClosePeerClosed is a client that closed the socket without DISCONNECT.
	ClosePeerClosed
	// CloseProtocolError is a connection closed after an ERROR frame for a malformed or illegal frame.
	CloseProtocolError
	// CloseHeartbeatTimeout is a client silent for longer than the negotiated heart-beat allows.
	CloseHeartbeatTimeout
	// CloseSlowConsumer is a client whose outbound queue went over its byte limit.
	CloseSlowConsumer
	// CloseWriteTimeout is a socket write that stayed blocked past the write timeout.
	CloseWriteTimeout
	// CloseServerShutdown is a connection ended by a graceful shutdown.
	CloseServerShutdown
	// CloseAuthFailed is a CONNECT whose credentials were refused.
	CloseAuthFailed
	// CloseTokenExpired is a session whose token expired, at CONNECT or while it was connected.
	CloseTokenExpired
	// CloseAccessDenied is a session that sent a frame its user may not send.
	CloseAccessDenied
	// CloseIOError is any other read or write failure of the socket.
	CloseIOError
	// CloseOperator is a connection an operator closed (the management API).
	CloseOperator
	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{
	"client_disconnect", "peer_closed", "protocol_error", "heartbeat_timeout", "slow_consumer",
	"write_timeout", "server_shutdown", "auth_failed", "token_expired", "access_denied", "io_error",
	"operator",
}

// String returns the label value, such as "slow_consumer".
func (r CloseReason) String() string { return enumName(closeReasonNames[:], uint8(r), "CloseReason") }

// HandshakeFailure says why a connection attempt was refused before a session began (at the
// WebSocket upgrade or the TCP accept); it is the "reason" label of stompd_handshake_failures_total.
type HandshakeFailure uint8

// Handshake failures.
const (
	// HandshakeOrigin is a WebSocket upgrade from an Origin not on the allow-list.
	HandshakeOrigin HandshakeFailure = iota
	// HandshakeSubprotocol is a WebSocket upgrade offering none of the STOMP subprotocols.
	HandshakeSubprotocol
	// HandshakeAuth is an upgrade whose credentials were refused.
	HandshakeAuth
	// HandshakeLimit is a connection refused by a connection limit or rate limit.
	HandshakeLimit
	// HandshakeBadRequest is any other malformed upgrade request.
	HandshakeBadRequest
	// HandshakeShuttingDown is a connection refused because the server is draining.
	HandshakeShuttingDown
	numHandshakeFailures
)

var handshakeFailureNames = [numHandshakeFailures]string{
	"origin", "subprotocol", "auth", "limit", "bad_request", "shutting_down",
}

// String returns the label value, such as "origin".
func (f HandshakeFailure) String() string {
	return enumName(handshakeFailureNames[:], uint8(f), "HandshakeFailure")
}

// Command is a STOMP frame command, or a heart-beat; it is the "command" label of the frame counters.
type Command uint8

// Commands: the fifteen of STOMP 1.2, then heart-beats.
const (
	// CommandConnect is CONNECT (client to server).
	CommandConnect Command = iota
	// CommandStomp is STOMP, the 1.1+ spelling of CONNECT (client to server).
	CommandStomp
	// CommandConnected is CONNECTED (server to client).
	CommandConnected
	// CommandSend is SEND (client to server).
	CommandSend
	// CommandSubscribe is SUBSCRIBE (client to server).
	CommandSubscribe
	// CommandUnsubscribe is UNSUBSCRIBE (client to server).
	CommandUnsubscribe
	// CommandAck is ACK (client to server).
	CommandAck
	// CommandNack is NACK (client to server, STOMP 1.1+).
	CommandNack
	// CommandBegin is BEGIN (client to server).
	CommandBegin
	// CommandCommit is COMMIT (client to server).
	CommandCommit
	// CommandAbort is ABORT (client to server).
	CommandAbort
	// CommandDisconnect is DISCONNECT (client to server).
	CommandDisconnect
	// CommandMessage is MESSAGE (server to client).
	CommandMessage
	// CommandReceipt is RECEIPT (server to client).
	CommandReceipt
	// CommandError is ERROR (server to client).
	CommandError
	// CommandHeartbeat is a heart-beat EOL, counted as a frame so that idle traffic shows up.
	CommandHeartbeat
	numCommands
)

var commandNames = [numCommands]string{
	"CONNECT", "STOMP", "CONNECTED", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK", "BEGIN",
	"COMMIT", "ABORT", "DISCONNECT", "MESSAGE", "RECEIPT", "ERROR", "HEARTBEAT",
}

// String returns the label value: the command as spelled on the wire, or "HEARTBEAT".
func (c Command) String() string { return enumName(commandNames[:], uint8(c), "Command") }

// ParseCommand returns the Command spelled name (a STOMP command as on the wire, or "HEARTBEAT");
// ok is false for anything else. It does not allocate.
func ParseCommand(name string) (c Command, ok bool) {
	for i, n := range commandNames {
		if n == name {
			return Command(i), true
		}
	}
	return 0, false
}

// Kind is the class of a destination; it is the "kind" label.
type Kind uint8

// Destination kinds.
const (
	// KindTopic is /topic/NAME.
	KindTopic Kind = iota
	// KindQueue is /queue/NAME.
	KindQueue
	// KindReplyQueue is /reply-queue/NAME.
	KindReplyQueue
	// KindApp is /app/NAME, handled in the server rather than routed.
	KindApp
	numKinds
)

var kindNames = [numKinds]string{"topic", "queue", "reply_queue", "app"}

// String returns the label value, such as "reply_queue".
func (k Kind) String() string { return enumName(kindNames[:], uint8(k), "Kind") }

// DropReason says why a message was not delivered to a subscriber; it is the "reason" label of
// stompd_messages_dropped_total.
type DropReason uint8

// Drop reasons.
const (
	// DropNoRoute is a topic message that matched no subscription.
	DropNoRoute DropReason = iota
	// DropSlowConsumer is a message lost with a subscriber cut off as a slow consumer.
	DropSlowConsumer
	// DropConflated is a pending message replaced by a newer one for the same destination.
	DropConflated
	// DropDroppedOldest is the oldest pending message discarded to make room under drop-oldest.
	DropDroppedOldest
	// DropExpired is a message whose expiry passed before it could be delivered.
	DropExpired
	// DropDurableFull is a message a durable topic subscription did not keep because it held its
	// bound (the topic policy's max-queue-depth or max-queue-bytes).
	DropDurableFull
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"no_route", "slow_consumer", "conflated", "dropped_oldest", "expired", "durable_full",
}

// String returns the label value, such as "conflated".
func (r DropReason) String() string { return enumName(dropReasonNames[:], uint8(r), "DropReason") }

// HeldKind says what kind of memory held for clients a figure of stompd_memory_held_bytes counts;
// it is the "kind" label.
type HeldKind uint8

// Kinds of memory held for clients.
const (
	// HeldQueued is messages ready in queues.
	HeldQueued HeldKind = iota
	// HeldUnacked is messages delivered and awaiting ACK or NACK.
	HeldUnacked
	// HeldLagging is topic messages held for subscriptions that fell behind (conflate, drop-oldest).
	HeldLagging
	// HeldRetained is last values and histories of topics, and the messages streams keep in memory.
	HeldRetained
	// HeldOutbound is frames queued on connections, waiting for their sockets.
	HeldOutbound
	// HeldTransactions is SENDs held in open transactions until COMMIT.
	HeldTransactions
	numHeldKinds
)

var heldKindNames = [numHeldKinds]string{"queued", "unacked", "lagging", "retained", "outbound", "transactions"}

// String returns the label value, such as "queued".
func (k HeldKind) String() string { return enumName(heldKindNames[:], uint8(k), "HeldKind") }

// ErrorReason classifies an ERROR frame sent to a client; it is the "reason" label of
// stompd_errors_sent_total.
type ErrorReason uint8

// Error reasons.
const (
	// ErrorProtocol is a malformed frame or a frame not allowed in the session's state.
	ErrorProtocol ErrorReason = iota
	// ErrorUnknownDestination is a SEND to a destination that does not exist.
	ErrorUnknownDestination
	// ErrorInvalidDestination is a destination name the server does not accept.
	ErrorInvalidDestination
	// ErrorReadOnly is a SEND to a destination only the server publishes to.
	ErrorReadOnly
	// ErrorQueueFull is a SEND to a queue at its depth or byte limit.
	ErrorQueueFull
	// ErrorFrameTooLarge is a frame over a size, header-count or header-length limit.
	ErrorFrameTooLarge
	// ErrorHeartbeatTimeout is the ERROR sent before closing a silent client.
	ErrorHeartbeatTimeout
	// ErrorSlowConsumer is the ERROR sent before closing a slow consumer.
	ErrorSlowConsumer
	// ErrorShutdown is the ERROR sent to every client when the server drains.
	ErrorShutdown
	// ErrorAccessDenied is a frame the authenticated user may not send.
	ErrorAccessDenied
	// ErrorAuthFailed is a CONNECT whose credentials were refused.
	ErrorAuthFailed
	// ErrorTokenExpired is a token that expired, at CONNECT or during the session.
	ErrorTokenExpired
	// ErrorRateLimited is a frame refused by a rate limit.
	ErrorRateLimited
	// ErrorTooManyDestinations is a frame that would create a destination beyond the bound.
	ErrorTooManyDestinations
	// ErrorMemoryLimit is a SEND held back by the memory alarm for longer than the hold timeout.
	ErrorMemoryLimit
	// ErrorNotText is a message that is not UTF-8 text, due to a subscriber on a text-only transport
	// (SockJS).
	ErrorNotText
	// ErrorRetainedLimit is a SEND whose retention would take the retained messages past their bound.
	ErrorRetainedLimit
	// ErrorStoreUnavailable is a SEND to a stored queue that the store could not take (disk full, store
	// bound, store down).
	ErrorStoreUnavailable
	// ErrorInvalidStreamOffset is a SUBSCRIBE whose x-stream-offset could not be parsed, or that names
	// a destination that is not a stream.
	ErrorInvalidStreamOffset
	// ErrorOperator is the ERROR sent to a connection an operator closed.
	ErrorOperator
	numErrorReasons
)

var errorReasonNames = [numErrorReasons]string{
	"protocol", "unknown_destination", "invalid_destination", "read_only", "queue_full",
	"frame_too_large", "heartbeat_timeout", "slow_consumer", "shutdown", "access_denied",
	"auth_failed", "token_expired", "rate_limited", "too_many_destinations",
	"memory_limit", "not_text", "retained_limit", "store_unavailable", "stream_offset", "operator",
}

// String returns the label value, such as "queue_full".
func (r ErrorReason) String() string { return enumName(errorReasonNames[:], uint8(r), "ErrorReason") }

// queueState is the "state" label of the queue message gauges.
type queueState uint8

const (
	stateReady queueState = iota
	stateUnacked
	numQueueStates
)

var queueStateNames = [numQueueStates]string{"ready", "unacked"}

// enumName returns names[v], or "Type(v)" for a value outside the enum so that a bad conversion
// shows up in logs instead of panicking.
func enumName(names []string, v uint8, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// AuthMethod is how a client tried to authenticate; it is the "method" label of
// stompd_auth_attempts_total.
type AuthMethod uint8

// Authentication methods.
const (
	// AuthPasscode is a login and passcode checked against the users file.
	AuthPasscode AuthMethod = iota
	// AuthJWT is a JSON Web Token.
	AuthJWT
	// AuthNone is a client that presented no credentials where they were required.
	AuthNone
	numAuthMethods
)

var authMethodNames = [numAuthMethods]string{"passcode", "jwt", "none"}

// String returns the label value, such as "jwt".
func (a AuthMethod) String() string { return enumName(authMethodNames[:], uint8(a), "AuthMethod") }

// AuthResult is the outcome of an authentication attempt; it is the "result" label of
// stompd_auth_attempts_total.
type AuthResult uint8

// Authentication results.
const (
	// AuthSuccess is an accepted credential.
	AuthSuccess AuthResult = iota
	// AuthFailure is a refused credential (unknown user, wrong password, bad token) or none at all.
	AuthFailure
	// AuthExpired is a token whose signature was good but whose time had passed.
	AuthExpired
	numAuthResults
)

var authResultNames = [numAuthResults]string{"success", "failure", "expired"}

// String returns the label value, such as "failure".
func (a AuthResult) String() string { return enumName(authResultNames[:], uint8(a), "AuthResult") }

// StoreKind is what a stored message belongs to; it is the "kind" label of stompd_store_messages and
// stompd_store_bytes.
type StoreKind uint8

// Store kinds.
const (
	// StoreQueue is a /queue/ message, delivered or not.
	StoreQueue StoreKind = iota
	// StoreStream is a message of a stream destination.
	StoreStream
	// StoreRetained is a topic's retained message (last value, history).
	StoreRetained
	numStoreKinds
)

var storeKindNames = [numStoreKinds]string{"queue", "stream", "retained"}

// String returns the label value, such as "stream".
func (k StoreKind) String() string { return enumName(storeKindNames[:], uint8(k), "StoreKind") }

// StoreOp is a store operation that can fail; it is the "op" label of stompd_store_errors_total.
type StoreOp uint8

// Store operations.
const (
	// StoreAppend is storing a published message.
	StoreAppend StoreOp = iota
	// StoreAck is removing an acknowledged message.
	StoreAck
	// StoreFetch is reading stored messages for a queue's consumers.
	StoreFetch
	numStoreOps
)

var storeOpNames = [numStoreOps]string{"append", "ack", "fetch"}

// String returns the label value, such as "append".
func (o StoreOp) String() string { return enumName(storeOpNames[:], uint8(o), "StoreOp") }
