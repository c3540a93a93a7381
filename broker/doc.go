// Package broker routes messages between publishers and subscribers: topic
// fan-out, queues with competing consumers, reply queues, acknowledgements and
// slow-consumer policies. It knows nothing of STOMP, WebSocket or any network;
// a protocol layer drives it through [Broker] and receives messages through
// the [Subscriber] interface.
//
// # Destinations
//
// Names follow RabbitMQ's conventions:
//
//   - /topic/NAME: every current subscriber gets a copy; a message nobody
//     subscribed to is dropped and counted in [Stats].DroppedMessages. NAME is
//     non-empty words separated by '.'; subscriptions may use the whole-word
//     wildcards '*' (exactly one word) and '#' (zero or more words).
//   - /queue/NAME: competing consumers; messages wait while nobody consumes.
//     The queue is created by the first publish or subscribe and then kept.
//   - /reply-queue/NAME: a queue that exists only between
//     [Broker.DeclareReplyQueue] and [Broker.DeleteQueue].
//
// # Invariants
//
//  1. A publisher is never blocked by a subscriber. Delivery is a synchronous,
//     non-blocking call to [Subscriber.Deliver] from the publisher's goroutine;
//     there is no routing goroutine and no channel hop. A subscriber that
//     answers [Full] is handled by its destination's policy (topics) or keeps
//     the message queued for it (queues); other subscribers are not delayed.
//  2. A message is immutable once published. Every delivery shares the same
//     *[Message]; the body is never copied, and [Message.Encoded] lets a
//     protocol layer encode the part of a frame all subscribers share once.
//  3. Per publisher and destination, every subscription sees messages in
//     publish order: Publish delivers before it returns, and deliveries to one
//     subscription are serialised by its lock, so delivery tags also rise in
//     delivery order.
//  4. Queue messages are never silently dropped. They are delivered, held
//     (up to a bounded depth, beyond which Publish fails with [ErrQueueFull]),
//     or returned to the front of the queue when NACKed or when their consumer
//     unsubscribes. Requeued messages are never refused for depth. Only
//     deleting a reply queue discards messages, and that is explicit.
//  5. No allocation per delivery: fan-out walks subscriber slices in place
//     while holding read locks.
//
// # Lock order
//
// Locks are taken in this order and never the other way round:
//
//	shard (topic map and queue map of one hash shard)
//	  → pattern trie (only after the shard lock has been released)
//	  → queue
//	    → subscription
//	      → the subscriber's own locks, inside Deliver or Evict
//
// Deliver and Evict run with the shard or trie read lock (topics) or the queue
// lock (queues) held, plus the subscription's lock. Unsubscribe takes the
// matching write lock or queue lock, which is how it waits for deliveries in
// progress. A subscriber must therefore not call back into the Broker from
// Deliver or Evict, and must not hold a lock its Deliver needs while it calls
// Unsubscribe, Ack or Nack.
package broker
