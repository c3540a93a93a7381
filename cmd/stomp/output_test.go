package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

func testMessage(body string) *stomp.Message {
	h := frame.NewHeader("destination", "/topic/a", "subscription", "1", "message-id", "m-1", "x", "first", "x", "second")
	return &stomp.Message{Header: h, Body: []byte(body)}
}

func TestMessagePrinter(t *testing.T) {
	cases := []struct {
		name   string
		format outputFormat
		body   string
		want   string
	}{
		{name: "body gets a newline", format: formatBody, body: "hi", want: "hi\n"},
		{name: "body keeps its newline", format: formatBody, body: "hi\n", want: "hi\n"},
		{name: "empty body is an empty line", format: formatBody, body: "", want: "\n"},
		{name: "headers", format: formatHeaders, body: "hi",
			want: "destination:/topic/a\nsubscription:1\nmessage-id:m-1\nx:first\nx:second\n\nhi\n\n"},
		{name: "json keeps the first repeated header", format: formatJSON, body: "<b>",
			want: `{"destination":"/topic/a","subscription":"1","message_id":"m-1","headers":{"destination":"/topic/a","message-id":"m-1","subscription":"1","x":"first"},"body":"<b>"}` + "\n"},
		{name: "json binary body", format: formatJSON, body: "\xff\x00",
			want: `{"destination":"/topic/a","subscription":"1","message_id":"m-1","headers":{"destination":"/topic/a","message-id":"m-1","subscription":"1","x":"first"},"body_base64":"/wA="}` + "\n"},
		{name: "json empty body is a string", format: formatJSON, body: "",
			want: `{"destination":"/topic/a","subscription":"1","message_id":"m-1","headers":{"destination":"/topic/a","message-id":"m-1","subscription":"1","x":"first"},"body":""}` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &messagePrinter{w: &out, format: tc.format}
			if err := p.print(testMessage(tc.body)); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got  %q\nwant %q", out.String(), tc.want)
			}
		})
	}
}

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		url     string
		want    endpoint
		wantErr bool
	}{
		{url: "tcp://localhost", want: endpoint{address: "localhost:61613", host: "localhost", url: "tcp://localhost"}},
		{url: "tcp://h:1", want: endpoint{address: "h:1", host: "h", url: "tcp://h:1"}},
		{url: "tcps://h", want: endpoint{tls: true, address: "h:61614", host: "h", url: "tcps://h"}},
		{url: "ssl://[::1]:9", want: endpoint{tls: true, address: "[::1]:9", host: "::1", url: "ssl://[::1]:9"}},
		{url: "ws://h:8080/ws", want: endpoint{websocket: true, host: "h", url: "ws://h:8080/ws"}},
		{url: "wss://h/ws", want: endpoint{websocket: true, tls: true, host: "h", url: "wss://h/ws"}},
		{url: "http://h", wantErr: true},
		{url: "h:61613", wantErr: true},
		{url: "", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			got, err := parseEndpoint(tc.url)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestPacer(t *testing.T) {
	cases := []struct {
		name   string
		rate   float64
		burst  int
		stalls []time.Duration // extra time passing before each wait
		want   []time.Duration // sleep before each send
	}{
		{name: "steady", rate: 10, burst: 1, stalls: []time.Duration{0, 0, 0}, want: []time.Duration{0, 100 * time.Millisecond, 100 * time.Millisecond}},
		{name: "burst after start", rate: 10, burst: 3, stalls: []time.Duration{0, 0, 0, 0}, want: []time.Duration{0, 0, 0, 100 * time.Millisecond}},
		{name: "a stall banks at most the burst", rate: 10, burst: 2, stalls: []time.Duration{0, time.Second, 0, 0},
			want: []time.Duration{0, 0, 0, 100 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			var slept []time.Duration
			p := newPacer(tc.rate, tc.burst)
			p.now = func() time.Time { return now }
			p.sleep = func(_ context.Context, d time.Duration) error {
				slept[len(slept)-1] = d
				now = now.Add(d)
				return nil
			}
			for _, stall := range tc.stalls {
				now = now.Add(stall)
				slept = append(slept, 0)
				if err := p.wait(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if len(slept) != len(tc.want) {
				t.Fatalf("slept %v, want %v", slept, tc.want)
			}
			for i := range slept {
				if slept[i] != tc.want[i] {
					t.Fatalf("slept %v, want %v", slept, tc.want)
				}
			}
		})
	}
	if newPacer(0, 1) != nil {
		t.Error("rate 0 should give the nil pacer, which never waits")
	}
}

func TestErrorTap(t *testing.T) {
	// The ERROR arrives split across reads, with an escaped header under 1.2.
	stream := "CONNECTED\nversion:1.2\n\n\x00\n" +
		"MESSAGE\ndestination:/q\ncontent-length:3\n\na\x00b\x00" +
		"ERROR\nmessage:bad\\cthing\n\nsome\n  detail\x00"
	tap := newErrorTap(struct {
		io.Reader
		io.Writer
		io.Closer
	}{Reader: iotestHalfReader{bytes.NewReader([]byte(stream))}})
	got, err := io.ReadAll(tap)
	if err != nil || string(got) != stream {
		t.Fatalf("tap changed the stream: %q, %v", got, err)
	}
	be := tap.brokerError()
	if be == nil || be.Message != "bad:thing" || be.Detail != "some detail" {
		t.Fatalf("brokerError() = %+v", be)
	}
}

// iotestHalfReader returns at most 7 bytes a read, so that frames arrive in pieces.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) { return h.r.Read(p[:min(len(p), 7)]) }

func BenchmarkMessagePrinter(b *testing.B) {
	for _, f := range []struct {
		name   string
		format outputFormat
	}{{"body", formatBody}, {"headers", formatHeaders}, {"json", formatJSON}} {
		b.Run(f.name, func(b *testing.B) {
			m := testMessage(string(bytes.Repeat([]byte("x"), 128)))
			p := &messagePrinter{w: io.Discard, format: f.format}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.print(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
