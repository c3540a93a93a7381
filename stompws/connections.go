package stompws

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stompd/stompd/broker"
)

// Views of the sessions for operators (a management API), and closing one. The reading goroutine
// owns a session's state; what an operator may see of it is published in sessionView, replaced as a
// whole after CONNECT and after each SUBSCRIBE and UNSUBSCRIBE, and in a few counters.

// ConnectionInfo describes one connection for an operator.
type ConnectionInfo struct {
	Session     string // the session id sent in CONNECTED
	Name        string // display name (CONNECT's name or login header, else a short session id)
	User        string // authenticated user; "" when authentication is off
	Remote      string // the client's address
	Transport   string // ws, tcp or sockjs
	Subprotocol string
	Version     string // STOMP version; "" before CONNECT
	Opened      time.Time
	// HeartBeatOut and HeartBeatIn are the negotiated intervals: the server's heart-beats to the
	// client, and the client's to the server; 0 when off.
	HeartBeatOut, HeartBeatIn time.Duration
	Subscriptions             []SubscriptionInfo
	// MessagesIn counts SENDs; MessagesOut MESSAGE frames (counted when metrics are on); BytesIn and
	// BytesOut the bytes read and written.
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
}

// SubscriptionInfo is one subscription of a connection.
type SubscriptionInfo struct {
	ID          string
	Destination string
	Ack         string // auto, client or client-individual
}

// sessionView is what an operator sees of a session's reader-owned state.
type sessionView struct {
	name, user, version string
	hbOut, hbIn         time.Duration
	subs                []SubscriptionInfo
}

// sessionCounters are the session's operator counters, safe for any goroutine.
type sessionCounters struct {
	view        atomic.Pointer[sessionView]
	messagesIn  atomic.Uint64
	messagesOut atomic.Uint64 // added to by flushMetrics
	bytesIn     atomic.Uint64
}

// publishView replaces the session's view. Called by the reading goroutine after CONNECT and after
// each change of its subscriptions.
func (s *session) publishView() {
	v := &sessionView{name: s.name, user: s.principal.User, hbOut: s.hbOut, hbIn: s.hbIn}
	if s.connected {
		v.version = s.version.String()
	}
	v.subs = make([]SubscriptionInfo, 0, len(s.subs))
	for _, sub := range s.subs {
		v.subs = append(v.subs, SubscriptionInfo{ID: sub.id, Destination: sub.dest, Ack: ackModeName(sub.ackMode)})
	}
	slices.SortFunc(v.subs, func(a, b SubscriptionInfo) int { return strings.Compare(a.ID, b.ID) })
	s.counters.view.Store(v)
}

// info is the session as ConnectionInfo.
func (s *session) info() ConnectionInfo {
	c := ConnectionInfo{
		Session: s.id, Remote: s.conn.RemoteAddr(), Transport: s.transport.String(),
		Subprotocol: s.conn.Subprotocol(), Opened: s.opened,
		MessagesIn: s.counters.messagesIn.Load(), MessagesOut: s.counters.messagesOut.Load() + uint64(max(0, s.unflushedMessages.Load())),
		BytesIn: s.counters.bytesIn.Load(), BytesOut: s.conn.Written(),
	}
	if v := s.counters.view.Load(); v != nil {
		c.Name, c.User, c.Version = v.name, v.user, v.version
		c.HeartBeatOut, c.HeartBeatIn = v.hbOut, v.hbIn
		c.Subscriptions = v.subs
	}
	return c
}

// Connections returns every connection being served, oldest first. It takes the server's lock
// briefly: call it at an operator's pace.
func (srv *Server) Connections() []ConnectionInfo {
	srv.mu.Lock()
	sessions := make([]*session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()
	out := make([]ConnectionInfo, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, s.info())
	}
	slices.SortFunc(out, func(a, b ConnectionInfo) int {
		if c := a.Opened.Compare(b.Opened); c != 0 {
			return c
		}
		return strings.Compare(a.Session, b.Session)
	})
	return out
}

// ConnectionsByTransport counts the connections being served, in all and by transport, without
// making their views: the overview's figure, cheap at 10,000 connections. It takes the server's lock
// briefly.
func (srv *Server) ConnectionsByTransport() (total int, byTransport map[string]int) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	byTransport = make(map[string]int, 4)
	for s := range srv.sessions {
		byTransport[s.transport.String()]++
	}
	return len(srv.sessions), byTransport
}

// Connection returns the connection of session id; ok is false if there is none.
func (srv *Server) Connection(id string) (ConnectionInfo, bool) {
	if s := srv.sessionByID(id); s != nil {
		return s.info(), true
	}
	return ConnectionInfo{}, false
}

// CloseConnection ends the connection of session id: its client gets ERROR "closed by an operator"
// and the connection closes, as at shutdown. It reports whether there was such a session.
func (srv *Server) CloseConnection(id string) bool {
	s := srv.sessionByID(id)
	if s == nil {
		return false
	}
	s.terminate(errClosedByOperator)
	return true
}

func (srv *Server) sessionByID(id string) *session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for s := range srv.sessions {
		if s.id == id {
			return s
		}
	}
	return nil
}

// ackModeName is mode as SUBSCRIBE's ack header spells it.
func ackModeName(mode broker.AckMode) string {
	switch mode {
	case broker.AckClient:
		return "client"
	case broker.AckClientIndividual:
		return "client-individual"
	}
	return "auto"
}
