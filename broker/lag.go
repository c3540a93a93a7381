package broker

// lagState holds the topic messages a lagging subscription has not taken
// yet, under PolicyConflate or PolicyDropOldest, in the order they are to be
// delivered. A conflated destination has one entry, which a newer message
// replaces in place, so it keeps the position its destination first became
// pending at and per-destination order holds. Positions are absolute
// (first + index) so that byDest survives pops from the front.
type lagState struct {
	entries ring[heldMessage]
	first   uint64            // absolute position of entries.at(0)
	byDest  map[string]uint64 // conflated destination → absolute position of its entry
	bytes   int               // total Message.Size of the entries
}

type heldMessage struct {
	msg       *Message
	origin    origin
	conflated bool // indexed in byDest
}

// hold keeps st's message for the lagging subscription s, per the policy of
// its destination, allocating the lag state on the first call. The caller
// holds s.mu.
func (s *Subscription) hold(st *topicPublish) {
	if s.lag == nil {
		s.lag = &lagState{}
		s.lagging.Store(true)
	}
	l := s.lag
	conflate := st.policy.slowConsumer == PolicyConflate
	if conflate {
		if pos, ok := l.byDest[st.msg.Destination]; ok {
			h := l.entries.at(int(pos - l.first))
			l.bytes += st.msg.Size() - h.msg.Size()
			h.msg, h.origin = st.msg, st.origin
			st.b.conflated.Add(1)
			return
		}
	}
	for l.entries.len() >= st.policy.maxPending {
		l.popFront()
		st.b.droppedOldest.Add(1)
	}
	l.entries.pushBack(heldMessage{msg: st.msg, origin: st.origin, conflated: conflate})
	l.bytes += st.msg.Size()
	if conflate {
		if l.byDest == nil {
			l.byDest = make(map[string]uint64)
		}
		l.byDest[st.msg.Destination] = l.first + uint64(l.entries.len()-1)
	}
}

func (l *lagState) popFront() {
	h := l.entries.popFront()
	l.bytes -= h.msg.Size()
	if h.conflated {
		delete(l.byDest, h.msg.Destination)
	}
	l.first++
}

// dropLag discards everything s holds. The caller holds s.mu.
func (s *Subscription) dropLag() {
	if s.lag != nil {
		s.lag = nil
		s.lagging.Store(false)
	}
}

// deliverLagging offers st's message to s, which holds messages already. The
// caller holds s.mu.
func (st *topicPublish) deliverLagging(s *Subscription) {
	if st.policy.slowConsumer != PolicyDisconnect {
		// Never overtake what is held: the message joins the queue.
		s.hold(st)
		st.delivered++
		st.notTaken++
		return
	}
	// Nothing of this destination is held, so it may go straight through;
	// if the subscriber refuses it, its own policy disconnects.
	before := s.resumes.Load()
	s.draining.Store(true)
	res := s.offerTopic(st.msg, st.origin)
	s.draining.Store(false)
	switch res {
	case Delivered:
		st.delivered++
	case Full:
		st.fellBehind(s, before)
		return
	}
	st.drained += s.catchUp()
}

// catchUp delivers held messages while a Resume is owed, that is, while
// there has been one since the last Full answer, and returns how many the
// subscriber took. The caller holds s.mu.
//
// draining is cleared before the owed check so that a Resume which saw it
// set, and so returned without waiting, is always noticed here: it
// incremented resumes before reading draining, and this check reads
// resumes after clearing it.
func (s *Subscription) catchUp() (taken int) {
	for s.lag != nil && s.resumes.Load() != s.fullAt {
		s.draining.Store(true)
		taken += s.drain()
		s.draining.Store(false)
	}
	return taken
}

// drainNow delivers held messages without waiting for a Resume, after an
// Ack or Nack has opened the client-ack window, and returns how many the
// subscriber took. The caller holds s.mu.
func (s *Subscription) drainNow() int {
	if s.lag == nil {
		return 0
	}
	s.draining.Store(true)
	taken := s.drain()
	s.draining.Store(false)
	return taken + s.catchUp()
}

// drain offers held messages, oldest first, until none are left or the
// subscription refuses one; it records a refusal in fullAt, and returns how
// many messages the subscriber took. The caller holds s.mu and has set
// s.draining.
func (s *Subscription) drain() (taken int) {
	for s.lag != nil {
		if s.evicted.Load() || s.removed {
			s.dropLag()
			return taken
		}
		if s.ackMode != AckAuto && !s.topicHasRoom() {
			// Only an Ack can help; a Resume made so far is spent.
			s.fullAt = s.resumes.Load()
			return taken
		}
		l := s.lag
		h := l.entries.at(0)
		before := s.resumes.Load()
		if s.offerTopic(h.msg, h.origin) != Delivered {
			s.fullAt = before
			return taken
		}
		taken++
		l.popFront()
		if l.entries.len() == 0 {
			s.dropLag()
		}
	}
	return taken
}

// resumeTopic delivers what a lagging topic subscription holds, and
// returns how many messages the subscriber took. It returns at once when
// nothing is held, and also when a Deliver for s is running with draining
// set (possibly the caller's own, if Deliver called Resume): that Deliver's
// caller sees the changed resumes count, drains again and counts what it
// drains.
func (s *Subscription) resumeTopic() int {
	s.resumes.Add(1)
	if !s.lagging.Load() || s.draining.Load() {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.evicted.Load() || s.removed {
		return 0
	}
	return s.catchUp()
}

// heldBytes returns the total Message.Size of the messages s holds. The caller holds s.mu.
func (s *Subscription) heldBytes() int {
	if s.lag == nil {
		return 0
	}
	return s.lag.bytes
}

// held returns the number of messages s holds. The caller holds s.mu.
func (s *Subscription) held() int {
	if s.lag == nil {
		return 0
	}
	return s.lag.entries.len()
}
