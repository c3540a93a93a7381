package frame

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// event is a parser callback copied out of parser memory: a heart-beat or a frame.
type event struct {
	HeartBeat bool
	Command   string
	Headers   [][2]string
	Body      string
}

func (e event) String() string {
	if e.HeartBeat {
		return "heart-beat"
	}
	return fmt.Sprintf("%s %q %q", e.Command, e.Headers, e.Body)
}

func heartBeat() event { return event{HeartBeat: true} }

// frameEvent builds the expected frame; kv alternates header names and values.
func frameEvent(command, body string, kv ...string) event {
	e := event{Command: command, Body: body}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Headers = append(e.Headers, [2]string{kv[i], kv[i+1]})
	}
	return e
}

func snapshot(f *Frame) event {
	if f == nil {
		return heartBeat()
	}
	e := event{Command: f.Command, Body: string(f.Body)}
	for _, h := range f.Headers {
		e.Headers = append(e.Headers, [2]string{string(h.Name), string(h.Value)})
	}
	return e
}

// feedChunks feeds copies of the chunks (Feed may rewrite its input) to p and returns what was
// emitted and the first error.
func feedChunks(p *Parser, chunks ...[]byte) ([]event, error) {
	var got []event
	emit := func(f *Frame) error {
		got = append(got, snapshot(f))
		return nil
	}
	for _, c := range chunks {
		if err := p.Feed(append([]byte(nil), c...), emit); err != nil {
			return got, err
		}
	}
	return got, nil
}

type parseCase struct {
	name    string
	version Version // 0: leave the parser's default
	limits  Limits
	in      string
	want    []event
	err     error // sentinel expected after the events in want
}

