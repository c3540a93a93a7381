// Package natsengine keeps the broker's queues, streams, durable subscriptions and retained messages
// beyond the process on NATS JetStream: with a data directory, in a NATS server embedded in stompd (no
// port, no other process), talking to it in process; in a cluster, on the NATS servers' JetStream,
// where it is also the backplane between the nodes (see Cluster).
//
// It implements broker.Store, broker.RetainedStore, broker.StreamStore and broker.DurableStore; Cluster
// implements broker.Backplane. Every queue's messages live in one JetStream
// stream, QUEUES, with
// work-queue retention: a message stays on disk until the broker acknowledges it, which it does when a
// STOMP consumer's ACK (or an auto-ack delivery) takes it for good. Each queue has one durable pull
// consumer on its own subject, from which the broker's in-memory queue fetches only as many messages as
// its consumers have room for: what waits in a deep queue stays on disk, not in memory. A COMMIT's
// messages are one atomic batch publish. Topics' retained messages live in the stream RETAINED, a
// subject per destination (r.TOKEN) keeping as many messages as the largest history; the broker loads
// them once, when it starts.
//
// # Names
//
// A queue /queue/NAME is the subject q.TOKEN, where TOKEN is NAME with every byte outside [A-Za-z0-9_-]
// written as %XX, so that dots, wildcards and spaces cannot change the subject's meaning. Its durable
// consumer is q-HASH (the first 32 hex digits of NAME's SHA-256), since consumer names are file names;
// its description holds the destination. The key-value bucket STOMPD_FETCHED holds, per consumer, the
// highest stream sequence fetched, written before the fetched messages reach the broker.
//
// # Restarts
//
// One process owns the directory at a time (a lock file, Start refuses a second). At Start, every
// queue consumer left by the previous process is replaced by a fresh one: the messages the previous
// process had fetched and not acknowledged are pending on the old consumer, which nobody would ever
// acknowledge; the stream still holds them, so the fresh consumer delivers them again, and those at or
// below the old consumer's last delivered sequence, or its fetch mark, are marked redelivered. A store
// the server could not read is refused rather than replaced by an empty one.
//
// # Cluster
//
// JoinCluster connects a node to a NATS cluster (Cluster): topic messages cross on core NATS subjects
// t.W1.W2 (each word escaped as TOKEN above), each node subscribing only to what its own subscribers
// want, with repeats from overlapping subscriptions dropped by the origin's sequence number; replies
// cross on _stompd.reply.NODEID; heart-beats on _stompd.node carry each node's name, shared state
// (chat members; a change fires OnStateChange) and figures for operators (SetFigures; read at each
// beat, changing at every one, firing nothing). Cluster.OpenStore opens the same streams and buckets
// on the cluster's JetStream, with Config.Replicas copies, shared by every node: each node fetches for
// its own consumers from the queue's one durable consumer, renews its hold of what it holds every
// AckWait/3, and hands it back (NAK) when it closes or has no consumer left; consumers are never
// replaced at start (the other nodes use them). Stream destinations are numbered by JetStream (AppendNumbered); durable subscriptions are
// watched in STOMPD_DURABLE by every node, each notice with the bucket's revision of its change, so that
// a deletion's notice, which may come after the node made the subscription again, removes it only
// if it is newer than the record the node made or learned (broker.ForgetDurable); STOMPD_LEASES elects the node that runs a single job. Nodes
// starting together look streams up before creating them, with short bounds, as concurrent creates of
// one stream can go unanswered.
//
// # Limits
//
// NATS bounds what crosses it, and a connection that breaks its protocol limits is closed for good
// (Cluster.ConnectionClosed). A destination whose escaped subject passes maxSubjectBytes (1 KiB,
// well below the servers' 4 KiB max_control_line) is refused: a queue or stream cannot be opened
// (ErrNameTooLong, which the broker reports as the store being unavailable for it), a topic
// subscription works on its node only, and its messages, and retained messages, are not sent. A
// topic message whose batch would pass the servers' max_payload (1 MiB by default; a STOMP frame
// may take 4 MiB) reaches the subscribers of its own node only and is counted in
// ClusterStats.FailedOut; batches of several messages stay within maxBatchBytes.
//
// What other nodes send waits for delivery on one goroutine, in arrival order, bounded by count
// (inboundBuffer batches) and by bytes (inboundBytes, 32 MiB); past either, and past the
// natsChanLen batches NATS may hand over before the node takes them, batches are dropped, never
// reordered, and counted in ClusterStats.Dropped (summed over subscriptions, ended ones
// included). A message from a batch of several gets a body of its own, so that a retained or held
// one does not keep the whole batch alive.
//
// # Concurrency
//
// An Engine and the queues it opens are safe for concurrent use. A queue fetches on a goroutine of its
// own while the broker has asked for messages (StoredQueue.Want) and none are left to fetch; the
// goroutine ends when the asks are met. Close stops them and the server.
package natsengine
