// Package broker routes messages between publishers and subscribers: topic
// fan-out, queues with competing consumers, reply queues, in-process app
// handlers, acknowledgements, retained messages and slow-consumer policies.
// It knows nothing of STOMP, WebSocket or any network; a protocol layer
// drives it through [Broker] and receives messages through the [Subscriber]
// interface, and in-process publishers use the same API.
//
// # Destinations
//
// Names follow RabbitMQ's conventions:
//
//   - /topic/NAME: every current subscriber gets a copy; a message nobody
//     subscribed to is dropped and counted in [Stats].DroppedNoRoute,
//     unless its destination retains it. NAME is non-empty words separated
//     by '.'; subscriptions may use the whole-word wildcards '*' (exactly one
//     word) and '#' (zero or more words).
//   - /queue/NAME: competing consumers; messages wait while nobody consumes.
//     The queue is created by the first publish or subscribe and then kept.
//   - /reply-queue/NAME: a queue that exists only between
//     [Broker.DeclareReplyQueue] and [Broker.DeleteQueue].
//   - /app/NAME: a handler registered with [Broker.HandleApp], called by
//     Publish on the publisher's goroutine. It takes SEND only.
//
// # Policies
//
// [DestinationPolicy] values, matched by pattern, configure destinations:
// what a topic does with a lagging subscription (disconnect, conflate,
// drop-oldest), last-value and history retention, read-only destinations
// that only the server ([Identity] zero value) may publish to, and queue
// depth. A destination's policy is resolved once and cached with it.
//
// # Counting
//
// The broker sees every publish, delivery and drop, including those of
// in-process publishers that have no protocol session, so it keeps the
// message counters itself and [Broker.Stats] reports them: published and
// delivered by destination kind, redelivered, and dropped by reason (no
// route, conflated, dropped oldest, evicted subscriptions). A metrics layer
// reads them at scrape time; the broker imports no metrics code.
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
//     Retained and held messages are the same shared *Message.
//  3. Per publisher and destination, every subscription sees messages in
//     publish order: Publish delivers before it returns, and deliveries to one
//     subscription are serialised by its lock, so delivery tags also rise in
//     delivery order. A lagging subscription under conflate or drop-oldest
//     never has a message overtake a held one: while it holds any, new
//     messages of those policies join the held ones, and Resume delivers them
//     oldest first (conflation replaces a held message in place, so its
//     destination keeps its turn).
//  4. Queue messages are never silently dropped. They are delivered, held
//     (up to a bounded depth and a bounded total size, beyond which Publish
//     fails with [ErrQueueFull]),
//     or returned to the front of the queue when NACKed or when their consumer
//     unsubscribes. Requeued messages are never refused for depth. Only
//     deleting a reply queue discards messages, and that is explicit.
//  5. No allocation per delivery: fan-out walks subscriber slices in place
//     while holding read locks. Lag state is allocated only for a
//     subscription that falls behind, and freed once it catches up.
//  6. A new topic subscription gets the retained messages (last value or
//     history) of each destination it covers, then the live stream, with no
//     gap and no duplicate, even while those destinations are being
//     published to. An exact subscription is added and served its retained
//     messages under the shard write lock, which publishers of the
//     destination hold for reading while they retain and deliver. A wildcard
//     subscription is added and served under the trie write lock, from a
//     snapshot that records each destination's retention sequence number, so
//     that a publisher that retained before the snapshot but reaches the
//     trie after it skips the subscription.
//  7. Retained state is bounded per destination (1 or History messages), and
//     only destinations whose policy retains keep any. A destination that
//     has retained a message keeps it for the life of the broker, and with
//     Options.Retained beyond it: New restores what the store kept.
//  8. The broker starts no goroutines, with one exception: a stream
//     subscription that is behind what a stored stream keeps in memory
//     reads the StreamStore on a goroutine of its own, one read at a time
//     per subscription, so that no store read happens under a lock. App handlers and observers run on
//     the goroutine of the Publish, Subscribe or Unsubscribe that triggers
//     them, with no broker lock held, so they may call back into the broker.
//  9. Counting takes no lock and allocates nothing. Message counters are
//     atomics kept per shard, beside the lock a publisher already holds, so
//     publishers to different destinations do not share them; a run of
//     deliveries (a fan-out, a queue dispatch, a drain of held messages)
//     counts in a local variable and adds it once at the end. Counters only
//     rise, from New on, and survive the destinations they counted.
//  10. With Options.Store, a queue's messages live in the store: Publish (and
//     PublishAll's batch) returns once stored, an Ack returns once the store
//     has removed the messages, and the queue holds in memory only what its
//     consumers have room for. PublishNoWait, AckNoWait and auto-ack
//     deliveries hand their work over without waiting, in order; SyncStore
//     waits for it.
//  11. A stream destination numbers its messages under its publish lock, in
//     the order its live subscribers get them. With a StreamStore the
//     offset is the store's position: a refused append makes the next
//     publish read the store's bounds again and number from there, so a
//     live subscriber may have seen the refused message under the offset
//     the next one gets. A stream subscription never does: it is a cursor, not
//     a member of the fan-out, and reads by offset from the stream's log (or
//     store), with a StreamStore only below the offset the store has
//     confirmed, so it sees every kept message once, in order, from its
//     starting point on, whatever races with publishers or refusals, and only
//     as fast as its subscriber has room: a refusal, or a full UnackedLimit
//     shared with other subscriptions, waits for Resume, a full client-ack
//     window for an Ack.
//
// # Lock order
//
// Locks are taken in this order and never the other way round:
//
//	durable subscriptions registry (made and deleted under it, store work included)
//	  → everything below, through the binding's Subscribe and the queue's store
//	stream publish lock (one stream destination's publishes, in offset order)
//	  → the shard and trie locks below, for the live delivery
//	  → stream log lock (a leaf; also under a subscription's lock, by a
//	    stream subscription reading the log)
//	pattern trie (write, by a wildcard Subscribe reading retained messages)
//	  → shard (topic map, retained index, policy cache and queue map of one hash shard)
//	    → topic entry retention lock (a leaf)
//	  → queue
//	    → subscription
//	      → the subscriber's own locks, inside Deliver or Evict
//	    → the store's own locks (StoredQueue.Want and Ack without waiting, from
//	      dispatch; RetainedStore.KeepRetained from a retention), leaves
//
// A durable subscription's binding delivers into the subscription's private
// queue: Deliver runs under the shard or trie lock and the binding's
// subscription lock, and takes the private queue's lock, then its
// consumers' locks. No path holds a private queue's lock and then a shard,
// trie or binding lock, so this nests inside the order above.
//
// The Backplane is called with no broker lock held (Forward after the local
// delivery, Watch and Unwatch outside Subscribe's locks); StoredStream's
// AppendNumbered runs under the stream publish lock and waits for the store,
// which serializes a node's publishes to one stream.
//
// A stream's cursors are pumped after its publish lock is released (with a
// StreamStore, from Append's done callback, which a store calls with none of
// its locks held), each under its subscription's lock; StoredStream.Append is
// called under the publish lock and must not block, and Read, Seek and Bounds
// with no broker lock held.
//
// A store calls QueueFeed.Stored with none of its locks held, and the broker
// calls Append, AppendAll, a waiting Ack, Sync and OpenQueue's work with no
// queue lock held (OpenQueue runs under the shard lock, once per queue).
//
// Publishers take a shard lock and release it before taking the trie lock;
// queue operations release the shard lock before taking the queue lock. The
// app handler registry and the observer list are leaves, never held while
// calling out.
//
// Deliver and Evict run with the subscription's lock held, and usually the
// shard or trie lock (topics) or the queue lock (queues) as well; Resume,
// DeliverTo and Ack on a topic subscription hold only the subscription's
// lock. Unsubscribe takes the matching write lock or queue lock, and then the
// subscription's lock, which is how it waits for deliveries in progress. A
// subscriber must therefore not call back into the Broker from Deliver or
// Evict, and must not hold a lock its Deliver needs while it calls
// Unsubscribe, Ack or Nack. The one call tolerated from Deliver is Resume,
// because room can appear as soon as Deliver answers Full: of the
// subscription being delivered to (a queue subscription is not yet marked
// blocked then, so Resume only counts), or of any topic subscription (while
// a Deliver runs for a lagging topic subscription, its draining flag makes
// Resume return at once and leaves the catching up to the goroutine that
// holds its lock). Resuming another queue subscription from Deliver can
// deadlock on the queue lock.
package broker