// parseCases are shared by the one-shot, split-feeding and fuzz-seed tests.
var parseCases = []parseCase{
	{name: "LF", in: "SEND\ndestination:/queue/a\n\nhello\x00",
		want: []event{frameEvent(SEND, "hello", "destination", "/queue/a")}},
	{name: "CRLF", in: "SEND\r\ndestination:/queue/a\r\nreceipt:7\r\n\r\nhello\x00",
		want: []event{frameEvent(SEND, "hello", "destination", "/queue/a", "receipt", "7")}},
	{name: "mixed EOLs", in: "MESSAGE\r\na:1\nb:2\r\n\nx\x00",
		want: []event{frameEvent(MESSAGE, "x", "a", "1", "b", "2")}},
	{name: "no headers, empty body", in: "DISCONNECT\n\n\x00",
		want: []event{frameEvent(DISCONNECT, "")}},
	{name: "CR inside a value kept, only the CR of CRLF stripped", in: "SEND\na:x\ry\r\r\n\n\x00",
		want: []event{frameEvent(SEND, "", "a", "x\ry\r")}},
	{name: "raw colons in a value", in: "SEND\nurl:http://x:80/\n\n\x00",
		want: []event{frameEvent(SEND, "", "url", "http://x:80/")}},
	{name: "empty value", in: "SEND\na:\n\n\x00",
		want: []event{frameEvent(SEND, "", "a", "")}},
	{name: "duplicate headers kept in order", in: "MESSAGE\nfoo:first\nbar:x\nfoo:second\n\n\x00",
		want: []event{frameEvent(MESSAGE, "", "foo", "first", "bar", "x", "foo", "second")}},
	{name: "V12 escapes", in: "SEND\nk\\c\\\\:a\\r\\n\\cb\\\\\n\n\x00",
		want: []event{frameEvent(SEND, "", "k:\\", "a\r\n:b\\")}},
	{name: "V11 escapes", version: V11, in: "SEND\nk\\c:a\\n\\c\\\\\n\n\x00",
		want: []event{frameEvent(SEND, "", "k:", "a\n:\\")}},
	{name: "V11 rejects \\r", version: V11, in: "SEND\na:\\r\n\n\x00", err: ErrInvalidEscape},
	{name: "V10 never unescapes", version: V10, in: "SEND\na\\c:b\\t\\\n\n\x00",
		want: []event{frameEvent(SEND, "", "a\\c", "b\\t\\")}},
	{name: "CONNECT never unescaped", in: "CONNECT\nlogin:a\\cb\npasscode:p\\t\\\n\n\x00",
		want: []event{frameEvent(CONNECT, "", "login", "a\\cb", "passcode", "p\\t\\")}},
	{name: "STOMP never unescaped", in: "STOMP\nhost:\\n\n\n\x00",
		want: []event{frameEvent(STOMP, "", "host", "\\n")}},
	{name: "CONNECTED never unescaped", version: V11, in: "CONNECTED\nserver:a\\r\n\n\x00",
		want: []event{frameEvent(CONNECTED, "", "server", "a\\r")}},
	{name: "body with NULs and content-length", in: "SEND\ncontent-length:5\n\na\x00b\x00c\x00",
		want: []event{frameEvent(SEND, "a\x00b\x00c", "content-length", "5")}},
	{name: "content-length 0", in: "SEND\ncontent-length:0\n\n\x00",
		want: []event{frameEvent(SEND, "", "content-length", "0")}},
	{name: "content-length leading zeros", in: "SEND\ncontent-length:003\n\nabc\x00",
		want: []event{frameEvent(SEND, "abc", "content-length", "003")}},
	{name: "first content-length wins", in: "SEND\ncontent-length:2\ncontent-length:junk\n\nab\x00",
		want: []event{frameEvent(SEND, "ab", "content-length", "2", "content-length", "junk")}},
	{name: "body without content-length ends at first NUL", in: "SEND\n\nab\x00SEND\n\ncd\x00",
		want: []event{frameEvent(SEND, "ab"), frameEvent(SEND, "cd")}},
	{name: "heart-beats before and between frames", in: "\n\r\nACK\nid:1\n\n\x00\n\nNACK\nid:2\n\n\x00\r\n",
		want: []event{heartBeat(), heartBeat(), frameEvent(ACK, "", "id", "1"), heartBeat(), heartBeat(),
			frameEvent(NACK, "", "id", "2"), heartBeat()}},
	{name: "several frames", in: "BEGIN\ntransaction:t\n\n\x00SEND\ntransaction:t\ncontent-length:1\n\n\x00\x00COMMIT\ntransaction:t\n\n\x00",
		want: []event{frameEvent(BEGIN, "", "transaction", "t"),
			frameEvent(SEND, "\x00", "transaction", "t", "content-length", "1"),
			frameEvent(COMMIT, "", "transaction", "t")}},
	{name: "every command", in: "CONNECT\n\n\x00STOMP\n\n\x00CONNECTED\n\n\x00SEND\n\n\x00SUBSCRIBE\n\n\x00" +
		"UNSUBSCRIBE\n\n\x00ACK\n\n\x00NACK\n\n\x00BEGIN\n\n\x00COMMIT\n\n\x00ABORT\n\n\x00DISCONNECT\n\n\x00" +
		"MESSAGE\n\n\x00RECEIPT\n\n\x00ERROR\n\n\x00",
		want: []event{frameEvent(CONNECT, ""), frameEvent(STOMP, ""), frameEvent(CONNECTED, ""),
			frameEvent(SEND, ""), frameEvent(SUBSCRIBE, ""), frameEvent(UNSUBSCRIBE, ""), frameEvent(ACK, ""),
			frameEvent(NACK, ""), frameEvent(BEGIN, ""), frameEvent(COMMIT, ""), frameEvent(ABORT, ""),
			frameEvent(DISCONNECT, ""), frameEvent(MESSAGE, ""), frameEvent(RECEIPT, ""), frameEvent(ERROR, "")}},

	{name: "lower-case command", in: "send\n\n\x00", err: ErrInvalidCommand},
	{name: "unknown command after a frame", in: "SEND\n\n\x00FOO\n\n\x00",
		want: []event{frameEvent(SEND, "")}, err: ErrInvalidCommand},
	{name: "command with trailing space", in: "SEND \n\n\x00", err: ErrInvalidCommand},
	{name: "command with two CRs", in: "SEND\r\r\n\n\x00", err: ErrInvalidCommand},
	{name: "lone CR is not a heart-beat", in: "\rSEND\n\n\x00", err: ErrInvalidCommand},
	{name: "header without colon", in: "SEND\nnocolon\n\n\x00", err: ErrMalformedHeader},
	{name: "header with empty name", in: "SEND\n:value\n\n\x00", err: ErrMalformedHeader},
	{name: "undefined escape", in: "SEND\na:\\t\n\n\x00", err: ErrInvalidEscape},
	{name: "undefined escape in a name", in: "SEND\n\\x:a\n\n\x00", err: ErrInvalidEscape},
	{name: "lone trailing backslash", in: "SEND\na:b\\\n\n\x00", err: ErrInvalidEscape},
	{name: "content-length not a number", in: "SEND\ncontent-length:12a\n\n\x00", err: ErrBadContentLength},
	{name: "content-length empty", in: "SEND\ncontent-length:\n\n\x00", err: ErrBadContentLength},
	{name: "content-length negative", in: "SEND\ncontent-length:-1\n\n\x00", err: ErrBadContentLength},
	{name: "content-length with sign", in: "SEND\ncontent-length:+1\n\n\x00", err: ErrBadContentLength},
	{name: "content-length with spaces", in: "SEND\ncontent-length: 1\n\nx\x00", err: ErrBadContentLength},
	{name: "content-length escaped in 1.2 is still checked", in: "SEND\ncontent-length:1\\n\n\nx\x00", err: ErrBadContentLength},
	{name: "content-length too short", in: "SEND\ncontent-length:1\n\nab\x00", err: ErrContentLengthMismatch},
	{name: "content-length 4 GiB", in: "SEND\ncontent-length:4294967296\n", err: ErrFrameTooLarge},
	{name: "content-length huge", in: "SEND\ncontent-length:99999999999999999999999999999\n", err: ErrFrameTooLarge},
	{name: "content-length over the frame limit", limits: Limits{MaxFrameBytes: 64},
		in: "SEND\ncontent-length:41\n\n" + strings.Repeat("x", 41) + "\x00", err: ErrFrameTooLarge},
	{name: "content-length pushed over the frame limit by later headers", limits: Limits{MaxFrameBytes: 64},
		in: "SEND\ncontent-length:40\na:b\n\n" + strings.Repeat("x", 40) + "\x00", err: ErrFrameTooLarge},
	{name: "content-length at the frame limit", limits: Limits{MaxFrameBytes: 64},
		in:   "SEND\ncontent-length:40\n\n" + strings.Repeat("x", 40) + "\x00", // 5+18+1+40 = 64
		want: []event{frameEvent(SEND, strings.Repeat("x", 40), "content-length", "40")}},
	{name: "body over the frame limit", limits: Limits{MaxFrameBytes: 16},
		in: "SEND\n\n" + strings.Repeat("x", 11) + "\x00", err: ErrFrameTooLarge},
	{name: "body at the frame limit", limits: Limits{MaxFrameBytes: 16},
		in: "SEND\n\n" + strings.Repeat("x", 10) + "\x00", want: []event{frameEvent(SEND, strings.Repeat("x", 10))}},
	{name: "headers over the frame limit", limits: Limits{MaxFrameBytes: 16},
		in: "SEND\naaaaaa:bbbbbb\n\n\x00", err: ErrFrameTooLarge},
	{name: "too many headers", limits: Limits{MaxHeaders: 2}, in: "SEND\na:1\nb:2\nc:3\n\n\x00", err: ErrTooManyHeaders},
	{name: "headers at the count limit", limits: Limits{MaxHeaders: 2}, in: "SEND\na:1\nb:2\n\n\x00",
		want: []event{frameEvent(SEND, "", "a", "1", "b", "2")}},
	{name: "header line too long", limits: Limits{MaxHeaderBytes: 8}, in: "SEND\nabcd:12345\n\n\x00", err: ErrHeaderTooLong},
	{name: "header line at the limit with CRLF", limits: Limits{MaxHeaderBytes: 8}, in: "SEND\nabcd:123\r\n\n\x00",
		want: []event{frameEvent(SEND, "", "abcd", "123")}},
	{name: "command line too long", limits: Limits{MaxHeaderBytes: 8}, in: "UNSUBSCRIBE\n\n\x00", err: ErrHeaderTooLong},
	{name: "endless command line", limits: Limits{MaxHeaderBytes: 8}, in: strings.Repeat("A", 100), err: ErrHeaderTooLong},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newCaseParser(tc)
			got, err := feedChunks(p, []byte(tc.in))
			checkResult(t, tc, got, err)
		})
	}
}

