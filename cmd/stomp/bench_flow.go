package main

import (
	"context"
	"sync/atomic"
)

// flow is the end-to-end window of one publisher: it may be at most window messages ahead of the
// slowest receiver of its messages. Each receiver counts what it got from the publisher in its own
// slot; on a queue, where each message goes to one of the competing consumers, they all count in a
// single shared slot.
//
// A publisher that has used up its window arms the slot of the slowest receiver with the count that
// would give it room again and sleeps; that receiver wakes it when it gets there. So a full window
// costs one wake-up per refill, not one per delivery, and a receiver pays an atomic add and an
// atomic load per read from its connection.
//
// received and wait are called by the publisher's goroutine; deliver by receivers' read goroutines.
type flow struct {
	window int64
	slots  []flowSlot
	wake   chan struct{} // capacity 1: a wake-up is never lost and never blocks a receiver
}

// flowSlot is one receiver's count, alone on its cache line so that receivers on different cores
// do not slow each other down.
type flowSlot struct {
	received atomic.Int64
	armedAt  atomic.Int64 // 0: nobody waits; else wake the publisher when received reaches it
	_        [48]byte
}

func newFlow(window int64, slots int) *flow {
	return &flow{window: window, slots: make([]flowSlot, slots), wake: make(chan struct{}, 1)}
}

// deliver counts n messages in slot i and wakes the publisher if it waits for this slot.
func (f *flow) deliver(i int, n int64) {
	s := &f.slots[i]
	n = s.received.Add(n)
	if at := s.armedAt.Load(); at != 0 && n >= at && s.armedAt.CompareAndSwap(at, 0) {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// slowest returns the index and count of the slot that has received least.
func (f *flow) slowest() (int, int64) {
	idx, least := 0, f.slots[0].received.Load()
	for i := 1; i < len(f.slots); i++ {
		if n := f.slots[i].received.Load(); n < least {
			idx, least = i, n
		}
	}
	return idx, least
}

// room is how many messages a publisher that has sent sent messages may send now.
func (f *flow) room(sent int64) int64 {
	_, least := f.slowest()
	return f.window - (sent - least)
}

// wait blocks until there is room for at least want messages (1 ≤ want ≤ window) and returns the
// room, or returns 0 when stop is closed or ctx ends first.
func (f *flow) wait(ctx context.Context, stop <-chan struct{}, sent, want int64) int64 {
	for {
		i, least := f.slowest()
		if room := f.window - (sent - least); room >= want {
			return room
		}
		target := sent - f.window + want // > least ≥ 0, so never the unarmed 0
		s := &f.slots[i]
		s.armedAt.Store(target)
		// The receiver may have got there between the scan and the arming, and then not seen the arm.
		if s.received.Load() >= target {
			s.armedAt.CompareAndSwap(target, 0)
			continue
		}
		select {
		case <-f.wake:
		case <-stop:
			s.armedAt.CompareAndSwap(target, 0)
			return 0
		case <-ctx.Done():
			s.armedAt.CompareAndSwap(target, 0)
			return 0
		}
	}
}

// settled reports whether every slot has received at least published messages.
func (f *flow) settled(published int64) bool {
	_, least := f.slowest()
	return least >= published
}
