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

// AuthAttempted counts one authentication attempt by method a with result r.
func (m *Metrics) AuthAttempted(a AuthMethod, r AuthResult) {
	if m == nil || a >= numAuthMethods || r >= numAuthResults {
		return
	}
	m.authAttempts[a][r].Inc()
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

// The four Message methods below add to counters that [Metrics.ObserveBroker] otherwise fills from
// the broker. The broker sees every publish, delivery and drop, those of in-process publishers
// included, so a server that calls ObserveBroker has nothing to record here: calling one of these
// for a message the broker routed counts it twice. They remain for messages that never reach the
// broker, and for embedders that count by hand.

// MessagePublished adds one to stompd_messages_published_total{kind=k}, on top of the broker's
// count read by [Metrics.ObserveBroker]. Use it only for a message the broker never saw.
func (m *Metrics) MessagePublished(k Kind) {
	if m == nil || k >= numKinds {
		return
	}
	m.broker.recorded.published[k].Add(1)
}

// MessageDelivered adds one to stompd_messages_delivered_total{kind=k}, on top of the broker's
// count read by [Metrics.ObserveBroker]. Use it only for a delivery the broker did not make.
func (m *Metrics) MessageDelivered(k Kind) {
	if m == nil || k >= numKinds {
		return
	}
	m.broker.recorded.delivered[k].Add(1)
}

// MessageRedelivered adds one to stompd_messages_redelivered_total, on top of the broker's count
// read by [Metrics.ObserveBroker]. Use it only for a redelivery the broker did not make.
func (m *Metrics) MessageRedelivered() {
	if m == nil {
		return
	}
	m.broker.recorded.redelivered.Add(1)
}

// MessageDropped adds one to stompd_messages_dropped_total{reason=r}, on top of the broker's count
// read by [Metrics.ObserveBroker]. Use it only for a message dropped outside the broker, such as
// one that expired ([DropExpired]), which the broker never reports.
func (m *Metrics) MessageDropped(r DropReason) {
	if m == nil || r >= numDropReasons {
		return
	}
	m.broker.recorded.dropped[r].Add(1)
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

// MemoryLimitSet records the memory limit and the live heap at which publishers are held back, in
// bytes (0, 0: no limit).
func (m *Metrics) MemoryLimitSet(limit, highWatermark int64) {
	if m == nil {
		return
	}
	m.memoryLimit.Set(float64(limit))
	m.memoryHighWatermark.Set(float64(highWatermark))
}

// PublisherHeld adds delta (+1 when a SEND starts waiting for the memory alarm to clear, -1 when it
// stops) to stompd_publishers_held.
func (m *Metrics) PublisherHeld(delta int) {
	if m == nil {
		return
	}
	m.publishersHeld.Add(float64(delta))
}

// StoreWrite records one message stored (stompd_store_write_seconds), or the failure to store it.
func (m *Metrics) StoreWrite(d time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.storeErrors[StoreAppend].Inc()
		return
	}
	m.storeWrite.Observe(d.Seconds())
}

// StoreFailed counts a failed store operation other than a write.
func (m *Metrics) StoreFailed(op StoreOp) {
	if m == nil || op >= numStoreOps {
		return
	}
	m.storeErrors[op].Inc()
}