func newCaseParser(tc parseCase) *Parser {
	p := NewParser(tc.limits)
	if tc.version != 0 {
		p.SetVersion(tc.version)
	}
	return p
}

func checkResult(t *testing.T, tc parseCase, got []event, err error) {
	t.Helper()
	if msg := mismatch(tc, got, err); msg != "" {
		t.Error(msg)
	}
}

// mismatch describes how got and err differ from what tc expects, or returns "".
func mismatch(tc parseCase, got []event, err error) string {
	if !reflect.DeepEqual(got, tc.want) {
		return fmt.Sprintf("events:\n got %v\nwant %v", got, tc.want)
	}
	switch {
	case tc.err == nil && err != nil:
		return fmt.Sprintf("unexpected error %v", err)
	case tc.err != nil && !errors.Is(err, tc.err):
		return fmt.Sprintf("error %v, want %v", err, tc.err)
	case tc.err != nil:
		var pe *ParseError
		if !errors.As(err, &pe) {
			return fmt.Sprintf("error %T is not a *ParseError", err)
		}
	}
	return ""
}

func TestFrameGet(t *testing.T) {
	p := NewParser(Limits{})
	var checked bool
	err := p.Feed([]byte("MESSAGE\nfoo:first\nbar:\nfoo:second\n\n\x00"), func(f *Frame) error {
		checked = true
		tests := []struct {
			name  string
			value string
			ok    bool
		}{
			{"foo", "first", true},
			{"bar", "", true},
			{"baz", "", false},
			{"FOO", "", false},
		}
		for _, tt := range tests {
			v, ok := f.Get(tt.name)
			if string(v) != tt.value || ok != tt.ok {
				t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.name, v, ok, tt.value, tt.ok)
			}
			if f.Has(tt.name) != tt.ok {
				t.Errorf("Has(%q) = %v", tt.name, !tt.ok)
			}
		}
		return nil
	})
	if err != nil || !checked {
		t.Fatalf("Feed: %v, frame seen: %v", err, checked)
	}
}

