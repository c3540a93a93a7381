package main

import (
	"context"
	"time"
)

// pacer spaces sends to a rate: a token bucket refilled at rate tokens per second that holds at most
// burst tokens, so that a publisher that fell behind (a slow stdin, a slow receipt) catches up by at
// most burst messages at once rather than by everything it missed. Not safe for concurrent use.
type pacer struct {
	interval time.Duration // time per token
	credit   time.Duration // most time the bucket may bank: burst intervals
	next     time.Time     // when the next token is due; zero before the first wait

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// newPacer returns a pacer for rate messages per second with a bucket of burst tokens (at least 1),
// or nil, which never waits, when rate is not positive.
func newPacer(rate float64, burst int) *pacer {
	if rate <= 0 {
		return nil
	}
	interval := time.Duration(float64(time.Second) / rate)
	return &pacer{interval: interval, credit: time.Duration(max(burst, 1)) * interval, now: time.Now, sleep: sleepContext}
}

// burstFor is the bucket size pub uses: a tenth of a second's worth of messages, at least one.
func burstFor(rate float64) int { return max(1, int(rate/10)) }

// wait blocks until a token is available and takes it. It returns ctx's error if ctx ends first.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	now := p.now()
	if earliest := now.Add(-p.credit + p.interval); p.next.Before(earliest) {
		p.next = earliest
	}
	if d := p.next.Sub(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
	}
	p.next = p.next.Add(p.interval)
	return nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
