package stompws

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// Destination prefixes the session resolves itself; the broker knows the others.
const (
	tempQueuePrefix  = "/temp-queue/"
	replyQueuePrefix = "/reply-queue/"
	topicPrefix      = "/topic/"
)

// reservedHeaders are SEND headers the server consumes or sets itself; they are not forwarded as user
// headers (a client cannot forge message-id, subscription, ack or redelivered on a MESSAGE).
var reservedHeaders = map[string]bool{
	"destination": true, "content-length": true, "transaction": true, "receipt": true,
	"message-id": true, "subscription": true, "ack": true, "redelivered": true,
	"user-id":         true, // set by the server from the authenticated user, never by the client
	"x-stream-offset": true, // set by the server on messages of stream destinations
}

// handleSend publishes a SEND, or holds it in its transaction until COMMIT.
func (s *session) handleSend(f *frame.Frame) error {
	if !s.allowSend(len(f.Body)) {
		return errRateLimited
	}
	s.counters.messagesIn.Add(1)
	if pe := s.waitForMemory(); pe != nil {
		return pe
	}
	dest, ok := f.Get("destination")
	if !ok || len(dest) == 0 {
		return protoErr("missing destination header", "SEND requires a destination")
	}
	if pe := s.authorize(string(dest), true); pe != nil {
		return pe
	}
	resolved, err := s.resolveDestination(string(dest))
	if err != nil {
		return err
	}
	m, err := s.buildMessage(f, resolved)
	if err != nil {
		return err
	}
	if txID, ok := f.Get("transaction"); ok {
		tx, err := s.transaction(txID)
		if err != nil {
			return err
		}
		return s.addToTransaction(tx, txOp{message: m})
	}
	if _, receipt := f.Get("receipt"); !receipt {
		// Nobody waits for this one: a stored queue takes it without the session waiting for the
		// disk, in order with what follows; should the store refuse it, the session ends with an ERROR.
		return s.publishOutcome(m, s.broker.PublishNoWait(m, s.storeRefused))
	}
	return s.publish(m)
}

// storeRefused ends the session when the store refused a SEND it had taken without a receipt. Called
// from the store's goroutine.
func (s *session) storeRefused(err error) {
	s.terminate(asProtocolError(err))
}

// publish hands m to the broker and maps its refusals to ERRORs. A reply whose temporary queue has
// gone with its session is dropped, as a topic message nobody listens to is. An application handler's
// refusal (an /app/ destination) is shown to the client as the handler worded it.
func (s *session) publish(m *broker.Message) error {
	return s.publishOutcome(m, s.broker.Publish(m))
}

// publishOutcome maps the broker's answer to publishing m to what the client is told.
func (s *session) publishOutcome(m *broker.Message, err error) error {
	switch {
	case err == nil || errors.Is(err, broker.ErrNoRoute):
		return nil
	case m.Kind == broker.KindApp && !isBrokerError(err):
		return &protocolError{message: err.Error(), code: transport.ClosePolicyViolation}
	}
	return destinationError(m.Destination, err)
}

