package natsengine

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
	"time"

	"github.com/stompd/stompd/broker"
)

// codecVersion is the first byte of every stored message; a message with another is refused as
// unreadable rather than misread. Version 2 adds the sender's user after Published; version 3 adds
// the message's offset (Message.Offset) after the user, and is written only for a message that has
// one (a stream destination's), so that every other message is written as version 2, byte for byte
// as before version 3. Versions 1 and 2, written before, are still read.
const (
	codecVersion   = 3
	codecVersionV2 = 2
	codecVersionV1 = 1
)

var errUnreadable = errors.New("natsengine: stored message unreadable")

// encodeMessage writes what the broker needs of m to rebuild it after a restart: ID, Destination,
// Published, the sender's user (the user-id header of its MESSAGE), its offset when it has one (a
// stream destination's MESSAGEs carry it, those of a durable subscription kept in a queue too),
// headers in order, and the body. The rest of Sender is not kept: it only decides read-only
// publishes. It allocates once, the exact size.
func encodeMessage(m *broker.Message) []byte {
	return appendMessage(make([]byte, 0, encodedSize(m, true)), m, true)
}

// encodeStreamMessage is encodeMessage for a message of a stored stream, whose offset is its
// JetStream sequence: without the offset (version 2, readable by older releases too).
func encodeStreamMessage(m *broker.Message) []byte {
	return appendMessage(make([]byte, 0, encodedSize(m, false)), m, false)
}

// encodedSize is the length of appendMessage's encoding of m, computed without encoding it.
func encodedSize(m *broker.Message, withOffset bool) int {
	n := 1 + stringSize(m.ID) + stringSize(m.Destination) + varintSize(m.Published.UnixNano()) +
		stringSize(m.Sender.User) + uvarintSize(uint64(len(m.Header))) + len(m.Body)
	if withOffset && m.Offset != 0 {
		n += uvarintSize(m.Offset)
	}
	for _, h := range m.Header {
		n += stringSize(h.Name) + stringSize(h.Value)
	}
	return n
}

// appendMessage appends encodeMessage's encoding of m to b: version 3 with the offset when withOffset
// is set and m has one, version 2 otherwise.
func appendMessage(b []byte, m *broker.Message, withOffset bool) []byte {
	withOffset = withOffset && m.Offset != 0
	if withOffset {
		b = append(b, codecVersion)
	} else {
		b = append(b, codecVersionV2)
	}
	b = appendString(b, m.ID)
	b = appendString(b, m.Destination)
	b = binary.AppendVarint(b, m.Published.UnixNano())
	b = appendString(b, m.Sender.User)
	if withOffset {
		b = binary.AppendUvarint(b, m.Offset)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for _, h := range m.Header {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	return append(b, m.Body...)
}

// appendMessageLen appends m's encoding prefixed by its length, as decoder.bytes reads it, for a
// cluster batch: without the offset (version 2), which the batch carries beside it. The length is
// computed first, so the message is encoded once, in place; b grows at most once.
func appendMessageLen(b []byte, m *broker.Message) []byte {
	n := encodedSize(m, false)
	b = slices.Grow(b, uvarintSize(uint64(n))+n)
	b = binary.AppendUvarint(b, uint64(n))
	return appendMessage(b, m, false)
}

// uvarintSize is the length of binary.AppendUvarint's encoding of v.
func uvarintSize(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// varintSize is the length of binary.AppendVarint's encoding of v.
func varintSize(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintSize(u)
}

// stringSize is the length of appendString's encoding of s.
func stringSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeMessage is encodeMessage's inverse. The message's body is a slice of p, which the caller must
// therefore not reuse.
func decodeMessage(p []byte) (*broker.Message, error) {
	if len(p) == 0 || p[0] < codecVersionV1 || p[0] > codecVersion {
		return nil, errUnreadable
	}
	d := decoder{p: p[1:]}
	m := &broker.Message{ID: d.string(), Destination: d.string()}
	m.Published = time.Unix(0, d.varint())
	if p[0] >= codecVersionV2 {
		m.Sender.User = d.string()
	}
	if p[0] >= codecVersion {
		m.Offset = d.uvarint()
	}
	if n := d.uvarint(); n > 0 && n <= uint64(len(d.p)) {
		m.Header = make([]broker.Header, n)
		for i := range m.Header {
			m.Header[i] = broker.Header{Name: d.string(), Value: d.string()}
		}
	} else if n > 0 {
		d.err = errUnreadable
	}
	if d.err != nil {
		return nil, d.err
	}
	m.Body = d.p
	return m, nil
}

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errUnreadable
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.err = errUnreadable
		return 0
	}
	d.p = d.p[n:]
	return v
}

// bytes returns the next length-prefixed field as a slice of the input, without copying.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.p)) {
		d.err = errUnreadable
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }
