package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// pubOptions are pub's own flags.
type pubOptions struct {
	headers     headerList
	contentType string
	receipt     bool
	lines       bool
	count       int
	rate        float64
	verbose     bool
}

// headerList collects -H key:value flags in order.
type headerList [][2]string

// reservedSendHeaders are set by pub itself; a -H for one would contradict the command line or break
// the receipts pub relies on.
var reservedSendHeaders = map[string]bool{
	frame.Destination: true, frame.ContentLength: true, frame.ContentType: true, frame.Receipt: true, frame.Transaction: true,
}

func (h *headerList) String() string {
	parts := make([]string, len(*h))
	for i, kv := range *h {
		parts[i] = kv[0] + ":" + kv[1]
	}
	return strings.Join(parts, ",")
}

// Set parses "key:value"; the value may contain colons.
func (h *headerList) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	switch {
	case !ok || k == "":
		return fmt.Errorf("want key:value, got %q", s)
	case reservedSendHeaders[k]:
		return fmt.Errorf("%q is set by pub itself (use the DEST argument, -content-type or -receipt)", k)
	}
	*h = append(*h, [2]string{k, v})
	return nil
}

func runPub(ctx context.Context, con *console, args []string) error {
	fs := newFlagSet("pub", "[flags] DEST BODY|-",
		"Sends BODY to DEST, or with - the whole of stdin as one message (with -lines, one message per\n"+
			"line). It exits 0, silently unless -v, once the broker has acknowledged every message.")
	var cf connFlags
	cf.register(fs)
	o := pubOptions{count: 1}
	fs.Var(&o.headers, "H", "add header `key:value` to every message (repeatable)")
	fs.StringVar(&o.contentType, "content-type", "", "content-type header `value`, e.g. text/plain or application/json")
	fs.BoolVar(&o.receipt, "receipt", false, "wait for a RECEIPT after every message, not only the last")
	fs.BoolVar(&o.lines, "lines", false, "with -, send each line of stdin as a message (without its line ending)")
	fs.IntVar(&o.count, "count", 1, "send each message `N` times")
	fs.Float64Var(&o.rate, "rate", 0, "send at most `R` messages per second (bursts of R/10 after a stall); 0: no limit")
	fs.BoolVar(&o.verbose, "v", false, "report on stderr what was sent")
	pos, err := parseInterspersed(fs, args, con)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 2:
		err = fmt.Errorf("%w: want DEST and BODY (or - for stdin), got %d arguments (usage: stomp pub [flags] DEST BODY|-)", errUsage, len(pos))
	case o.lines && pos[1] != "-":
		err = fmt.Errorf("%w: -lines reads stdin: give - as the body", errUsage)
	case o.count < 1:
		err = fmt.Errorf("%w: -count must be at least 1", errUsage)
	case o.rate < 0:
		err = fmt.Errorf("%w: -rate must not be negative", errUsage)
	}
	if err != nil {
		return err
	}
	cf.applyEnv(fs, con.lookupEnv)
	dest := pos[0]

	// A body known in advance is read before connecting, so that a failing stdin costs no connection.
	var body []byte
	if !o.lines {
		if pos[1] == "-" {
			if body, err = io.ReadAll(con.stdin); err != nil {
				return fmt.Errorf("read stdin: %w", err)
			}
		} else {
			body = []byte(pos[1])
		}
	}

	s, err := connect(ctx, &cf)
	if err != nil {
		return err
	}
	p := &publisher{session: s, dest: dest, opts: o, pacer: newPacer(o.rate, burstFor(o.rate))}
	for _, kv := range o.headers {
		p.sendOpts = append(p.sendOpts, stomp.SendOpt.Header(kv[0], kv[1]))
	}
	if o.lines {
		err = p.sendLines(ctx, con.stdin)
	} else {
		err = p.sendRepeated(ctx, body, true)
	}
	if err != nil {
		s.abort()
	} else {
		err = closeAwaitingReceipt(s)
	}
	if err == nil && o.verbose {
		fmt.Fprintf(con.stderr, "stomp pub: sent %d message(s) to %s\n", p.sent, dest)
	}
	return err
}

// publisher sends one command's messages.
type publisher struct {
	*session
	dest     string
	opts     pubOptions
	pacer    *pacer
	sendOpts []func(*frame.Frame) error
	sent     int
}

// sendRepeated sends body -count times. When knownLast, the last copy is the command's last message
// and asks for a receipt.
func (p *publisher) sendRepeated(ctx context.Context, body []byte, knownLast bool) error {
	for i := range p.opts.count {
		if err := p.pacer.wait(ctx); err != nil {
			return fmt.Errorf("interrupted after %d message(s): %w", p.sent, err)
		}
		var err error
		if p.opts.receipt || (knownLast && i == p.opts.count-1) {
			err = p.sendAwaitingReceipt(body)
		} else {
			err = p.conn.Send(p.dest, p.opts.contentType, body, p.sendOpts...)
		}
		if err != nil {
			return p.fail(fmt.Sprintf("send %s (message %d)", p.dest, p.sent+1), err)
		}
		p.sent++
	}
	return nil
}

// sendAwaitingReceipt sends body with a receipt header and waits for the RECEIPT. The error tap
// watches the wait, so that an ERROR (or a broken connection) ends it at once with the broker's
// reason instead of after go-stomp's receipt timeout.
func (p *publisher) sendAwaitingReceipt(body []byte) error {
	id := newReceiptID()
	if err := p.tap.awaitWrite(carriesHeader(frame.Receipt, id)); err != nil {
		return err
	}
	defer p.tap.settled()
	opts := append(p.sendOpts[:len(p.sendOpts):len(p.sendOpts)], stomp.SendOpt.Header(frame.Receipt, id))
	return p.conn.Send(p.dest, p.opts.contentType, body, opts...)
}

// closeAwaitingReceipt is session.close with the DISCONNECT receipt watched the same way.
func closeAwaitingReceipt(s *session) error {
	if err := s.tap.awaitWrite(startsFrame(frame.DISCONNECT)); err != nil {
		s.abort()
		return s.fail("disconnect", err)
	}
	defer s.tap.settled()
	return s.close()
}

// newReceiptID returns a receipt id that nothing else on the connection uses, and that no message
// body plausibly contains, since the error tap looks for it in the bytes written.
func newReceiptID() string {
	return fmt.Sprintf("pub-%016x", rand.Uint64())
}

// sendLines sends each line of r as it is read, so that pub can follow a growing stream. The last
// line is not known until r ends, so the DISCONNECT receipt, not a receipt on it, confirms it.
func (p *publisher) sendLines(ctx context.Context, r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if serr := p.sendRepeated(ctx, line, false); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d message(s): %w", p.sent, ctx.Err())
		}
	}
}
