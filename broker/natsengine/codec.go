package natsengine

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/stompd/stompd/broker"
)

// codecVersion is the first byte of every stored message; a message with another is refused as
// unreadable rather than misread. Version 2 adds the sender's user after Published; version 1
// messages, written before, are still read.
const (
	codecVersion   = 2
	codecVersionV1 = 1
)

var errUnreadable = errors.New("natsengine: stored message unreadable")

// encodeMessage writes what the broker needs of m to rebuild it after a restart: ID, Destination,
// Published, the sender's user (the user-id header of its MESSAGE), headers in order, and the body.
// The rest of Sender is not kept: it only decides read-only publishes.
func encodeMessage(m *broker.Message) []byte {
	n := 1 + 5*binary.MaxVarintLen64 + len(m.ID) + len(m.Destination) + len(m.Sender.User) + len(m.Body)
	for _, h := range m.Header {
		n += 2*binary.MaxVarintLen64 + len(h.Name) + len(h.Value)
	}
	return appendMessage(make([]byte, 0, n), m)
}

// appendMessage appends encodeMessage's encoding of m to b.
func appendMessage(b []byte, m *broker.Message) []byte {
	b = append(b, codecVersion)
	b = appendString(b, m.ID)
	b = appendString(b, m.Destination)
	b = binary.AppendVarint(b, m.Published.UnixNano())
	b = appendString(b, m.Sender.User)
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for _, h := range m.Header {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	return append(b, m.Body...)
}

// appendMessageLen appends m's encoding prefixed by its length, as decoder.bytes reads it.
func appendMessageLen(b []byte, m *broker.Message) []byte {
	start := len(b)
	b = binary.AppendUvarint(b, 0) // room for a one-byte length; moved if it needs more
	b = appendMessage(b, m)
	n := uint64(len(b) - start - 1)
	if n < 0x80 {
		b[start] = byte(n)
		return b
	}
	var lenBuf [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lenBuf[:], n)
	b = append(b, lenBuf[:k-1]...) // grow by the extra length bytes
	copy(b[start+k:], b[start+1:start+1+int(n)])
	copy(b[start:], lenBuf[:k])
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeMessage is encodeMessage's inverse. The message's body is a slice of p, which the caller must
// therefore not reuse.
func decodeMessage(p []byte) (*broker.Message, error) {
	if len(p) == 0 || (p[0] != codecVersion && p[0] != codecVersionV1) {
		return nil, errUnreadable
	}
	d := decoder{p: p[1:]}
	m := &broker.Message{ID: d.string(), Destination: d.string()}
	m.Published = time.Unix(0, d.varint())
	if p[0] >= 2 {
		m.Sender.User = d.string()
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
