package broker

import "testing"

func TestRingDeque(t *testing.T) {
	var r ring[int]
	var model []int
	check := func(step string) {
		t.Helper()
		if r.len() != len(model) {
			t.Fatalf("%s: len %d, want %d", step, r.len(), len(model))
		}
		for i, v := range model {
			if got := *r.at(i); got != v {
				t.Fatalf("%s: at(%d) = %d, want %d", step, i, got, v)
			}
		}
	}
	for i := range 100 {
		if i%3 == 0 {
			r.pushFront(i)
			model = append([]int{i}, model...)
		} else {
			r.pushBack(i)
			model = append(model, i)
		}
		check("push")
	}
	for len(model) > 5 {
		if got := r.popFront(); got != model[0] {
			t.Fatalf("popFront = %d, want %d", got, model[0])
		}
		model = model[1:]
		check("pop")
	}
	if len(r.buf) > ringMinCap {
		t.Fatalf("capacity %d after draining to %d; want it shrunk to %d", len(r.buf), r.len(), ringMinCap)
	}
	r.truncate(2)
	model = model[:2]
	check("truncate")
}

func TestUnackedSet(t *testing.T) {
	msgs := make([]*Message, 11)
	for i := range msgs {
		msgs[i] = &Message{ID: string(rune('a' + i))}
	}
	fill := func() *unackedSet {
		u := &unackedSet{}
		for tag := uint64(1); tag <= 10; tag++ {
			u.push(tag, msgs[tag])
		}
		return u
	}
	tests := []struct {
		name       string
		ops        [][2]uint64 // tag, cumulative(1)
		wantOK     []bool
		wantTaken  string
		wantLive   int
		wantTagOfE uint64 // tag of message "e" (tag 4) if still unacked, else 0
	}{
		{"individual", [][2]uint64{{3, 0}}, []bool{true}, "d", 9, 4},
		{"individual twice", [][2]uint64{{3, 0}, {3, 0}}, []bool{true, false}, "d", 9, 4},
		{"cumulative", [][2]uint64{{4, 1}}, []bool{true}, "bcde", 6, 0},
		{"cumulative over tombstones", [][2]uint64{{2, 0}, {4, 0}, {5, 1}}, []bool{true, true, true}, "cebdf", 5, 0},
		{"unknown tag", [][2]uint64{{11, 0}, {0, 1}}, []bool{false, false}, "", 10, 4},
		{"cumulative then older", [][2]uint64{{5, 1}, {2, 0}}, []bool{true, false}, "bcdef", 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := fill()
			var out []*Message
			for i, op := range tt.ops {
				if ok := u.take(op[0], op[1] == 1, &out); ok != tt.wantOK[i] {
					t.Fatalf("op %d take(%d) = %v", i, op[0], ok)
				}
			}
			var taken string
			for _, m := range out {
				taken += m.ID
			}
			if taken != tt.wantTaken || u.live != tt.wantLive {
				t.Fatalf("taken %q live %d; want %q %d", taken, u.live, tt.wantTaken, tt.wantLive)
			}
			if tag, _ := u.tagOf("e"); tag != tt.wantTagOfE {
				t.Fatalf("tagOf(e) = %d, want %d", tag, tt.wantTagOfE)
			}
		})
	}
}

// TestUnackedSetBounded acknowledges everything but the oldest delivery, one
// by one, and checks that tombstones do not pile up.
func TestUnackedSetBounded(t *testing.T) {
	u := &unackedSet{}
	m := &Message{}
	u.push(1, m)
	for tag := uint64(2); tag < 100_000; tag++ {
		u.push(tag, m)
		if !u.take(tag, false, nil) {
			t.Fatalf("take(%d) failed", tag)
		}
		if u.entries.len() > 2*tombstoneSlack+2 {
			t.Fatalf("after %d acks the set holds %d entries for %d live", tag, u.entries.len(), u.live)
		}
	}
	if u.live != 1 {
		t.Fatalf("live = %d, want 1", u.live)
	}
	if i := u.index(1); i != 0 {
		t.Fatalf("oldest delivery at index %d, want 0", i)
	}
}