// isBrokerError reports whether err is one of the broker's own refusals rather than an application
// handler's.
func isBrokerError(err error) bool {
	for _, target := range []error{broker.ErrUnknownDestination, broker.ErrInvalidDestination, broker.ErrQueueFull,
		broker.ErrReadOnly, broker.ErrNoRoute} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// destinationError names dest in the ERROR for a broker refusal.
func destinationError(dest string, err error) error {
	switch {
	case errors.Is(err, broker.ErrUnknownDestination):
		return protoErr("unknown destination", "%q: destinations are /topic/NAME, /queue/NAME and /temp-queue/NAME", dest).
			because(metrics.ErrorUnknownDestination)
	case errors.Is(err, broker.ErrInvalidDestination):
		return protoErr("invalid destination", "%q: %v", dest, err).because(metrics.ErrorInvalidDestination)
	case errors.Is(err, broker.ErrReadOnly):
		return protoErr("destination is read-only", "%q: only the server publishes there", dest).because(metrics.ErrorReadOnly)
	case errors.Is(err, broker.ErrDurableMismatch):
		return protoErr("durable subscription mismatch", "%v", err)
	case errors.Is(err, broker.ErrNotStream):
		return protoErr("not a stream", "%v", err).because(metrics.ErrorInvalidStreamOffset)
	}
	return err
}

// resolveDestination maps /temp-queue/NAME to this session's private reply queue, creating it and its
// implicit subscription on first use. Other destinations pass through.
func (s *session) resolveDestination(dest string) (string, error) {
	name, ok := strings.CutPrefix(dest, tempQueuePrefix)
	if !ok {
		return dest, nil
	}
	if name == "" {
		return "", protoErr("invalid destination", "%q: a temporary queue needs a name", dest)
	}
	if resolved, ok := s.tempQueues[name]; ok {
		return resolved, nil
	}
	resolved := s.broker.NewReplyQueueName()
	if err := s.broker.DeclareReplyQueue(resolved, s.identity()); err != nil {
		return "", destinationError(dest, err)
	}
	if s.tempQueues == nil {
		s.tempQueues = make(map[string]string)
	}
	s.tempQueues[name] = resolved
	return resolved, nil
}

// ensureTempSubscription makes sure replies to the temporary queue resolved reach the client: unless
// the client subscribed to it explicitly, the session subscribes with id /temp-queue/NAME.
func (s *session) ensureTempSubscription(tempDest, resolved string) error {
	for _, sub := range s.subs {
		if sub.dest == resolved {
			return nil
		}
	}
	if _, taken := s.subs[tempDest]; taken {
		return protoErr("subscription id already in use", "id %q is needed for replies to %s", tempDest, tempDest)
	}
	_, err := s.subscribe(tempDest, resolved, broker.SubscribeOptions{AckMode: broker.AckAuto})
	return err
}

// buildMessage copies a SEND into an immutable broker message: user headers in order, the first of
// each repeated name only, all in one allocation; the body in another. reply-to:/temp-queue/NAME is
// rewritten to the session's reply queue.
func (s *session) buildMessage(f *frame.Frame, dest string) (*broker.Message, error) {
	var replyTo string
	if rt, ok := f.Get("reply-to"); ok && strings.HasPrefix(string(rt), tempQueuePrefix) {
		resolved, err := s.resolveDestination(string(rt))
		if err != nil {
			return nil, err
		}
		if err := s.ensureTempSubscription(string(rt), resolved); err != nil {
			return nil, err
		}
		replyTo = resolved
	}

	keep := s.userHeaders(f)
	size := 0
	for _, i := range keep {
		h := &f.Headers[i]
		size += len(h.Name) + len(h.Value)
		if replyTo != "" && string(h.Name) == "reply-to" {
			size += len(replyTo) - len(h.Value)
		}
	}
	var text strings.Builder
	text.Grow(size)
	type span struct{ name, value [2]int }
	spans := make([]span, 0, len(keep))
	for _, i := range keep {
		h := &f.Headers[i]
		var sp span
		sp.name[0] = text.Len()
		text.Write(h.Name)
		sp.name[1] = text.Len()
		if replyTo != "" && string(h.Name) == "reply-to" {
			text.WriteString(replyTo)
		} else {
			text.Write(h.Value)
		}
		sp.value = [2]int{sp.name[1], text.Len()}
		spans = append(spans, sp)
	}
	all := text.String()
	m := &broker.Message{Destination: dest, Sender: s.identity(), Body: append([]byte(nil), f.Body...)}
	if len(spans) > 0 {
		m.Header = make([]broker.Header, len(spans))
		for i, sp := range spans {
			m.Header[i] = broker.Header{Name: all[sp.name[0]:sp.name[1]], Value: all[sp.value[0]:sp.value[1]]}
		}
	}
	return m, nil
}

// userHeaders returns the indexes of f's headers to forward: not reserved, first occurrence of each name.
func (s *session) userHeaders(f *frame.Frame) []int {
	keep := make([]int, 0, len(f.Headers))
	if len(f.Headers) > 16 {
		if s.headerIndex == nil {
			s.headerIndex = make(map[string]struct{})
		}
		clear(s.headerIndex)
	}
	for i := range f.Headers {
		name := f.Headers[i].Name
		if reservedHeaders[string(name)] {
			continue
		}
		if s.headerIndex != nil && len(f.Headers) > 16 {
			if _, seen := s.headerIndex[string(name)]; seen {
				continue
			}
			s.headerIndex[string(name)] = struct{}{}
		} else if seenBefore(f, keep, name) {
			continue
		}
		keep = append(keep, i)
	}
	return keep
}

func seenBefore(f *frame.Frame, keep []int, name []byte) bool {
	for _, j := range keep {
		if string(f.Headers[j].Name) == string(name) {
			return true
		}
	}
	return false
}

// encodedMessage returns the part of a MESSAGE frame after the per-subscription head, encoded for the
// session's version once per message and shared by every delivery, and whether it is valid UTF-8.
func (s *session) encodedMessage(m *broker.Message) (tail []byte, isUTF8 bool) {
	b := m.Encoded(int(s.version), tailEncoders[s.version])
	return b[1:], b[0] == 1
}

// tailEncoders are encodeMessageTail bound to each version, as values that capture nothing, so that
// looking up a cached encoding does not allocate.
var tailEncoders = [...]func(*broker.Message) []byte{
	frame.V10: func(m *broker.Message) []byte { return encodeMessageTail(m, frame.V10) },
	frame.V11: func(m *broker.Message) []byte { return encodeMessageTail(m, frame.V11) },
	frame.V12: func(m *broker.Message) []byte { return encodeMessageTail(m, frame.V12) },
}

// encodeMessageTail encodes destination, message-id, the sender's user-id when authenticated, user headers, content-length and the body. The
// first byte is a flag (1 if the rest is valid UTF-8) so the check runs once per message, not per delivery.
func encodeMessageTail(m *broker.Message, v frame.Version) []byte {
	size := 1 + 64 + len(m.Destination) + len(m.ID) + len(m.Sender.User) + len(m.Body)
	for _, h := range m.Header {
		size += len(h.Name) + len(h.Value) + 2
	}
	b := make([]byte, 1, size)
	b = frame.AppendHeader(b, v, "destination", m.Destination)
	b = frame.AppendHeader(b, v, "message-id", m.ID)
	if m.Sender.User != "" {
		b = frame.AppendHeader(b, v, "user-id", m.Sender.User)
	}
	if m.Offset != 0 {
		b = append(b, "x-stream-offset:"...)
		b = strconv.AppendUint(b, m.Offset, 10)
		b = append(b, '\n')
	}
	for _, h := range m.Header {
		b = frame.AppendHeader(b, v, h.Name, h.Value)
	}
	b = append(b, "content-length:"...)
	b = strconv.AppendInt(b, int64(len(m.Body)), 10)
	b = append(b, '\n')
	b = frame.AppendBody(b, m.Body)
	if utf8.Valid(b[1:]) {
		b[0] = 1
	}
	return b
}