func TestSetVersionInsideEmit(t *testing.T) {
	tests := []struct {
		name string
		to   Version
		want []event
		err  error
	}{
		{name: "to 1.0", to: V10, want: []event{frameEvent(CONNECT, "", "accept-version", "1.0"),
			frameEvent(SEND, "", "h", "a\\cb\\r")}},
		{name: "to 1.1", to: V11, want: []event{frameEvent(CONNECT, "", "accept-version", "1.0")}, err: ErrInvalidEscape},
		{name: "to 1.2", to: V12, want: []event{frameEvent(CONNECT, "", "accept-version", "1.0"),
			frameEvent(SEND, "", "h", "a:b\r")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "CONNECT\naccept-version:1.0\n\n\x00SEND\nh:a\\cb\\r\n\n\x00"
			// Every split: the CONNECT may be delivered from Feed's argument or from the buffer.
			for cut := 0; cut <= len(in); cut++ {
				p := NewParser(Limits{})
				var got []event
				emit := func(f *Frame) error {
					if f.Command == CONNECT {
						p.SetVersion(tt.to)
					}
					got = append(got, snapshot(f))
					return nil
				}
				err := p.Feed([]byte(in[:cut]), emit)
				if err == nil {
					err = p.Feed([]byte(in[cut:]), emit)
				}
				if !reflect.DeepEqual(got, tt.want) || !errors.Is(err, tt.err) {
					t.Fatalf("split at %d: got %v, %v; want %v, %v", cut, got, err, tt.want, tt.err)
				}
			}
		})
	}
}

