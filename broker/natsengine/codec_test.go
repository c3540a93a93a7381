package natsengine

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stompd/stompd/broker"
)

// appendMessageV2 is the encoding written before version 3 (version 2), kept here to check that
// what was stored then is still read, and that messages without an offset are written as before.
func appendMessageV2(b []byte, m *broker.Message) []byte {
	b = append(b, 2)
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

// appendMessageLenV2 is appendMessageLen as it was before it computed the length first: encode, then
// move the encoding to make room for a length of more than one byte.
func appendMessageLenV2(b []byte, m *broker.Message) []byte {
	start := len(b)
	b = binary.AppendUvarint(b, 0)
	b = appendMessageV2(b, m)
	n := uint64(len(b) - start - 1)
	if n < 0x80 {
		b[start] = byte(n)
		return b
	}
	var lenBuf [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lenBuf[:], n)
	b = append(b, lenBuf[:k-1]...)
	copy(b[start+k:], b[start+1:start+1+int(n)])
	copy(b[start:], lenBuf[:k])
	return b
}

// codecSamples are messages of every shape the codec meets. (A zero Published, which Publish never
// leaves, is not read back as zero.)
func codecSamples() []*broker.Message {
	hdr := []broker.Header{{Name: "a", Value: "1"}, {Name: "a", Value: ""}, {Name: "content-type", Value: "text/plain; charset=utf-8"}}
	return []*broker.Message{
		{},
		{ID: "m-1", Destination: "/topic/x"},
		{ID: "m-2", Destination: "/queue/x", Body: []byte{0, 1, 2, 0xff}, Header: hdr, Published: time.Unix(1, 2)},
		{ID: "m-3", Destination: "/topic/log.a", Body: []byte("body"), Published: time.Unix(1700000000, 123456789),
			Sender: broker.Identity{User: "alice"}, Offset: 1},
		{ID: "m-4", Destination: "/topic/log.a", Header: hdr, Sender: broker.Identity{User: "bob"}, Offset: 1 << 40,
			Published: time.Unix(-5, 0)},
		{ID: "m-5", Destination: "/topic/big", Body: bytes.Repeat([]byte("b"), 100), Header: hdr, Offset: 127},
		{ID: "m-6", Destination: "/topic/big", Body: bytes.Repeat([]byte("b"), 20000), Sender: broker.Identity{User: "u"}, Offset: 128},
		{ID: strings.Repeat("i", 300), Destination: "/topic/" + strings.Repeat("d", 200), Body: bytes.Repeat([]byte{7}, 1<<20),
			Header: []broker.Header{{Name: strings.Repeat("n", 200), Value: strings.Repeat("v", 20000)}}, Published: time.Unix(0, 0)},
	}
}

// A stream message keeps its offset in the store (version 3); every other message is written as
// version 2 was, byte for byte, and what versions 1 and 2 wrote is still read.
func TestCodecOffset(t *testing.T) {
	for i, m := range codecSamples() {
		enc := encodeMessage(m)
		back, err := decodeMessage(enc)
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if back.Offset != m.Offset || back.ID != m.ID || back.Destination != m.Destination || back.Sender.User != m.Sender.User ||
			(!m.Published.IsZero() && !back.Published.Equal(m.Published)) || !bytes.Equal(back.Body, m.Body) || len(back.Header) != len(m.Header) {
			t.Errorf("sample %d: decoded offset %d user %q, want %d %q", i, back.Offset, back.Sender.User, m.Offset, m.Sender.User)
		}
		if m.Offset == 0 && !bytes.Equal(enc, appendMessageV2(nil, m)) {
			t.Errorf("sample %d: a message without an offset is not written as version 2 was", i)
		}
		if m.Offset != 0 && enc[0] != codecVersion {
			t.Errorf("sample %d: version %d, want %d", i, enc[0], codecVersion)
		}
		if len(enc) != encodedSize(m, true) || cap(enc) != len(enc) {
			t.Errorf("sample %d: encodedSize %d, encoded %d (capacity %d)", i, encodedSize(m, true), len(enc), cap(enc))
		}
		// Stored by version 2: read, with no offset.
		old, err := decodeMessage(appendMessageV2(nil, m))
		if err != nil || old.Offset != 0 || old.Sender.User != m.Sender.User || !bytes.Equal(old.Body, m.Body) {
			t.Errorf("sample %d: version 2 encoding read as %+v, %v", i, old, err)
		}
	}
	// Version 1: no user.
	v1 := []byte{1, 1, 'i', 1, 'd', 4, 0, 'b', 'o', 'd', 'y'}
	if m, err := decodeMessage(v1); err != nil || m.ID != "i" || m.Destination != "d" || m.Published.UnixNano() != 2 || string(m.Body) != "body" {
		t.Errorf("version 1 read as %+v, %v", m, err)
	}
	for _, bad := range [][]byte{{0}, {4, 0, 0, 0, 0, 0}, {3, 0, 0, 0, 0}} {
		if _, err := decodeMessage(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// appendMessageLen writes what it wrote when it moved the encoding to make room for the length:
// the cluster's batches cross between nodes of different versions, and carry the offset themselves.
func TestAppendMessageLenUnchanged(t *testing.T) {
	for i, m := range codecSamples() {
		got := appendMessageLen([]byte("prefix"), m)
		want := appendMessageLenV2([]byte("prefix"), m)
		if !bytes.Equal(got, want) {
			t.Errorf("sample %d: %d bytes, differing from the %d written before", i, len(got), len(want))
		}
		d := decoder{p: got[len("prefix"):]}
		back, err := decodeMessage(d.bytes())
		if err != nil || d.err != nil || len(d.p) != 0 || back.Offset != 0 || !bytes.Equal(back.Body, m.Body) {
			t.Errorf("sample %d: read back %v %v, %d left, offset %d", i, err, d.err, len(d.p), back.Offset)
		}
		if n := len(appendMessage(nil, m, false)); n != encodedSize(m, false) {
			t.Errorf("sample %d: encodedSize %d, encoded %d", i, encodedSize(m, false), n)
		}
		if bound := encodedBound(m); bound < len(got)-len("prefix")+binary.MaxVarintLen64 {
			t.Errorf("sample %d: encodedBound %d below the %d a batch takes", i, bound, len(got)-len("prefix"))
		}
	}
}

// No allocation when the buffer has room: the batch buffers are recycled.
func TestAppendMessageLenAllocs(t *testing.T) {
	m := codecSamples()[6]
	buf := make([]byte, 0, 64<<10)
	if n := testing.AllocsPerRun(100, func() { buf = appendMessageLen(buf[:0], m) }); n != 0 {
		t.Errorf("%v allocations per message", n)
	}
}
