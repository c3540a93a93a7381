package transport

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// SockJS frames, as the server writes them (sockjs-protocol 0.3): "o" opens a session, "h" is a
// heartbeat, a["m1","m2"] carries messages as JSON strings, and c[code,"reason"] closes the session.
var (
	sockjsOpenFrame      = []byte("o")
	sockjsHeartbeatFrame = []byte("h")
)

// errNotText is why appendSockJSString refused its input.
var errNotText = errors.New("transport: frame is not UTF-8 text")

// appendSockJSString appends p to b as a JSON string literal. Besides what JSON requires (quote,
// backslash, control characters) it escapes the characters that browsers or proxies are known to
// mangle or treat as line ends in a script response: C1 controls, the zero-width and bidirectional
// marks, the line and paragraph separators, U+FEFF and the specials block. p must be valid UTF-8:
// SockJS messages are JavaScript strings, so bytes that are not text cannot be carried faithfully, and
// errNotText is returned instead of altering them.
func appendSockJSString(b, p []byte) ([]byte, error) {
	b = append(b, '"')
	b, err := appendJSONText(b, p)
	if err != nil {
		return b, err
	}
	return append(b, '"'), nil
}

// appendJSONText appends p, escaped as appendSockJSString does, without the quotes.
func appendJSONText(b, p []byte) ([]byte, error) {
	start := 0
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			b = append(b, p[start:i]...)
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = appendUnicodeEscape(b, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			return b, errNotText
		}
		if sockjsEscaped(r) {
			b = append(b, p[start:i]...)
			b = appendUnicodeEscape(b, r)
			start = i + size
		}
		i += size
	}
	return append(b, p[start:]...), nil
}

// sockjsEscaped reports whether r, above ASCII, is written as a \u escape.
func sockjsEscaped(r rune) bool {
	switch {
	case r <= 0x9f, r == 0xad, r >= 0x600 && r <= 0x604, r == 0x70f, r == 0x17b4, r == 0x17b5,
		r >= 0x200c && r <= 0x200f, r >= 0x2028 && r <= 0x202f, r >= 0x2060 && r <= 0x206f,
		r == 0xfeff, r >= 0xfff0 && r <= 0xffff:
		return true
	}
	return false
}

func appendUnicodeEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// appendSockJSClose appends the close frame c[code,"reason"].
func appendSockJSClose(b []byte, code CloseCode, reason string) []byte {
	b = append(b, 'c', '[')
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ',')
	b, err := appendSockJSString(b, []byte(reason))
	if err != nil { // a reason is always text; keep the frame well formed if it is not
		b = append(b[:len(b)-1], `""`...)
	}
	return append(b, ']')
}

// decodeSockJSMessages decodes what a client sends: a JSON array of strings (xhr_send and, from
// sockjs-client, every WebSocket message) or a single JSON string (allowed over WebSocket). It calls f
// with each message's UTF-8 bytes, in order.
func decodeSockJSMessages(p []byte, f func(msg []byte)) error {
	p = trimJSONSpace(p)
	if len(p) == 0 {
		return errSockJSEmpty
	}
	if p[0] == '"' {
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return errSockJSBrokenJSON
		}
		f([]byte(s))
		return nil
	}
	var msgs []string
	if err := json.Unmarshal(p, &msgs); err != nil {
		return errSockJSBrokenJSON
	}
	for _, m := range msgs {
		f([]byte(m))
	}
	return nil
}

var (
	errSockJSEmpty      = errors.New("payload expected")
	errSockJSBrokenJSON = errors.New("broken JSON encoding: a JSON array of strings is expected")
)

func trimJSONSpace(p []byte) []byte {
	for len(p) > 0 && isJSONSpace(p[0]) {
		p = p[1:]
	}
	for len(p) > 0 && isJSONSpace(p[len(p)-1]) {
		p = p[:len(p)-1]
	}
	return p
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
