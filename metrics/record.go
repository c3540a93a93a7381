package metrics

import "time"

// Each method below checks its receiver and its enum argument before indexing: a nil *Metrics is
// "metrics off", and a value outside the enum is dropped instead of panicking in a server path.
// With uint8 enums that one comparison also removes the compiler's own bounds check.

// ConnectionOpened counts a client connection accepted on t and raises stompd_connections_current.
// Call it once per connection, after the WebSocket upgrade or TCP accept succeeded.
func (m *Metrics) ConnectionOpened(t Transport) {
	if m == nil || t >= numTransports {
		return
	}
	m.connectionsOpened[t].Inc()
	m.connectionsCurrent[t].Inc()
}

// ConnectionClosed counts the end of a connection on t for reason r and lowers
// stompd_connections_current. Call it exactly once for every [Metrics.ConnectionOpened].
func (m *Metrics) ConnectionClosed(t Transport, r CloseReason) {
	if m == nil || t >= numTransports || r >= numCloseReasons {
		return
	}
	m.connectionsClosed[t][r].Inc()
	m.connectionsCurrent[t].Dec()
}

// HandshakeFailed counts a connection attempt refused for reason f before a session began.
func (m *Metrics) HandshakeFailed(f HandshakeFailure) {
	if m == nil || f >= numHandshakeFailures {
		return
	}
	m.handshakeFailures[f].Inc()
}

// BytesReceived adds n bytes read from a client on t. Non-positive n is ignored.
func (m *Metrics) BytesReceived(t Transport, n int) {
	if m == nil || t >= numTransports || n <= 0 {
		return
	}
	m.bytesReceived[t].Add(float64(n))
}

// BytesSent adds n bytes written to a client on t. Non-positive n is ignored.
func (m *Metrics) BytesSent(t Transport, n int) {
	if m == nil || t >= numTransports || n <= 0 {
		return
	}
	m.bytesSent[t].Add(float64(n))
}

// FrameReceived counts one frame (or heart-beat) read from a client.
func (m *Metrics) FrameReceived(c Command) {
	if m == nil || c >= numCommands {
		return
	}
	m.framesReceived[c].Inc()
}

// FrameSent counts one frame (or heart-beat) queued for a client.
func (m *Metrics) FrameSent(c Command) {
	if m == nil || c >= numCommands {
		return
	}
	m.framesSent[c].Inc()
}

// ErrorSent counts one ERROR frame sent for reason r. The ERROR frame itself is also counted by
// [Metrics.FrameSent]; this counter says why.
func (m *Metrics) ErrorSent(r ErrorReason) {
	if m == nil || r >= numErrorReasons {
		return
	}
	m.errorsSent[r].Inc()
}

// HeartbeatTimedOut counts a connection found silent for longer than its heart-beat allows.
func (m *Metrics) HeartbeatTimedOut() {
	if m == nil {
		return
	}
	m.heartbeatTimeouts.Inc()
}

// MessagePublished counts a message accepted for routing to a destination of kind k, whether it
// came from a client or from a built-in publisher.
func (m *Metrics) MessagePublished(k Kind) {
	if m == nil || k >= numKinds {
		return
	}
	m.published[k].Inc()
}

// MessageDelivered counts one MESSAGE frame handed to a subscriber's connection for a destination
// of kind k. A fan-out to n subscribers counts n.
func (m *Metrics) MessageDelivered(k Kind) {
	if m == nil || k >= numKinds {
		return
	}
	m.delivered[k].Inc()
}

// MessageRedelivered counts a queue message delivered again (NACK, or its consumer went away).
// The delivery itself is also counted by [Metrics.MessageDelivered].
func (m *Metrics) MessageRedelivered() {
	if m == nil {
		return
	}
	m.redelivered.Inc()
}

// MessageDropped counts one message not delivered to one subscriber (or, for [DropNoRoute], to
// anyone) for reason r.
func (m *Metrics) MessageDropped(r DropReason) {
	if m == nil || r >= numDropReasons {
		return
	}
	m.dropped[r].Inc()
}

// SlowConsumerDisconnected counts a connection closed because its outbound queue went over its
// byte limit. The close is also counted by [Metrics.ConnectionClosed] with [CloseSlowConsumer];
// this counter stays meaningful when close reasons are aggregated away.
func (m *Metrics) SlowConsumerDisconnected() {
	if m == nil {
		return
	}
	m.slowConsumerDisconnects.Inc()
}

// ObserveDeliveryLatency records d, the time from a publish being accepted to its MESSAGE frame
// being queued on one subscriber's connection. Negative d (a clock step) is recorded as 0.
func (m *Metrics) ObserveDeliveryLatency(d time.Duration) {
	if m == nil {
		return
	}
	m.deliveryLatency.Observe(max(d, 0).Seconds())
}

// ObserveOutboundQueue records queuedBytes, the bytes already waiting on a connection when a frame
// is queued behind them. Call it only when the queue was not empty: an idle connection's zeros
// would drown the signal, which is how close subscribers run to their byte limit.
func (m *Metrics) ObserveOutboundQueue(queuedBytes int) {
	if m == nil {
		return
	}
	m.outboundQueue.Observe(float64(max(queuedBytes, 0)))
}
