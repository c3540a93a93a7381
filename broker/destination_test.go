package broker

import (
	"errors"
	"testing"
)

func TestParseDestination(t *testing.T) {
	tests := []struct {
		dest string
		kind Kind
		err  error
	}{
		{"/topic/a", KindTopic, nil},
		{"/topic/stocks.eur.usd", KindTopic, nil},
		{"/topic/a/b.c", KindTopic, nil},
		{"/topic/a*", KindTopic, nil},
		{"/topic/a#b.c", KindTopic, nil},
		{"/topic/", 0, ErrInvalidDestination},
		{"/topic/a..b", 0, ErrInvalidDestination},
		{"/topic/.a", 0, ErrInvalidDestination},
		{"/topic/a.", 0, ErrInvalidDestination},
		{"/topic/*", 0, ErrInvalidDestination},
		{"/topic/a.#", 0, ErrInvalidDestination},
		{"/topic/#.a", 0, ErrInvalidDestination},
		{"/topic/a.*.b", 0, ErrInvalidDestination},
		{"/queue/orders", KindQueue, nil},
		{"/queue/orders.*", KindQueue, nil},
		{"/queue/a..b", KindQueue, nil},
		{"/queue/", 0, ErrInvalidDestination},
		{"/reply-queue/r1", KindReplyQueue, nil},
		{"/reply-queue/", 0, ErrInvalidDestination},
		{"/app/chat.send", KindApp, nil},
		{"/app/a..b", KindApp, nil},
		{"/app/", 0, ErrInvalidDestination},
		{"/app", 0, ErrUnknownDestination},
		{"", 0, ErrUnknownDestination},
		{"/topic", 0, ErrUnknownDestination},
		{"/exchange/x", 0, ErrUnknownDestination},
		{"topic/a", 0, ErrUnknownDestination},
		{"/temp-queue/x", 0, ErrUnknownDestination},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			kind, err := ParseDestination(tt.dest)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if kind != tt.kind {
				t.Fatalf("kind = %v, want %v", kind, tt.kind)
			}
		})
	}
}

func TestParseDestinationAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { ParseDestination("/topic/stocks.eur.usd") }); n != 0 {
		t.Fatalf("ParseDestination allocates %v times", n)
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{KindTopic.String(), "topic"},
		{KindQueue.String(), "queue"},
		{KindReplyQueue.String(), "reply-queue"},
		{KindApp.String(), "app"},
		{Kind(0).String(), "Kind(0)"},
		{AckAuto.String(), "auto"},
		{AckClient.String(), "client"},
		{AckClientIndividual.String(), "client-individual"},
		{AckMode(9).String(), "AckMode(9)"},
		{Delivered.String(), "delivered"},
		{Full.String(), "full"},
		{Closed.String(), "closed"},
		{PolicyDisconnect.String(), "disconnect"},
		{PolicyConflate.String(), "conflate"},
		{PolicyDropOldest.String(), "drop-oldest"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
