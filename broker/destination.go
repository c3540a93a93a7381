package broker

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the class of a destination, decided by its prefix.
type Kind uint8

// Destination kinds. The zero Kind is not a valid destination.
const (
	// KindTopic is /topic/NAME: fan-out to every current subscriber.
	KindTopic Kind = iota + 1
	// KindQueue is /queue/NAME: competing consumers, messages held.
	KindQueue
	// KindReplyQueue is /reply-queue/NAME: a queue that exists only while
	// declared.
	KindReplyQueue
	// KindApp is /app/NAME: an in-process handler registered with
	// HandleApp; it takes SEND only.
	KindApp
)

// KindCount is the length of the arrays indexed by Kind, such as
// Stats.Published: one more than the largest Kind, so that an array is
// indexed by the Kind itself and its element 0 (no kind) stays zero.
const KindCount = int(KindApp) + 1

const (
	topicPrefix      = "/topic/"
	queuePrefix      = "/queue/"
	replyQueuePrefix = "/reply-queue/"
	appPrefix        = "/app/"
)

// String returns "topic", "queue", "reply-queue" or "app".
func (k Kind) String() string {
	switch k {
	case KindTopic:
		return "topic"
	case KindQueue:
		return "queue"
	case KindReplyQueue:
		return "reply-queue"
	case KindApp:
		return "app"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseDestination classifies dest for publishing. Topic names must be
// non-empty words separated by '.', and no word may be a '*' or '#' wildcard;
// queue, reply-queue and app names are taken literally and must be non-empty.
// It returns ErrUnknownDestination for an unknown prefix and
// ErrInvalidDestination for a bad name, wrapped with the destination. It does
// not allocate on success.
func ParseDestination(dest string) (Kind, error) {
	kind, name, err := splitDestination(dest)
	if err != nil {
		return 0, err
	}
	if kind == KindTopic && hasWildcardWord(name) {
		return 0, fmt.Errorf("%w %q: wildcards are only allowed in subscriptions", ErrInvalidDestination, dest)
	}
	return kind, nil
}

// splitDestination checks the rules shared by publishing and subscribing and
// returns the name after the kind prefix. Wildcards are left to the caller.
func splitDestination(dest string) (Kind, string, error) {
	var kind Kind
	var name string
	switch {
	case strings.HasPrefix(dest, topicPrefix):
		kind, name = KindTopic, dest[len(topicPrefix):]
	case strings.HasPrefix(dest, queuePrefix):
		kind, name = KindQueue, dest[len(queuePrefix):]
	case strings.HasPrefix(dest, replyQueuePrefix):
		kind, name = KindReplyQueue, dest[len(replyQueuePrefix):]
	case strings.HasPrefix(dest, appPrefix):
		kind, name = KindApp, dest[len(appPrefix):]
	default:
		return 0, "", fmt.Errorf("%w %q: want /topic/, /queue/, /reply-queue/ or /app/", ErrUnknownDestination, dest)
	}
	if name == "" {
		return 0, "", fmt.Errorf("%w %q: empty name", ErrInvalidDestination, dest)
	}
	if kind == KindTopic && hasEmptyWord(name) {
		return 0, "", fmt.Errorf("%w %q: empty word in topic name", ErrInvalidDestination, dest)
	}
	return kind, name, nil
}

// Topic names are walked word by word with byte offsets instead of
// strings.Split so that routing never allocates. A position past the end of
// the name (len(name)+1) means "no words left"; the empty name has no words.

// firstWord returns the position of the first word of name.
func firstWord(name string) int {
	if name == "" {
		return 1
	}
	return 0
}

// nextWord returns the word at pos and the position of the following one.
// pos must not be past the end (pos <= len(name)).
func nextWord(name string, pos int) (word string, next int) {
	if i := strings.IndexByte(name[pos:], '.'); i >= 0 {
		return name[pos : pos+i], pos + i + 1
	}
	return name[pos:], len(name) + 1
}

func hasEmptyWord(name string) bool {
	for pos := firstWord(name); pos <= len(name); {
		var w string
		w, pos = nextWord(name, pos)
		if w == "" {
			return true
		}
	}
	return false
}

func hasWildcardWord(name string) bool {
	for pos := firstWord(name); pos <= len(name); {
		var w string
		w, pos = nextWord(name, pos)
		if w == "*" || w == "#" {
			return true
		}
	}
	return false
}
