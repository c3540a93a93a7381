package broker

import "testing"

func TestIdentityPlumbing(t *testing.T) {
	alice := Identity{Session: "s1", Name: "Alice", User: "alice"}
	tests := []struct {
		name     string
		dest     string
		sender   Identity
		owner    Identity
		isServer bool
	}{
		{"client to topic", "/topic/chat", alice, alice, false},
		{"server to topic", "/topic/chat", Identity{}, Identity{Name: "presence"}, true},
		{"client to queue", "/queue/jobs", alice, Identity{Session: "s2"}, false},
		{"server with a display name", "/queue/jobs", Identity{Name: "stocks"}, Identity{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{})
			r := &recorder{}
			sub := subscribe(t, b, tt.dest, r, SubscribeOptions{Owner: tt.owner})
			if sub.Owner() != tt.owner {
				t.Fatalf("Owner() = %+v, want %+v", sub.Owner(), tt.owner)
			}
			if err := b.Publish(&Message{Destination: tt.dest, Sender: tt.sender}); err != nil {
				t.Fatal(err)
			}
			got := r.last(t).Message.Sender
			if got != tt.sender {
				t.Fatalf("delivered Sender %+v, want %+v", got, tt.sender)
			}
			if got.IsServer() != tt.isServer {
				t.Fatalf("IsServer() = %v, want %v", got.IsServer(), tt.isServer)
			}
		})
	}
}
