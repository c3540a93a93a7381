package broker

import (
	"errors"
	"fmt"
)

// ErrUnknownDestination means a destination does not start with /topic/,
// /queue/, /reply-queue/ or /app/, or is an /app/ destination with no
// handler registered.
var ErrUnknownDestination = errors.New("unknown destination")

// ErrInvalidDestination means a destination has a known prefix but a bad name
// (empty, an empty word in a topic name, a wildcard word in a topic that is
// being published to), or is used in a way its kind does not allow:
// subscribing to an /app/ destination, DeliverTo a queue subscription.
var ErrInvalidDestination = errors.New("invalid destination")

// ErrQueueFull means a queue already holds its maximum number of ready
// messages, or of their bytes. Publish returns it wrapped in a [*QueueFullError] that names the
// queue. The message was not accepted; the sender should be told.
var ErrQueueFull = errors.New("queue is full")

// ErrNoRoute means the destination does not exist: a reply queue that was
// never declared or has been deleted. A message published to it is not
// accepted.
var ErrNoRoute = errors.New("no such destination")

// ErrUnknownTag means an Ack or Nack named a delivery tag that is not among
// the subscription's unacknowledged deliveries: already acknowledged, never
// issued, issued in auto mode, or returned to its queue when the subscription
// ended.
var ErrUnknownTag = errors.New("unknown delivery tag")

// ErrSlowConsumer is the reason given to [Subscriber.Evict] when a
// destination's slow-consumer policy cuts a subscription off.
var ErrSlowConsumer = errors.New("slow consumer")

// ErrInvalidAckMode means SubscribeOptions.AckMode is not one of the AckMode
// constants.
var ErrInvalidAckMode = errors.New("invalid ack mode")

// ErrReadOnly means a publish to a destination whose policy is ReadOnly came
// from a sender other than the server. Publish returns it wrapped so that the
// text names the destination: `destination "/topic/chat" is read-only`.
var ErrReadOnly = errors.New("destination is read-only")

// ErrInvalidPolicy means a slow-consumer policy name or value is not one of
// the SlowConsumerPolicy constants.
var ErrInvalidPolicy = errors.New("invalid slow-consumer policy")

// QueueFullError is the error Publish returns when a queue is at its depth
// or byte limit. It matches [ErrQueueFull] with errors.Is, and its text names
// the queue and the limit, e.g. `queue "/queue/x" is full (100000 messages)`
// or `queue "/queue/x" is full (67108864 bytes)`.
type QueueFullError struct {
	Destination string // the queue, as published to
	Limit       int    // its maximum number of ready messages, or of their bytes with Bytes
	Bytes       bool   // the byte limit was reached (Options.MaxQueueBytes), not the depth
}

// Error implements error.
func (e *QueueFullError) Error() string {
	unit := "messages"
	if e.Bytes {
		unit = "bytes"
	}
	return fmt.Sprintf("queue %q is full (%d %s)", e.Destination, e.Limit, unit)
}

// Unwrap returns ErrQueueFull.
func (e *QueueFullError) Unwrap() error { return ErrQueueFull }

// ErrTooManyDestinations means a publish or subscribe would create a queue,
// reply queue or retaining topic beyond Options.MaxDestinations. Publish,
// Subscribe and DeclareReplyQueue return it wrapped in a
// [*TooManyDestinationsError] that names the limit. Nothing was created or
// accepted.
var ErrTooManyDestinations = errors.New("too many destinations")

// TooManyDestinationsError names the bound a refused creation met, e.g.
// `too many destinations (limit 100000)`, or for the creator's quota
// `too many destinations created (limit 1000)`. It matches
// [ErrTooManyDestinations] with errors.Is.
type TooManyDestinationsError struct {
	Limit      int  // Options.MaxDestinations, or the creator's DestinationQuota
	PerCreator bool // the creator's quota was used up, not the broker-wide bound
}

// Error implements error.
func (e *TooManyDestinationsError) Error() string {
	if e.PerCreator {
		return fmt.Sprintf("%v created (limit %d)", ErrTooManyDestinations, e.Limit)
	}
	return fmt.Sprintf("%v (limit %d)", ErrTooManyDestinations, e.Limit)
}

// Unwrap returns ErrTooManyDestinations.
func (e *TooManyDestinationsError) Unwrap() error { return ErrTooManyDestinations }

// ErrRetainedFull means a topic destination would retain a message that takes
// the bytes all destinations retain past Options.MaxRetainedBytes. Publish
// returns it wrapped in a [*RetainedFullError] that names the limit. The
// message was neither retained nor delivered; the sender should be told.
var ErrRetainedFull = errors.New("retained messages limit reached")

// RetainedFullError names the bound a refused retention met, e.g.
// `retained messages limit reached (max-retained-bytes 268435456)`. It
// matches [ErrRetainedFull] with errors.Is.
type RetainedFullError struct {
	Limit int64 // Options.MaxRetainedBytes
}

// Error implements error.
func (e *RetainedFullError) Error() string {
	return fmt.Sprintf("%v (max-retained-bytes %d)", ErrRetainedFull, e.Limit)
}

// Unwrap returns ErrRetainedFull.
func (e *RetainedFullError) Unwrap() error { return ErrRetainedFull }

// ErrStoreUnavailable means a queue's Store could not take or open a message
// (disk full, store size bound, store down). Publish returns it wrapped with
// the store's reason; the message was not accepted.
var ErrStoreUnavailable = errors.New("store unavailable")

func errNotTopic(dest string) error {
	return fmt.Errorf("%w %q: only topic messages cross the backplane", ErrInvalidDestination, dest)
}

func errNoRoute(dest string) error {
	return fmt.Errorf("%w: %q", ErrNoRoute, dest)
}

// readOnlyError names the read-only destination a publish was refused for.
type readOnlyError struct{ dest string }

func (e *readOnlyError) Error() string { return fmt.Sprintf("destination %q is read-only", e.dest) }

func (e *readOnlyError) Unwrap() error { return ErrReadOnly }
