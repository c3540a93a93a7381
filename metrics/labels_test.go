package metrics

import "testing"

func TestLabelNames(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"transport", TransportTCP.String(), "tcp"},
		{"close reason", CloseWriteTimeout.String(), "write_timeout"},
		{"handshake failure", HandshakeBadRequest.String(), "bad_request"},
		{"command", CommandUnsubscribe.String(), "UNSUBSCRIBE"},
		{"heartbeat", CommandHeartbeat.String(), "HEARTBEAT"},
		{"kind", KindReplyQueue.String(), "reply_queue"},
		{"drop reason", DropDroppedOldest.String(), "dropped_oldest"},
		{"error reason", ErrorFrameTooLarge.String(), "frame_too_large"},
		{"out of range", Kind(9).String(), "Kind(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestParseCommand(t *testing.T) {
	for c := range numCommands {
		t.Run(c.String(), func(t *testing.T) {
			got, ok := ParseCommand(c.String())
			if !ok || got != c {
				t.Errorf("ParseCommand(%q) = %v, %v; want %v, true", c.String(), got, ok, c)
			}
		})
	}
	for _, bad := range []string{"", "send", "CONNECTX", "Command(3)"} {
		t.Run("reject "+bad, func(t *testing.T) {
			if c, ok := ParseCommand(bad); ok {
				t.Errorf("ParseCommand(%q) = %v, true; want false", bad, c)
			}
		})
	}
}

func TestParseCommandAllocatesNothing(t *testing.T) {
	name := string([]byte("DISCONNECT")) // not the constant's backing array
	if n := testing.AllocsPerRun(100, func() { ParseCommand(name) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
