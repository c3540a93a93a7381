package frame

import (
	"strings"
	"testing"
)

// Every table case must give the same frames and the same error however its bytes are split
// across Feed calls.
func TestSplitFeeding(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)

			t.Run("byte by byte", func(t *testing.T) {
				chunks := make([][]byte, len(in))
				for i := range in {
					chunks[i] = in[i : i+1]
				}
				got, err := feedChunks(newCaseParser(tc), chunks...)
				checkResult(t, tc, got, err)
			})

			t.Run("every 2-way split", func(t *testing.T) {
				for i := 0; i <= len(in); i++ {
					got, err := feedChunks(newCaseParser(tc), in[:i], in[i:])
					if msg := mismatch(tc, got, err); msg != "" {
						t.Fatalf("split at %d, %q | %q: %s", i, in[:i], in[i:], msg)
					}
				}
			})
		})
	}
}

// A partial frame followed, in one Feed, by its end and further complete frames: the rest of that
// Feed must be parsed in place after the buffered frame is delivered.
func TestBufferedThenInPlace(t *testing.T) {
	frames := "SEND\ndestination:/a\ncontent-length:3\n\nab\x00\x00\nMESSAGE\nx:y\n\nz\x00ACK\nid:\\c\n\n\x00"
	want := []event{
		frameEvent(SEND, "ab\x00", "destination", "/a", "content-length", "3"),
		heartBeat(),
		frameEvent(MESSAGE, "z", "x", "y"),
		frameEvent(ACK, "", "id", ":"),
	}
	for _, cut := range []int{1, 10, 25, 38, 41, 42} {
		p := NewParser(Limits{})
		got, err := feedChunks(p, []byte(frames[:cut]), []byte(frames[cut:]))
		if err != nil || len(got) != len(want) {
			t.Fatalf("cut %d: %v, %v", cut, got, err)
		}
		for i := range want {
			if got[i].String() != want[i].String() {
				t.Errorf("cut %d: frame %d is %v, want %v", cut, i, got[i], want[i])
			}
		}
		if p.Buffered() != 0 {
			t.Errorf("cut %d: Buffered() = %d", cut, p.Buffered())
		}
	}
}

// Large frames split the way browser clients split them (16 KiB WebSocket messages).
func TestLargeFrameInPieces(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 40<<10) // 640 KiB
	tests := []struct {
		name string
		in   string
	}{
		{"with content-length", "SEND\ncontent-length:655360\n\n" + body + "\x00"},
		{"without content-length", "SEND\n\n" + body + "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(Limits{})
			var chunks [][]byte
			for rest := []byte(tt.in + tt.in); len(rest) > 0; {
				n := min(len(rest), 16<<10)
				chunks = append(chunks, rest[:n])
				rest = rest[n:]
			}
			got, err := feedChunks(p, chunks...)
			if err != nil || len(got) != 2 || got[0].Body != body || got[1].Body != body {
				t.Fatalf("got %d frames, error %v", len(got), err)
			}
			if cap(p.buf) > maxRetainedBufferBytes {
				t.Errorf("buffer of %d bytes kept after the large frame", cap(p.buf))
			}
		})
	}
}
