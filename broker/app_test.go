package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestAppHandler(t *testing.T) {
	errRejected := errors.New("rejected by handler")
	alice := Identity{Session: "s1", Name: "Alice"}
	tests := []struct {
		name      string
		register  string // destination given a handler; "" for none
		dest      string
		handlerOK bool
		wantErr   error
		wantCalls int
	}{
		{"registered, handler accepts", "/app/chat.send", "/app/chat.send", true, nil, 1},
		{"registered, handler error returned unchanged", "/app/chat.send", "/app/chat.send", false, errRejected, 1},
		{"unregistered", "/app/chat.send", "/app/other", true, ErrUnknownDestination, 0},
		{"none registered", "", "/app/chat.send", true, ErrUnknownDestination, 0},
		{"exact match only", "/app/chat", "/app/chat.send", true, ErrUnknownDestination, 0},
		{"empty name", "", "/app/", true, ErrInvalidDestination, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(Options{NodeID: "n"})
			var got []*Message
			if tt.register != "" {
				b.HandleApp(tt.register, func(m *Message) error {
					got = append(got, m)
					if !tt.handlerOK {
						return errRejected
					}
					return nil
				})
			}
			m := &Message{Destination: tt.dest, Body: []byte("hi"), Sender: alice}
			err := b.Publish(m)
			if tt.wantErr == errRejected {
				if err != errRejected {
					t.Fatalf("err = %v, want the handler's error itself", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(got) != tt.wantCalls {
				t.Fatalf("%d handler calls, want %d", len(got), tt.wantCalls)
			}
			if tt.wantCalls == 0 {
				return
			}
			if got[0] != m || got[0].Sender != alice {
				t.Fatalf("handler got %+v, want the published message with its sender", got[0])
			}
			if m.Kind != KindApp || m.ID == "" || m.Published.IsZero() {
				t.Fatalf("message not filled in before the handler: kind %v id %q published %v", m.Kind, m.ID, m.Published)
			}
		})
	}
}

func TestAppHandlerReplaceAndRemove(t *testing.T) {
	b := New(Options{})
	var calls []string
	b.HandleApp("/app/x", func(*Message) error { calls = append(calls, "first"); return nil })
	b.HandleApp("/app/x", func(*Message) error { calls = append(calls, "second"); return nil })
	publish(t, b, "/app/x", "")
	b.HandleApp("/app/x", nil)
	if err := b.Publish(&Message{Destination: "/app/x"}); !errors.Is(err, ErrUnknownDestination) {
		t.Fatalf("after removal err = %v, want ErrUnknownDestination", err)
	}
	if strings.Join(calls, ",") != "second" {
		t.Fatalf("calls %q, want only the replacement", calls)
	}
}

// TestAppHandlerCallsBack shows that the handler runs without broker locks:
// it publishes to a topic and subscribes, as a chat handler would.
func TestAppHandlerCallsBack(t *testing.T) {
	b := New(Options{})
	r := &recorder{}
	subscribe(t, b, "/topic/chat", r, SubscribeOptions{})
	b.HandleApp("/app/chat", func(m *Message) error {
		if _, err := b.Subscribe("/topic/echo", &recorder{}, SubscribeOptions{}); err != nil {
			return err
		}
		return b.Publish(&Message{Destination: "/topic/chat", Body: m.Body})
	})
	publish(t, b, "/app/chat", "hello")
	if got := r.bodies(); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("chat got %q", got)
	}
}

func TestAppDestinationRules(t *testing.T) {
	b := New(Options{})
	b.HandleApp("/app/x", func(*Message) error { return nil })
	_, err := b.Subscribe("/app/x", &recorder{}, SubscribeOptions{})
	if !errors.Is(err, ErrInvalidDestination) || !strings.Contains(err.Error(), "app destinations take SEND only") {
		t.Fatalf("Subscribe(/app/x) err = %v", err)
	}
	if kind, err := ParseDestination("/app/chat.send"); kind != KindApp || err != nil {
		t.Fatalf("ParseDestination = %v, %v", kind, err)
	}
	if KindApp.String() != "app" {
		t.Fatalf("KindApp.String() = %q", KindApp.String())
	}
	for _, dest := range []string{"/topic/x", "/app/", "nowhere"} {
		t.Run(dest, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("HandleApp(%q) did not panic", dest)
				}
			}()
			b.HandleApp(dest, func(*Message) error { return nil })
		})
	}
}
