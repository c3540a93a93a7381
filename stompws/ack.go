package stompws

import (
	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/frame"
)

// ackTarget is a resolved ACK or NACK: which delivery, and whether it covers the earlier ones too.
type ackTarget struct {
	sub        *subscription
	tag        uint64
	cumulative bool // client mode: acknowledges every earlier unacked delivery of the subscription
	nack       bool
	noWait     bool // nobody waits for a RECEIPT: a store may record the ACK without the session waiting
}

// handleAck applies (or, inside a transaction, holds) an ACK or NACK.
func (s *session) handleAck(f *frame.Frame, nack bool) error {
	if err := noBody(f); err != nil {
		return err
	}
	t, err := s.resolveAck(f)
	if err != nil {
		return err
	}
	t.nack = nack
	_, receipt := f.Get("receipt")
	if txID, ok := f.Get("transaction"); ok {
		tx, err := s.transaction(txID)
		if err != nil {
			return err
		}
		return s.addToTransaction(tx, txOp{ack: t})
	}
	t.noWait = !receipt
	return s.applyAck(t)
}

// resolveAck finds the delivery an ACK or NACK names. STOMP 1.2 uses the MESSAGE's ack header as id;
// 1.1 names message-id and subscription; 1.0 names message-id, the subscription being optional.
func (s *session) resolveAck(f *frame.Frame) (ackTarget, error) {
	if s.version == frame.V12 {
		id, ok := f.Get("id")
		if !ok {
			return ackTarget{}, protoErr("missing id header", "%s requires the id from the MESSAGE's ack header", f.Command)
		}
		subID, tag, ok := parseAckID(id)
		sub := s.subsByID[subID]
		if !ok || sub == nil {
			return ackTarget{}, protoErr("unknown ack id", "%q does not name a pending delivery", id)
		}
		return ackTarget{sub: sub, tag: tag, cumulative: sub.ackMode == broker.AckClient}, nil
	}

	msgID, ok := f.Get("message-id")
	if !ok {
		return ackTarget{}, protoErr("missing message-id header", "%s requires message-id in STOMP %s", f.Command, s.version)
	}
	subName, hasSub := f.Get("subscription")
	if !hasSub && s.version == frame.V11 {
		return ackTarget{}, protoErr("missing subscription header", "%s requires subscription in STOMP 1.1", f.Command)
	}
	if hasSub {
		sub, ok := s.subs[string(subName)]
		if !ok {
			return ackTarget{}, protoErr("subscription not found", "no subscription with id %q", subName)
		}
		if tag, ok := sub.brokerSub.Load().TagOf(string(msgID)); ok {
			return ackTarget{sub: sub, tag: tag, cumulative: sub.ackMode == broker.AckClient}, nil
		}
	} else {
		for _, sub := range s.subs {
			if tag, ok := sub.brokerSub.Load().TagOf(string(msgID)); ok {
				return ackTarget{sub: sub, tag: tag, cumulative: sub.ackMode == broker.AckClient}, nil
			}
		}
	}
	return ackTarget{}, protoErr("unknown ack id", "message-id %q is not a pending delivery", msgID)
}

// applyAck hands a resolved ACK or NACK to the broker.
func (s *session) applyAck(t ackTarget) error {
	bs := t.sub.brokerSub.Load()
	var err error
	switch {
	case t.nack:
		err = s.broker.Nack(bs, t.tag, t.cumulative)
	case t.noWait:
		err = s.broker.AckNoWait(bs, t.tag, t.cumulative)
	default:
		err = s.broker.Ack(bs, t.tag, t.cumulative)
	}
	s.resumeStarved()
	return err
}