func TestSetVersionKeepsFrameInProgress(t *testing.T) {
	p := NewParser(Limits{})
	got, err := feedChunks(p, []byte("SEND\na:\\c"))
	if err != nil || len(got) != 0 {
		t.Fatalf("first half: %v %v", got, err)
	}
	// The frame's command line was read as 1.2; its remaining headers stay 1.2.
	p.SetVersion(V10)
	got, err = feedChunks(p, []byte("\nb:\\r\n\n\x00SEND\nc:\\c\n\n\x00"))
	want := []event{frameEvent(SEND, "", "a", ":", "b", "\r"), frameEvent(SEND, "", "c", "\\c")}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

func TestErrorIsSticky(t *testing.T) {
	p := NewParser(Limits{})
	_, err := feedChunks(p, []byte("SEND\nbad\n\n\x00"))
	if !errors.Is(err, ErrMalformedHeader) {
		t.Fatalf("first error %v", err)
	}
	got, again := feedChunks(p, []byte("SEND\n\n\x00"))
	if again != err || len(got) != 0 {
		t.Fatalf("after error: events %v, error %v; want none and the same error", got, again)
	}
	if p.Buffered() != 0 {
		t.Errorf("Buffered() = %d after error", p.Buffered())
	}

	p.Reset()
	got, err = feedChunks(p, []byte("SEND\n\n\x00"))
	if err != nil || !reflect.DeepEqual(got, []event{frameEvent(SEND, "")}) {
		t.Fatalf("after Reset: %v, %v", got, err)
	}
}

func TestEmitError(t *testing.T) {
	stop := errors.New("stop")
	tests := []struct {
		name   string
		chunks []string
	}{
		{"in one Feed", []string{"SEND\n\n\x00\nSEND\n\n\x00"}},
		{"buffered frame", []string{"SE", "ND\n\n\x00\nSEND\n\n\x00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(Limits{})
			calls := 0
			emit := func(f *Frame) error {
				calls++
				return stop
			}
			var err error
			for _, c := range tt.chunks {
				if err = p.Feed([]byte(c), emit); err != nil {
					break
				}
			}
			if err != stop || calls != 1 {
				t.Fatalf("err %v after %d calls; want %v after 1", err, calls, stop)
			}
			if err := p.Feed([]byte("SEND\n\n\x00"), emit); err != stop || calls != 1 {
				t.Fatalf("later Feed: %v after %d calls", err, calls)
			}
		})
	}
}

func TestResetDropsPartialFrame(t *testing.T) {
	p := NewParser(Limits{})
	p.SetVersion(V10)
	if _, err := feedChunks(p, []byte("SEND\nhalf")); err != nil || p.Buffered() == 0 {
		t.Fatalf("partial frame: %v, Buffered() = %d", err, p.Buffered())
	}
	p.Reset()
	if p.Buffered() != 0 {
		t.Fatalf("Buffered() = %d after Reset", p.Buffered())
	}
	got, err := feedChunks(p, []byte("SEND\na:\\c\n\n\x00"))
	want := []event{frameEvent(SEND, "", "a", ":")} // back to 1.2
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

func TestCommandIsTheConstant(t *testing.T) {
	p := NewParser(Limits{})
	err := p.Feed([]byte("SUBSCRIBE\n\n\x00"), func(f *Frame) error {
		if f.Command != SUBSCRIBE || !sameString(f.Command, SUBSCRIBE) {
			t.Errorf("command %q does not share the constant's memory", f.Command)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&ParseError{Err: ErrFrameTooLarge, Detail: "limit is 4194304 bytes"}, "frame too large: limit is 4194304 bytes"},
		{&ParseError{Err: ErrInvalidCommand}, "invalid command"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}

	p := NewParser(Limits{})
	_, err := feedChunks(p, []byte("SEND\n"+strings.Repeat("a", 200<<10)))
	if want := "header line too long: limit is 102400 bytes"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		v  Version
		s  string
		ok bool
	}{
		{V10, "1.0", true},
		{V11, "1.1", true},
		{V12, "1.2", true},
		{0, "1.3", false},
		{0, "", false},
		{0, "1.2 ", false},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			v, ok := ParseVersion(tt.s)
			if v != tt.v || ok != tt.ok {
				t.Errorf("ParseVersion(%q) = %v, %v", tt.s, v, ok)
			}
			if ok && v.String() != tt.s {
				t.Errorf("String() = %q", v.String())
			}
		})
	}
	if got := Version(9).String(); got != "Version(9)" {
		t.Errorf("Version(9).String() = %q", got)
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Limits
		want Limits
	}{
		{"zero", Limits{}, Limits{4 << 20, 1000, 100 << 10}},
		{"negative", Limits{-1, -1, -1}, Limits{4 << 20, 1000, 100 << 10}},
		{"set", Limits{10, 20, 30}, Limits{10, 20, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.WithDefaults(); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSteadyStateAllocations(t *testing.T) {
	frames := [][]byte{
		[]byte(sendFrame),
		[]byte("\nMESSAGE\r\ndestination:/topic/a\r\nmessage-id:1\r\nsubscription:0\r\n\r\nbody\x00\n"),
	}
	for i, in := range frames {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p := NewParser(Limits{})
			emit := func(f *Frame) error { return nil }
			split := len(in) / 3
			allocs := testing.AllocsPerRun(100, func() {
				if err := p.Feed(in, emit); err != nil {
					t.Fatal(err)
				}
				if err := p.Feed(in[:split], emit); err != nil {
					t.Fatal(err)
				}
				if err := p.Feed(in[split:], emit); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per run, want 0", allocs)
			}
		})
	}
}

// sameString reports whether a and b share their bytes, not merely their contents.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}
