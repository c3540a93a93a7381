package broker

import (
	"sync/atomic"
	"time"
)

// Header is one application header of a message. Names may repeat; order is
// kept as published.
type Header struct{ Name, Value string }

// EncodedSlots is the number of cache slots [Message.Encoded] offers, so that
// a protocol layer can keep one encoding per protocol version or framing.
const EncodedSlots = 8

// Message is one published message. Build it, pass it to [Broker.Publish],
// and from then on treat it as immutable: every delivery, to every
// subscriber, shares the same *Message and the same Body. Publish fills ID,
// Kind and Published before any subscriber sees the message. A Message must
// not be copied by value after first use (its encoding cache is atomic).
type Message struct {
	// ID is set by Publish when empty, to "<node>-<seq>" (the broker's NodeID
	// and a per-broker counter), unique per broker.
	ID string
	// Destination is the exact destination published to; never a pattern.
	Destination string
	// Kind is set by Publish from Destination.
	Kind Kind
	// remote is set by PublishRemote and RestoreRetained: the message came
	// from another node or from a store, and is neither forwarded nor kept in
	// Options.Retained again.
	remote bool
	// size is Size, set by Publish; 0 until then. An int32 beside Kind, so that
	// the two share one word (a frame is far below 2 GiB).
	size int32
	// Header holds the application headers, in order.
	Header []Header
	// Body is shared by every delivery and must not be modified.
	Body []byte
	// Published is set by Publish to the current time when zero.
	Published time.Time
	// Sender is who published the message; the zero Identity is the
	// server. Publish checks it against ReadOnly policies; the broker does
	// not otherwise look at it.
	Sender Identity
	// Offset is set by Publish on a message to a stream destination (see
	// DestinationPolicy.Stream): its position in the stream, from 1. It is
	// 0 on every other message.
	Offset uint64

	encoded [EncodedSlots]atomic.Pointer[[]byte]
	stored  StoredRef // the Store's handle of a queue message read from it; nil otherwise
}

// Size is what the message holds that its publisher chose, in bytes: its
// body, destination and headers. Queue byte limits and the memory the broker
// reports holding count it. Publish computes it once, before any subscriber
// sees the message.
func (m *Message) Size() int {
	if m.size > 0 {
		return int(m.size)
	}
	return m.computeSize()
}

func (m *Message) computeSize() int {
	n := len(m.Body) + len(m.Destination)
	for _, h := range m.Header {
		n += len(h.Name) + len(h.Value)
	}
	return n
}

// Encoded returns the bytes cached in slot (0 ≤ slot < EncodedSlots; other
// values panic), calling build(m) to compute them on first use. Passing m lets
// callers use a function value that captures nothing, so a cache hit costs no
// allocation. It is safe for
// concurrent use: concurrent first callers may each call build, but all of
// them get the bytes of the one that was stored first. The returned slice is
// shared and must not be modified. A protocol layer uses it to encode the part
// of a frame that all subscribers share once per message.
func (m *Message) Encoded(slot int, build func(*Message) []byte) []byte {
	p := &m.encoded[slot]
	if b := p.Load(); b != nil {
		return *b
	}
	b := build(m)
	if p.CompareAndSwap(nil, &b) {
		return b
	}
	return *p.Load()
}
