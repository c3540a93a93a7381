// Package natsengine keeps the broker's queues beyond the process on NATS JetStream: with a data
// directory, in a NATS server embedded in stompd (no port, no other process), talking to it in process.
//
// It implements broker.Store and broker.RetainedStore. Every queue's messages live in one JetStream
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
// # Concurrency
//
// An Engine and the queues it opens are safe for concurrent use. A queue fetches on a goroutine of its
// own while the broker has asked for messages (StoredQueue.Want) and none are left to fetch; the
// goroutine ends when the asks are met. Close stops them and the server.
package natsengine
