package main

// A bench message's body starts with a stamp: the publisher id, the sequence number and the send
// time, in fixed-width lowercase hex separated by spaces, then padding up to -size. The stamp is
// ASCII so that the body travels in a WebSocket text message to any broker, and fixed-width so that
// writing and reading it is a few table look-ups:
//
//	ppppp ssssssssssss ttttttttttttt ....
//
// p: publisher id (up to 0xfffff), s: sequence number from 0 (up to 2^48-1), t: nanoseconds since
// the tool's clock started (up to 2^52-1, 52 days).
const (
	stampPubDigits  = 5
	stampSeqDigits  = 12
	stampTimeDigits = 13
	stampLen        = stampPubDigits + 1 + stampSeqDigits + 1 + stampTimeDigits + 1

	maxPublishers = 1 << (4 * stampPubDigits)
	maxSeq        = 1<<(4*stampSeqDigits) - 1
)

// stampPadding fills a body after its stamp; any ASCII would do.
const stampPadding = '.'

const hexDigits = "0123456789abcdef"

// hexValue maps a lowercase hex digit to its value and anything else to 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 16; i++ {
		t[hexDigits[i]] = byte(i)
	}
	return t
}()

// putStamp writes the stamp into b[:stampLen]; b must be at least that long.
func putStamp(b []byte, pub int, seq uint64, sentNanos int64) {
	_ = b[stampLen-1]
	putHex(b[:stampPubDigits], uint64(pub))
	b[stampPubDigits] = ' '
	putHex(b[stampPubDigits+1:stampPubDigits+1+stampSeqDigits], seq)
	b[stampPubDigits+1+stampSeqDigits] = ' '
	putHex(b[stampLen-1-stampTimeDigits:stampLen-1], uint64(sentNanos))
	b[stampLen-1] = ' '
}

// putHex writes v as len(b) hex digits, keeping the low-order ones when v is wider.
func putHex(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// parseStamp reads the stamp at the start of body. ok is false when body does not start with one.
func parseStamp(body []byte) (pub int, seq uint64, sentNanos int64, ok bool) {
	if len(body) < stampLen || body[stampPubDigits] != ' ' || body[stampPubDigits+1+stampSeqDigits] != ' ' || body[stampLen-1] != ' ' {
		return 0, 0, 0, false
	}
	p, okP := parseHex(body[:stampPubDigits])
	s, okS := parseHex(body[stampPubDigits+1 : stampPubDigits+1+stampSeqDigits])
	t, okT := parseHex(body[stampLen-1-stampTimeDigits : stampLen-1])
	if !okP || !okS || !okT {
		return 0, 0, 0, false
	}
	return int(p), s, int64(t), true
}

// parseHex reads fixed-width lowercase hex (at most 15 digits, so the result fits an int64).
func parseHex(b []byte) (uint64, bool) {
	var v uint64
	bad := byte(0)
	for _, c := range b {
		d := hexValue[c]
		bad |= d
		v = v<<4 | uint64(d&0xf)
	}
	return v, bad&0xf0 == 0
}
