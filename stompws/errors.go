package stompws

import (
	"errors"
	"fmt"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// ErrServerClosed is returned by ServeTCP after Shutdown, and by ServeConn for a connection that
// arrives during or after Shutdown.
var ErrServerClosed = errors.New("stompws: server closed")

// Reasons a session ends that are not protocol violations. Their text is the ERROR frame's message.
var (
	// errShuttingDown is sent to every session when the server shuts down.
	errShuttingDown = &protocolError{message: "server shutting down", code: transport.CloseGoingAway,
		reason: metrics.ErrorShutdown, closeReason: metrics.CloseServerShutdown}
	// errClosedByOperator ends a connection an operator closed (Server.CloseConnection).
	errClosedByOperator = &protocolError{message: "closed by an operator", code: transport.ClosePolicyViolation,
		reason: metrics.ErrorOperator, closeReason: metrics.CloseOperator}
	// errHeartBeatTimeout closes a client that promised heart-beats and went silent.
	errHeartBeatTimeout = &protocolError{message: "heart-beat timeout", code: transport.ClosePolicyViolation,
		reason: metrics.ErrorHeartbeatTimeout, closeReason: metrics.CloseHeartbeatTimeout}
	// errSlowConsumer closes a client whose topic subscription fell behind under the disconnect policy.
	errSlowConsumer = &protocolError{message: "slow consumer", code: transport.CloseTryAgainLater,
		reason: metrics.ErrorSlowConsumer, closeReason: metrics.CloseSlowConsumer}
	// errConnectTimeout closes a connection that did not send CONNECT within Options.ConnectTimeout.
	errConnectTimeout = &protocolError{message: "connect timeout", code: transport.ClosePolicyViolation}
	// errRateLimited closes a session that sent SEND frames faster than Options.SendRate allows.
	errRateLimited = &protocolError{message: "rate limit exceeded", code: transport.ClosePolicyViolation,
		reason: metrics.ErrorRateLimited}
	// errAuthFailed answers a CONNECT whose credentials were refused, without saying which part was wrong.
	errAuthFailed = &protocolError{message: "authentication failed", code: transport.ClosePolicyViolation,
		reason: metrics.ErrorAuthFailed, closeReason: metrics.CloseAuthFailed}
	// errTokenExpired answers a CONNECT whose token has expired, and ends a session whose token expires.
	errTokenExpired = &protocolError{message: "token expired", code: transport.ClosePolicyViolation,
		reason: metrics.ErrorTokenExpired, closeReason: metrics.CloseTokenExpired}
	// errAcceptRate refuses a connection arriving faster than Options.AcceptRate allows.
	errAcceptRate = &protocolError{message: "connection rate exceeded"}
	// errTooManyConnections refuses a connection beyond Options.MaxConnections.
	errTooManyConnections = &protocolError{message: "too many connections"}
	// errTooManyConnectionsFromIP refuses a connection beyond Options.MaxConnectionsPerIP.
	errTooManyConnectionsFromIP = &protocolError{message: "too many connections from this address"}
)

// protocolError is a fatal STOMP error: it becomes an ERROR frame, then the connection closes with code.
type protocolError struct {
	message string              // the ERROR frame's message header: short, no client data
	detail  string              // the ERROR frame's body: what exactly was wrong
	receipt string              // the offending frame's receipt header, echoed as receipt-id
	code    transport.CloseCode // WebSocket close status after the ERROR

	reason      metrics.ErrorReason // label of stompd_errors_sent_total; the zero value is "protocol"
	closeReason metrics.CloseReason // label of stompd_connections_closed_total; see closeLabel
}

// closeLabel is the close reason to count: a protocolError never means the client disconnected, so the
// zero value (client_disconnect) stands for protocol_error.
func (e *protocolError) closeLabel() metrics.CloseReason {
	if e.closeReason == metrics.CloseClientDisconnect {
		return metrics.CloseProtocolError
	}
	return e.closeReason
}

func (e *protocolError) Error() string {
	if e.detail != "" {
		return e.message + ": " + e.detail
	}
	return e.message
}

// errNotText closes a subscriber on a text-only transport (SockJS) that is due a message whose body or
// headers are not UTF-8 text: SockJS messages are JavaScript strings, and the bytes cannot be carried
// unaltered. Nothing is altered and nothing is lost silently: the client is told which message, and a
// queue message stays on its queue for another consumer.
func errNotText(destination, messageID string) *protocolError {
	return &protocolError{message: "message is not UTF-8 text, which SockJS cannot carry",
		detail: fmt.Sprintf("message-id %s on %s: subscribe over WebSocket or TCP to receive binary messages",
			messageID, destination),
		code: transport.ClosePolicyViolation, reason: metrics.ErrorNotText}
}

// protoErr builds a protocolError closing with policy violation, the status for STOMP-level errors.
func protoErr(message, detailFormat string, args ...any) *protocolError {
	return &protocolError{message: message, detail: fmt.Sprintf(detailFormat, args...), code: transport.ClosePolicyViolation}
}

// because sets the metrics label of e and returns it.
func (e *protocolError) because(r metrics.ErrorReason) *protocolError {
	e.reason = r
	return e
}

// withReceipt returns a copy of e that echoes receipt, if the offending frame asked for one.
func (e *protocolError) withReceipt(receipt []byte) *protocolError {
	if len(receipt) == 0 {
		return e
	}
	c := *e
	c.receipt = string(receipt)
	return &c
}

// asProtocolError maps any error met while handling a frame to the ERROR it deserves.
func asProtocolError(err error) *protocolError {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe
	}
	var parseErr *frame.ParseError
	if errors.As(err, &parseErr) {
		pe := &protocolError{message: parseErr.Err.Error(), detail: parseErr.Detail, code: transport.ClosePolicyViolation}
		if errors.Is(err, frame.ErrFrameTooLarge) {
			pe.code, pe.reason = transport.CloseMessageTooBig, metrics.ErrorFrameTooLarge
		}
		return pe
	}
	switch {
	case errors.Is(err, broker.ErrUnknownDestination):
		return protoErr("unknown destination", "%v", err).because(metrics.ErrorUnknownDestination)
	case errors.Is(err, broker.ErrInvalidDestination):
		return protoErr("invalid destination", "%v", err).because(metrics.ErrorInvalidDestination)
	case errors.Is(err, broker.ErrReadOnly):
		return protoErr("destination is read-only", "%v", err).because(metrics.ErrorReadOnly)
	case errors.Is(err, broker.ErrQueueFull):
		// The broker's text names the queue and its bound; clients need it in the message header.
		return &protocolError{message: err.Error(), code: transport.CloseTryAgainLater, reason: metrics.ErrorQueueFull}
	case errors.Is(err, broker.ErrStoreUnavailable):
		// Names the queue and the store's reason (disk full, store bound); nothing was accepted.
		return &protocolError{message: err.Error(), code: transport.CloseTryAgainLater, reason: metrics.ErrorStoreUnavailable}
	case errors.Is(err, broker.ErrTooManyDestinations):
		// The message names the bound; like a full queue, the client may try again later.
		message := err.Error()
		var tm *broker.TooManyDestinationsError
		if errors.As(err, &tm) && tm.PerCreator {
			message = fmt.Sprintf("too many destinations created by this connection (limit %d)", tm.Limit)
		}
		return &protocolError{message: message, code: transport.CloseTryAgainLater, reason: metrics.ErrorTooManyDestinations}
	case errors.Is(err, broker.ErrRetainedFull):
		// The message names the bound. Retained messages never drain: waiting does not help, raising
		// the bound (or replacing retained messages by smaller ones) does.
		return &protocolError{message: err.Error(), code: transport.ClosePolicyViolation, reason: metrics.ErrorRetainedLimit}
	case errors.Is(err, broker.ErrUnknownTag):
		return protoErr("unknown ack id", "%v", err)
	}
	return &protocolError{message: "internal error", detail: err.Error(), code: transport.CloseProtocolError}
}
