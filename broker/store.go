package broker

// Store keeps the messages of queues beyond the process (Options.Store); without one they live in
// memory and are gone on restart. Only /queue/ destinations are stored: reply queues belong to a
// session and go with it.
//
// With a Store, a queue's publish returns once the store holds the message (that is when a RECEIPT
// may be sent), and its ready messages come from the store as the queue's consumers have room: the
// queue asks with StoredQueue.Want and the messages arrive through QueueFeed.Stored. A message leaves
// the store when it is acknowledged (an ACK, or the delivery itself in auto-ack mode); a NACK, or a
// consumer leaving, requeues it in memory as without a Store, and it stays in the store meanwhile.
type Store interface {
	// OpenQueue opens the stored messages of queue dest, which feed receives. The broker calls it
	// once per queue, when the queue is first used, holding the queue's shard lock or the durable
	// subscriptions' registry lock and no other broker lock.
	OpenQueue(dest string, feed QueueFeed) (StoredQueue, error)
	// AppendAll stores msgs[i] at the end of queues[i] (queues this Store opened), all of them or
	// none: a crash in the middle leaves none stored. It returns once they are stored. The broker calls
	// it without broker locks held, with at most MaxAtomicBatch messages.
	AppendAll(queues []StoredQueue, msgs []*Message) error
	// Sync returns once every append and acknowledgement handed over without waiting so far has been
	// taken by the store (or failed), within the store's own bound.
	Sync() error
}

// MaxAtomicBatch is the most messages one Store.AppendAll takes; PublishAll splits longer
// transactions into batches of this size, each all or nothing.
const MaxAtomicBatch = 1000

// StoredQueue is one queue's messages in a Store. Its methods are safe for concurrent use; none of them
// calls back into the broker except through the QueueFeed, and then never from within Want or Ack.
type StoredQueue interface {
	// Append stores m at the end of the queue and returns once it is stored, or why it could not be:
	// the message was then not accepted. The broker calls it without broker locks held.
	Append(m *Message) error
	// AppendNoWait is Append without waiting: done is called, from another goroutine, once m is
	// stored (nil) or refused. Appends of one goroutine are stored in the order they were made, with
	// Append and AppendAll too.
	AppendNoWait(m *Message, done func(error))
	// Want asks for n more messages (n > 0) through the feed, oldest first, as they become available.
	// Asks add up until met; it does not block.
	Want(n int)
	// Ack removes messages that reached the queue through the feed, for good, in order. With wait it
	// returns once the store has recorded the removals, so that a RECEIPT for the ACK may be sent, and
	// the broker calls it without broker locks held; without wait (auto-ack deliveries) it does not
	// block. An error leaves the messages in the store: they come back after a restart.
	Ack(refs []StoredRef, wait bool) error
	// Stored reports the messages the store holds for the queue, delivered or not, and their bytes
	// (Message.Size).
	Stored() (messages int, bytes int64)
	// Release hands messages the queue fetched and holds ready back to the store, when the store is
	// shared by several brokers (a cluster) and this one has no consumer for them: they go to another
	// broker's consumers, marked redelivered. It reports false, taking nothing, when the store is this
	// broker's alone; then the queue keeps them. It must not block.
	Release(refs []StoredRef) bool
	// Purge removes the queue's messages from the store, keeping the queue: an operator's purge. It
	// does not block on broker locks; the broker calls it without broker locks held.
	Purge() error
	// Delete removes the queue and its messages from the store for good (a durable subscription
	// deleted, a queue removed by an operator): nothing is fed after it returns. The broker calls it
	// holding no broker lock but the durable subscriptions' registry lock, or, for a removed queue,
	// its shard's lock (so that the queue is not made again meanwhile), as it calls OpenQueue; it
	// must not call back into the broker.
	Delete() error
}

// StoredRef identifies a stored message for StoredQueue.Ack; only its Store knows what it holds.
type StoredRef any

// QueueFeed receives a queue's stored messages.
type QueueFeed interface {
	// Stored hands the queue messages it asked for, oldest first. redelivered says a message may have
	// been delivered before (a restart came between). Called from the Store's goroutine.
	Stored(msgs []StoredMessage)
}

// StoredMessage is a message read back from a Store.
type StoredMessage struct {
	Message     *Message
	Redelivered bool
	Ref         StoredRef
}

// RetainedStore keeps topics' retained messages (last values and histories, Options.Policies) beyond
// the process (Options.Retained); without one they live in memory only.
type RetainedStore interface {
	// LoadRetained returns the retained messages kept, oldest first within each destination. The
	// broker calls it once, in New, and retains them again as its policies say.
	LoadRetained() ([]*Message, error)
	// KeepRetained records m as its destination's newest retained message. It is called with broker
	// locks held and must not block; a failure is the store's to report, and costs only m's surviving a
	// restart.
	KeepRetained(m *Message)
}
