package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// subOptions are sub's own flags.
type subOptions struct {
	headers  bool
	json     bool
	ack      string
	prefetch int
	count    int
	timeout  time.Duration
	offset   string
	durable  string
}

// subPrefetch is sub's -prefetch: no more than go-stomp buffers per subscription. sub acks each
// message on the goroutine that reads it, and go-stomp writes ACKs on the goroutine that hands it
// messages, so with more in flight both can wait for each other for good.
const subPrefetch = 16

// ackModes maps -ack values to go-stomp's modes.
var ackModes = map[string]stomp.AckMode{
	"auto":              stomp.AckAuto,
	"client":            stomp.AckClient,
	"client-individual": stomp.AckClientIndividual,
}

func runSub(ctx context.Context, con *console, args []string) error {
	fs := newFlagSet("sub", "[flags] DEST...",
		"Subscribes to each DEST and prints messages as they arrive: the body alone by default, one\n"+
			"message per line (a newline is added to a body without one).")
	var cf connFlags
	cf.register(fs)
	var o subOptions
	fs.BoolVar(&o.headers, "headers", false, "print each message's headers, a blank line, the body and a blank line")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per line: destination, subscription, message_id, headers,\nand body (or body_base64 when the body is not UTF-8)")
	fs.StringVar(&o.ack, "ack", "auto", "ack `mode`: auto, client or client-individual; the latter two ack each message\nafter printing it")
	fs.IntVar(&o.prefetch, "prefetch", subPrefetch, "with -ack client or client-individual, unacknowledged `messages` the broker may send ahead\n(prefetch-count); 0 sends no limit. Above 16 the client can stall under load")
	fs.IntVar(&o.count, "count", 0, "exit 0 after `N` messages; 0 means no limit")
	fs.DurationVar(&o.timeout, "timeout", 0, "exit 3 after a `duration` with no message; 0 waits forever")
	fs.StringVar(&o.offset, "offset", "", "on a stream destination, read from this `point` (x-stream-offset): first, last, next,\noffset=N or timestamp=UNIX-SECONDS")
	fs.StringVar(&o.durable, "durable", "", "make or resume the durable subscription `name` (one topic DEST): what was\npublished while it was away comes first")
	dests, err := parseInterspersed(fs, args, con)
	if err != nil {
		return err
	}
	mode, ok := ackModes[o.ack]
	switch {
	case len(dests) == 0:
		err = fmt.Errorf("%w: no destination (usage: stomp sub [flags] DEST...)", errUsage)
	case !ok:
		err = fmt.Errorf("%w: -ack %q: want auto, client or client-individual", errUsage, o.ack)
	case o.headers && o.json:
		err = fmt.Errorf("%w: -headers and -json exclude each other (-json includes the headers)", errUsage)
	case o.count < 0 || o.timeout < 0 || o.prefetch < 0:
		err = fmt.Errorf("%w: -count, -timeout and -prefetch must not be negative", errUsage)
	case o.durable != "" && len(dests) != 1:
		err = fmt.Errorf("%w: -durable names one subscription: give one DEST", errUsage)
	case o.durable != "" && o.offset != "":
		err = fmt.Errorf("%w: -durable and -offset exclude each other", errUsage)
	}
	if err != nil {
		return err
	}
	cf.applyEnv(fs, con.lookupEnv)

	s, err := connect(ctx, &cf)
	if err != nil {
		return err
	}
	subs := make([]*stomp.Subscription, 0, len(dests))
	var subOpts []func(*frame.Frame) error
	if mode != stomp.AckAuto && o.prefetch > 0 {
		subOpts = append(subOpts, stomp.SubscribeOpt.Header("prefetch-count", strconv.Itoa(o.prefetch)))
	}
	if o.offset != "" {
		subOpts = append(subOpts, stomp.SubscribeOpt.Header("x-stream-offset", o.offset))
	}
	if o.durable != "" {
		subOpts = append(subOpts, stomp.SubscribeOpt.Id(o.durable),
			stomp.SubscribeOpt.Header("durable", "true"), stomp.SubscribeOpt.Header("auto-delete", "false"))
	}
	for _, dest := range dests {
		sub, err := s.conn.Subscribe(dest, mode, subOpts...)
		if err != nil {
			err = s.fail("subscribe "+dest, err)
			_ = s.closeDraining(subs, false)
			return err
		}
		subs = append(subs, sub)
	}
	printer := &messagePrinter{w: con.stdout, format: formatBody}
	switch {
	case o.json:
		printer.format = formatJSON
	case o.headers:
		printer.format = formatHeaders
	}
	err = s.receive(ctx, subs, printer, o)
	// After a timeout the connection is sound and may close gracefully; after a failure it may not.
	graceful := err == nil || errors.Is(err, errTimeout)
	if cerr := s.closeDraining(subs, graceful); err == nil {
		err = cerr
	}
	return err
}

// receive prints messages from subs until -count is reached or ctx ends (both nil), nothing arrives
// for -timeout (errTimeout), or the connection fails.
func (s *session) receive(ctx context.Context, subs []*stomp.Subscription, printer *messagePrinter, o subOptions) error {
	var idle *time.Timer
	if o.timeout > 0 {
		idle = time.NewTimer(o.timeout)
		defer idle.Stop()
	}
	return s.receiveLoop(ctx, subs, printer, o, idle)
}

// Fixed cases of receiveLoop's select; the subscriptions follow them.
const (
	caseDone = iota
	caseIdle
	firstSubCase
)

func (s *session) receiveLoop(ctx context.Context, subs []*stomp.Subscription, printer *messagePrinter, o subOptions, idle *time.Timer) error {
	// One select over any number of subscriptions, so that no goroutine is needed to merge them.
	cases := make([]reflect.SelectCase, firstSubCase+len(subs))
	cases[caseDone] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	cases[caseIdle] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf((<-chan time.Time)(nil))}
	if idle != nil {
		cases[caseIdle].Chan = reflect.ValueOf(idle.C)
	}
	for i, sub := range subs {
		cases[firstSubCase+i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(sub.C)}
	}
	for received := 0; o.count == 0 || received < o.count; {
		chosen, v, ok := reflect.Select(cases)
		switch chosen {
		case caseDone:
			return nil
		case caseIdle:
			return fmt.Errorf("%w: no message within -timeout %s", errTimeout, o.timeout)
		}
		sub := subs[chosen-firstSubCase]
		if !ok {
			return s.fail("subscription to "+sub.Destination(), stomp.ErrClosedUnexpectedly)
		}
		m := v.Interface().(*stomp.Message)
		if m.Err != nil {
			return s.fail("subscription to "+sub.Destination(), m.Err)
		}
		if err := printer.print(m); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if m.ShouldAck() {
			if err := s.conn.Ack(m); err != nil {
				return s.fail("ack", err)
			}
		}
		received++
		if idle != nil {
			idle.Reset(o.timeout)
		}
	}
	return nil
}

// closeDraining disconnects (gracefully, or by dropping the connection) while it empties the subscriptions' channels: go-stomp's connection
// goroutines block on a full subscription channel, and would never see the DISCONNECT receipt or
// finish. Unacknowledged messages drained here go back to their queue when the connection ends.
func (s *session) closeDraining(subs []*stomp.Subscription, graceful bool) error {
	var wg sync.WaitGroup
	for _, sub := range subs {
		wg.Go(func() {
			for range sub.C {
			}
		})
	}
	var err error
	if graceful {
		err = s.close()
	} else {
		s.abort()
	}
	wg.Wait()
	return err
}
