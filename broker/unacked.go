package broker

// unackedEntry is one delivery awaiting Ack or Nack. msg is nil once the
// entry has been acknowledged out of order (a tombstone).
type unackedEntry struct {
	tag uint64
	msg *Message
}

// unackedSet holds a subscription's unacknowledged deliveries in tag order.
// Tags only rise, so new deliveries are appended and lookups are binary
// searches. An individual acknowledgement leaves a tombstone unless it hits
// the oldest entry; tombstones are trimmed from the front and compacted away
// once they outnumber live entries, so a consumer that never acknowledges its
// oldest delivery cannot make the set grow without bound.
type unackedSet struct {
	entries ring[unackedEntry]
	live    int
	bytes   int           // total Message.Size of the live entries
	limit   *UnackedLimit // shared with the owner's other subscriptions; nil: none
}

// tombstoneSlack is the number of tombstones tolerated before compaction is
// considered, so that small windows do not compact on every acknowledgement.
const tombstoneSlack = 64

func (u *unackedSet) push(tag uint64, m *Message) {
	u.entries.pushBack(unackedEntry{tag: tag, msg: m})
	u.live++ // the shared limit's room was reserved before the delivery
	u.bytes += m.Size()
}

// index returns the position of the live entry with tag, or -1.
func (u *unackedSet) index(tag uint64) int {
	lo, hi := 0, u.entries.len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if u.entries.at(mid).tag < tag {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < u.entries.len() {
		if e := u.entries.at(lo); e.tag == tag && e.msg != nil {
			return lo
		}
	}
	return -1
}

// take removes the delivery with tag, and with cumulative every earlier one
// too, appending the removed messages in tag order to *out when out is not
// nil. It reports false, removing nothing, if tag is not unacknowledged.
func (u *unackedSet) take(tag uint64, cumulative bool, out *[]*Message) bool {
	i := u.index(tag)
	if i < 0 {
		return false
	}
	if cumulative {
		removed := 0
		for ; i >= 0; i-- {
			e := u.entries.popFront()
			if e.msg != nil {
				removed++
				u.bytes -= e.msg.Size()
				if out != nil {
					*out = append(*out, e.msg)
				}
			}
		}
		u.live -= removed
		u.limit.add(-removed)
		return true
	}
	e := u.entries.at(i)
	if out != nil {
		*out = append(*out, e.msg)
	}
	u.bytes -= e.msg.Size()
	e.msg = nil
	u.live--
	u.limit.add(-1)
	for u.entries.len() > 0 && u.entries.at(0).msg == nil {
		u.entries.popFront()
	}
	if dead := u.entries.len() - u.live; dead > tombstoneSlack && dead > u.live {
		u.compact()
	}
	return true
}

func (u *unackedSet) compact() {
	w := 0
	for r := 0; r < u.entries.len(); r++ {
		if e := *u.entries.at(r); e.msg != nil {
			*u.entries.at(w) = e
			w++
		}
	}
	u.entries.truncate(w)
}

// drain removes every delivery, appending the messages in tag order to *out
// when out is not nil.
func (u *unackedSet) drain(out *[]*Message) {
	if out != nil {
		for i := 0; i < u.entries.len(); i++ {
			if m := u.entries.at(i).msg; m != nil {
				*out = append(*out, m)
			}
		}
	}
	u.entries.reset()
	u.limit.add(-u.live)
	u.live = 0
	u.bytes = 0
}

// tagOf returns the tag of the oldest unacknowledged delivery of message id.
// It scans from the oldest entry because clients mostly acknowledge in order.
func (u *unackedSet) tagOf(id string) (uint64, bool) {
	for i := 0; i < u.entries.len(); i++ {
		if e := u.entries.at(i); e.msg != nil && e.msg.ID == id {
			return e.tag, true
		}
	}
	return 0, false
}
