package broker

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEncodedConcurrent(t *testing.T) {
	m := &Message{Body: []byte("x")}
	var builds atomic.Int32
	const callers = 16
	results := make([][]byte, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i] = m.Encoded(3, func(*Message) []byte {
				n := builds.Add(1)
				return []byte(strings.Repeat("v", int(n)))
			})
		})
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if !bytes.Equal(r, results[0]) {
			t.Fatalf("caller %d got %q, caller 0 got %q", i, r, results[0])
		}
		if len(r) > 0 && len(results[0]) > 0 && &r[0] != &results[0][0] {
			t.Fatalf("caller %d got a different slice", i)
		}
	}
	if builds.Load() < 1 {
		t.Fatal("build never called")
	}
	again := m.Encoded(3, func(*Message) []byte { t.Fatal("build called after caching"); return nil })
	if !bytes.Equal(again, results[0]) {
		t.Fatalf("cached %q, later call got %q", results[0], again)
	}
}

func TestEncodedSlotsIndependent(t *testing.T) {
	m := &Message{}
	for slot := range EncodedSlots {
		want := []byte{byte('a' + slot)}
		if got := m.Encoded(slot, func(*Message) []byte { return want }); !bytes.Equal(got, want) {
			t.Fatalf("slot %d: %q, want %q", slot, got, want)
		}
	}
	for slot := range EncodedSlots {
		if got := m.Encoded(slot, func(*Message) []byte { return nil }); got[0] != byte('a'+slot) {
			t.Fatalf("slot %d changed to %q", slot, got)
		}
	}
}

func TestPublishFillsMessage(t *testing.T) {
	b := New(Options{NodeID: "n1"})
	before := time.Now()
	m1 := publish(t, b, "/topic/a", "1")
	m2 := publish(t, b, "/queue/q", "2")
	if m1.ID != "n1-1" || m2.ID != "n1-2" {
		t.Fatalf("IDs %q, %q; want n1-1, n1-2", m1.ID, m2.ID)
	}
	if m1.Kind != KindTopic || m2.Kind != KindQueue {
		t.Fatalf("kinds %v, %v", m1.Kind, m2.Kind)
	}
	if m1.Published.Before(before) {
		t.Fatalf("Published %v before %v", m1.Published, before)
	}

	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	m3 := &Message{ID: "mine", Destination: "/topic/a", Published: at}
	if err := b.Publish(m3); err != nil {
		t.Fatal(err)
	}
	if m3.ID != "mine" || !m3.Published.Equal(at) {
		t.Fatalf("Publish overwrote ID %q or time %v", m3.ID, m3.Published)
	}
}

func TestDefaultNodeID(t *testing.T) {
	a, b := New(Options{}).NodeID(), New(Options{}).NodeID()
	if len(a) != 8 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("NodeID %q is not 8 hex characters", a)
	}
	if a == b {
		t.Fatalf("two brokers share NodeID %q", a)
	}
}
