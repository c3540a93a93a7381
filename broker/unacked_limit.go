package broker

import "sync/atomic"

// UnackedLimit bounds the unacknowledged deliveries summed over every
// subscription that shares it: a protocol session gives one to all its
// subscriptions so that a client cannot hold an unbounded number of
// messages by opening many client-ack subscriptions. Its count moves with
// deliveries, Acks, Nacks and Unsubscribes; it is safe for concurrent use,
// and room is reserved before each delivery, so the limit holds exactly
// even when several destinations deliver at once.
//
// Reaching the limit counts as having no room: a queue holds its messages
// back from every subscription sharing the limit, and a topic applies its
// slow-consumer policy, exactly as when one subscription's own prefetch
// window is full. Room freed on one subscription does not by itself restart
// deliveries to the others: after an Ack, Nack or Unsubscribe on any of
// them, the owner calls TakeStarved and, when it reports true, Broker.Resume
// for each remaining subscription.
type UnackedLimit struct {
	max     int64
	n       atomic.Int64
	starved atomic.Bool
}

// NewUnackedLimit returns a limit of max unacknowledged deliveries; max <= 0
// returns nil, which SubscribeOptions treats as no limit.
func NewUnackedLimit(max int) *UnackedLimit {
	if max <= 0 {
		return nil
	}
	return &UnackedLimit{max: int64(max)}
}

// Unacked returns the number of unacknowledged deliveries counted against l.
func (l *UnackedLimit) Unacked() int { return int(l.n.Load()) }

// TakeStarved reports whether a delivery was refused for lack of room under
// l since the last call, and clears the mark.
func (l *UnackedLimit) TakeStarved() bool {
	// Load first: an ACK that finds nothing starved writes nothing to the shared line.
	return l != nil && l.starved.Load() && l.starved.Swap(false)
}

// refuses reports whether l (which may be nil) has no room for another
// delivery, marking l starved when so. The mark is set before the count is
// read again: an owner that frees room and then finds the mark clear is
// certain that this second read sees the room it freed.
func (l *UnackedLimit) refuses() bool {
	if l == nil || l.n.Load() < l.max {
		return false
	}
	l.starved.Store(true)
	return l.n.Load() >= l.max
}

// take reserves room for one delivery, reporting false (and marking l
// starved, as refuses does) when there is none. A delivery that is then not
// taken gives its room back with add(-1); one that is taken keeps it until it
// leaves the unacknowledged set. A nil l always has room.
func (l *UnackedLimit) take() bool {
	if l == nil {
		return true
	}
	for {
		n := l.n.Load()
		if n >= l.max {
			if l.refuses() {
				return false
			}
			continue
		}
		if l.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *UnackedLimit) add(d int) {
	if l != nil && d != 0 {
		l.n.Add(int64(d))
	}
}
