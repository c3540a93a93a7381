package stompws

import (
	"time"

	"github.com/stompd/stompd/metrics"
)

// heartBeatEOL is the heart-beat the server sends: a single EOL, shared by every session.
var heartBeatEOL = []byte{'\n'}

// startTimers arms the heart-beat timers negotiated at CONNECT. Timers cost no goroutine while idle;
// their callbacks run briefly on runtime goroutines, serialized with stopTimers by hbMu.
func (s *session) startTimers() {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.hbOut > 0 {
		s.hbOutTimer = time.AfterFunc(s.hbOut, s.heartBeatOut)
	}
	if s.hbIn > 0 {
		s.hbInTimer = time.AfterFunc(s.inboundDeadline(), s.heartBeatIn)
	}
}

// stopTimers stops the heart-beat timers and the CONNECT deadline; no callback runs after it returns.
func (s *session) stopTimers() {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	s.timersStopped = true
	if s.connectTimer != nil {
		s.connectTimer.Stop()
	}
	if s.expiryTimer != nil {
		s.expiryTimer.Stop()
	}
	if s.hbOutTimer != nil {
		s.hbOutTimer.Stop()
	}
	if s.hbInTimer != nil {
		s.hbInTimer.Stop()
	}
}

// inboundDeadline is how long a client may stay silent: the negotiated interval times the grace factor.
func (s *session) inboundDeadline() time.Duration {
	return time.Duration(float64(s.hbIn) * s.opts.HeartBeatGrace)
}

// heartBeatOut sends an EOL if nothing has been written for hbOut, then re-arms for the next due time.
func (s *session) heartBeatOut() {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.timersStopped || s.closing.Load() {
		return
	}
	next := s.hbOut
	if since := time.Since(s.conn.LastWrite()); since < s.hbOut && s.conn.Queued() == 0 {
		next = s.hbOut - since // something went out recently: that was a heart-beat too
	} else if s.conn.Queued() == 0 && s.conn.Enqueue(nil, heartBeatEOL, false) == nil {
		s.sent(metrics.CommandHeartbeat)
	}
	s.hbOutTimer.Reset(next)
}

// heartBeatIn closes the session if the client has been silent beyond the grace period.
func (s *session) heartBeatIn() {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.timersStopped || s.closing.Load() {
		return
	}
	deadline := s.inboundDeadline()
	if s.held.Load() {
		// The server is not reading while it holds a SEND back: the silence is its own.
		s.hbInTimer.Reset(deadline)
		return
	}
	silent := time.Since(time.Unix(0, s.lastRead.Load()))
	if silent >= deadline {
		s.log.Info("heart-beat timeout", "session", s.id, "remote", s.conn.RemoteAddr(),
			"silent", silent.Round(time.Millisecond), "interval", s.hbIn)
		s.metrics.HeartbeatTimedOut()
		s.terminate(errHeartBeatTimeout)
		return
	}
	s.hbInTimer.Reset(deadline - silent)
}
