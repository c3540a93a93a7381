package frame

import (
	"bytes"
	"strconv"
)

// unescape undoes the header escapes of version v (V11 or V12) in place and returns the shortened
// slice. Any other backslash sequence, or a backslash that ends b, is ErrInvalidEscape: the
// specifications call such sequences fatal, and passing them through would let two peers read the
// same header differently.
func unescape(b []byte, v Version) ([]byte, error) {
	w := bytes.IndexByte(b, '\\')
	if w < 0 {
		return b, nil
	}
	for r := w; r < len(b); r++ {
		c := b[r]
		if c != '\\' {
			b[w] = c
			w++
			continue
		}
		r++
		if r == len(b) {
			return nil, &ParseError{Err: ErrInvalidEscape, Detail: "lone backslash at the end of a header"}
		}
		switch b[r] {
		case 'n':
			c = '\n'
		case 'c':
			c = ':'
		case '\\':
			c = '\\'
		case 'r':
			if v != V12 {
				return nil, &ParseError{Err: ErrInvalidEscape, Detail: `\r is not defined in STOMP ` + v.String()}
			}
			c = '\r'
		default:
			return nil, &ParseError{Err: ErrInvalidEscape,
				Detail: strconv.Quote(string(b[r-1:r+1])) + " is not defined in STOMP " + v.String()}
		}
		b[w] = c
		w++
	}
	return b[:w], nil
}

// appendEscaped appends s escaped for a header name (isName) or value under version v: 1.0 has no
// escapes, so the CR and LF it cannot carry, and a colon in a name, become spaces; 1.1 escapes LF,
// colon and backslash, and passes CR through; 1.2 escapes CR too.
func appendEscaped[T string | []byte](dst []byte, v Version, s T, isName bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch c := s[i]; {
		case c == '\n':
			esc = `\n`
		case c == '\r' && v == V11:
			continue
		case c == '\r':
			esc = `\r`
		case c == ':' && v == V10:
			if !isName {
				continue
			}
			esc = " "
		case c == ':':
			esc = `\c`
		case c == '\\' && v != V10:
			esc = `\\`
		default:
			continue
		}
		if v == V10 {
			esc = " "
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	return append(dst, s[start:]...)
}
