package main

import "math/bits"

// seqTracker follows the sequence numbers one receiver got from one publisher: which it has seen
// (a bitset that grows with the highest number, amortised, so tracking allocates nothing per
// message), how many were new, repeated, or late. Owned by the receiver's read goroutine until the
// run's readers have stopped.
type seqTracker struct {
	seen       []uint64 // bit s set: sequence number s arrived
	next       uint64   // one past the highest sequence number seen
	distinct   int64
	duplicated int64
	outOfOrder int64 // arrived after a higher number from the same publisher
}

// observe records the arrival of seq.
func (t *seqTracker) observe(seq uint64) {
	w := seq >> 6
	if w >= uint64(len(t.seen)) {
		t.grow(w)
	}
	bit := uint64(1) << (seq & 63)
	if t.seen[w]&bit != 0 {
		t.duplicated++
		return
	}
	t.seen[w] |= bit
	t.distinct++
	if seq < t.next {
		t.outOfOrder++
		return
	}
	t.next = seq + 1
}

// grow makes word w of the bitset addressable, at least doubling it so that a steady stream costs
// amortised constant time.
func (t *seqTracker) grow(w uint64) {
	n := max(int(w)+1, 2*len(t.seen), 64)
	seen := make([]uint64, n)
	copy(seen, t.seen)
	t.seen = seen
}

// lostFrom is how many of the first published sequence numbers (0 … published-1) never arrived.
func (t *seqTracker) lostFrom(published int64) int64 {
	return max(0, published-t.distinct)
}

// sharedDelivery sums what competing consumers of one queue got from one publisher: a message that
// reached two consumers counts as duplicated, one that reached none as lost.
type sharedDelivery struct {
	union      []uint64
	distinct   int64 // sequence numbers seen by at least one consumer
	duplicated int64
	outOfOrder int64
}

// add merges one consumer's tracker.
func (d *sharedDelivery) add(t *seqTracker) {
	if len(t.seen) > len(d.union) {
		union := make([]uint64, len(t.seen))
		copy(union, d.union)
		d.union = union
	}
	for i, w := range t.seen {
		overlap := d.union[i] & w
		d.duplicated += int64(bits.OnesCount64(overlap))
		d.distinct += int64(bits.OnesCount64(w &^ overlap))
		d.union[i] |= w
	}
	d.duplicated += t.duplicated
	d.outOfOrder += t.outOfOrder
}

// lostFrom is how many of the first published sequence numbers no consumer got.
func (d *sharedDelivery) lostFrom(published int64) int64 {
	return max(0, published-d.distinct)
}
