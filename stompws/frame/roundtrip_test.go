package frame

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// AppendFrame then Feed must give back the frame, as far as the version can carry it.
func TestRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	headers := [][2]string{
		{"destination", "/queue/a"},
		{"line\nbreak", "a\nb\n"},
		{"co:lon", "x:y:z:"},
		{"back\\slash", "\\c\\\\"},
		{"carriage\rreturn", "e\rf"},
		{"ends in CR", "g\r"},
		{"everything \n:\\\r", "\r\n:\\ \\n \\c \\r"},
		{"empty", ""},
		{"foo", "first"},
		{"foo", "duplicate"},
	}
	bodies := map[string][]byte{"empty": nil, "text": []byte("hello"), "all byte values": all}

	for _, v := range []Version{V10, V11, V12} {
		for _, command := range []string{SEND, MESSAGE, ERROR, CONNECT, CONNECTED, STOMP} {
			for bodyName, body := range bodies {
				t.Run(v.String()+"/"+command+"/"+bodyName, func(t *testing.T) {
					var hs []Header
					want := frameEvent(command, string(body))
					for _, h := range headers {
						hs = append(hs, Header{Name: []byte(h[0]), Value: []byte(h[1])})
						want.Headers = append(want.Headers, [2]string{
							carried(v, command, h[0], true), carried(v, command, h[1], false)})
					}
					if len(body) > 0 {
						want.Headers = append(want.Headers, [2]string{"content-length", strconv.Itoa(len(body))})
					}

					wire := AppendFrame(nil, v, command, hs, body)
					p := NewParser(Limits{})
					p.SetVersion(v)
					got, err := feedChunks(p, wire)
					if err != nil || len(got) != 1 {
						t.Fatalf("parsing %q: %v, %v", wire, got, err)
					}
					if !reflect.DeepEqual(got[0], want) {
						t.Errorf("wire %q\n got %v\nwant %v", wire, got[0], want)
					}
				})
			}
		}
	}
}

// carried is what of s a header written and read under v survives: 1.0 and the handshake frames
// have no escapes, so CR and LF (and a colon in a name) become spaces; 1.1 cannot escape CR, so a
// CR that ends a value is taken for part of the line's CRLF; 1.2 carries everything.
func carried(v Version, command, s string, isName bool) string {
	switch {
	case v == V10 || isHandshake(command):
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
		if isName {
			s = strings.ReplaceAll(s, ":", " ")
		}
	case v == V11 && !isName:
		s = strings.TrimSuffix(s, "\r")
	}
	return s
}
