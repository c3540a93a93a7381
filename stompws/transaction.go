package stompws

import (
	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/frame"
)

// transaction holds the SENDs, ACKs and NACKs framed by BEGIN … COMMIT; they take effect at COMMIT,
// in order, and are discarded by ABORT or the end of the session.
type transaction struct {
	id        string
	ops       []txOp
	maxFrames int
	bytes     int64 // Message.Size of the SENDs held
}

// txOp is one held frame: a message to publish, or an ACK/NACK.
type txOp struct {
	message *broker.Message
	ack     ackTarget
}

// add holds op in tx, within the frame bound of a transaction and the byte bound of all the session's
// open transactions (Options.MaxTxBytes, counted in s.txBytes).
func (s *session) addToTransaction(tx *transaction, op txOp) error {
	if len(tx.ops) >= tx.maxFrames {
		return protoErr("transaction too large", "transaction %q exceeds %d frames", tx.id, tx.maxFrames)
	}
	if op.message != nil {
		size := int64(op.message.Size())
		if s.txBytes.Load()+size > int64(s.opts.MaxTxBytes) {
			return protoErr("transaction too large", "the open transactions of this connection would hold more than %d bytes (max-tx-bytes)",
				s.opts.MaxTxBytes)
		}
		tx.bytes += size
		s.txBytes.Add(size)
	}
	tx.ops = append(tx.ops, op)
	return nil
}

// endTransaction forgets tx, committed, aborted or left open at the end of the session.
func (s *session) endTransaction(tx *transaction) {
	delete(s.txs, tx.id)
	s.txBytes.Add(-tx.bytes)
	tx.bytes = 0
}

// transaction finds an open transaction by id.
func (s *session) transaction(id []byte) (*transaction, error) {
	tx, ok := s.txs[string(id)]
	if !ok {
		return nil, protoErr("unknown transaction", "no open transaction %q", id)
	}
	return tx, nil
}

func (s *session) handleBegin(f *frame.Frame) error {
	id, err := transactionHeader(f)
	if err != nil {
		return err
	}
	if _, dup := s.txs[string(id)]; dup {
		return protoErr("transaction already open", "transaction %q", id)
	}
	if len(s.txs) >= s.opts.MaxTransactions {
		return protoErr("too many transactions", "limit is %d open transactions per connection", s.opts.MaxTransactions)
	}
	if s.txs == nil {
		s.txs = make(map[string]*transaction)
	}
	s.txs[string(id)] = &transaction{id: string(id), maxFrames: s.opts.MaxTxFrames}
	return nil
}

// handleCommit applies a transaction: its SENDs in order, through Broker.PublishAll (with a store, those
// to stored queues are stored as one batch, all or nothing, before any is delivered), then its ACKs and
// NACKs in order. The first refusal (a full queue, an ACK for a delivery that is no longer pending)
// stops the commit with an ERROR; what came before it took effect.
func (s *session) handleCommit(f *frame.Frame) error {
	id, err := transactionHeader(f)
	if err != nil {
		return err
	}
	tx, err := s.transaction(id)
	if err != nil {
		return err
	}
	s.endTransaction(tx)
	var msgs []*broker.Message
	for _, op := range tx.ops {
		if op.message != nil {
			msgs = append(msgs, op.message)
		}
	}
	for len(msgs) > 0 {
		i, err := s.broker.PublishAll(msgs)
		if err == nil {
			break
		}
		if err := s.publishOutcome(msgs[i], err); err != nil {
			return err
		}
		msgs = msgs[i+1:] // a refusal that is no error (a reply queue gone): go on after it
	}
	for _, op := range tx.ops {
		if op.message == nil {
			if err := s.applyAck(op.ack); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *session) handleAbort(f *frame.Frame) error {
	id, err := transactionHeader(f)
	if err != nil {
		return err
	}
	tx, err := s.transaction(id)
	if err != nil {
		return err
	}
	s.endTransaction(tx)
	return nil
}

// transactionHeader reads the transaction header BEGIN, COMMIT and ABORT require.
func transactionHeader(f *frame.Frame) ([]byte, error) {
	if err := noBody(f); err != nil {
		return nil, err
	}
	id, ok := f.Get("transaction")
	if !ok || len(id) == 0 {
		return nil, protoErr("missing transaction header", "%s requires a transaction", f.Command)
	}
	return id, nil
}
