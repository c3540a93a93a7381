package main

import (
	"net"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3/server"
)

// goStompServerTop is where the request loop of go-stomp's server waits forever: it has no way to
// stop, so TestMain lets it outlive the tests.
const goStompServerTop = "github.com/go-stomp/stomp/v3/server.(*requestProcessor).Serve"

// startGoStompServer serves go-stomp's own broker (v3.1.3) over TCP until the test ends and
// returns its URL. Unlike stompd and RabbitMQ it never answers a SUBSCRIBE's receipt, and it
// mishandles ACKs.
func startGoStompServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &server.Server{Log: silentLogger{}}
	go func() { _ = s.Serve(ln) }()
	return "tcp://" + ln.Addr().String()
}

func TestBenchGoStompServer(t *testing.T) {
	// Every scenario runs against a broker that answers no SUBSCRIBE receipt. The queue consumers
	// fall back to ack:auto there, and say so.
	url := startGoStompServer(t)
	cases := []struct {
		scenario string
		args     []string
		note     string // on stderr
	}{
		{scenario: "fanout", args: []string{"-subscribers", "3"}},
		{scenario: "fanin", args: []string{"-publishers", "3"}},
		{scenario: "pairs", args: []string{"-pairs", "3"}},
		{scenario: "queue", args: []string{"-producers", "2", "-consumers", "2"}, note: "stomp bench: note: the broker is go-stomp's server, which mishandles ACKs"},
		{scenario: "latency", args: []string{"-subscribers", "3", "-rate", "200"}},
		{scenario: "idle", args: []string{"-connections", "20", "-hold", "200ms"}},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			args := append(append([]string{"bench", tc.scenario, "-url", url, "-timeout", "15s"}, quickBench...), tc.args...)
			r := runStomp(t, "", nil, args...)
			mustSucceed(t, r, "bench")
			rep := decodeReport(t, r)
			if rep.Lost != 0 || rep.Duplicated != 0 || rep.OutOfOrder != 0 || rep.Errors != 0 {
				t.Errorf("lost %d duplicated %d out of order %d errors %d; want none", rep.Lost, rep.Duplicated, rep.OutOfOrder, rep.Errors)
			}
			if tc.scenario != "idle" && rep.Delivered <= 0 {
				t.Errorf("delivered %d: want traffic", rep.Delivered)
			}
			if tc.note == "" && r.stderr != "" || !strings.Contains(r.stderr, tc.note) {
				t.Errorf("stderr %q, want %q", r.stderr, tc.note)
			}
		})
	}
}
