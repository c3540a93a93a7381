package broker

import (
	"strings"
	"sync"
	"sync/atomic"
)

// patternIndex holds the wildcard topic subscriptions in a trie of words, so
// that a publish visits only the branches its destination can match rather
// than every pattern.
type patternIndex struct {
	mu       sync.RWMutex
	root     patternNode
	patterns int // distinct patterns with subscriptions; guarded by mu

	// count is the number of wildcard subscriptions. While it is zero,
	// Publish skips the trie and its lock altogether.
	count atomic.Int64
}

// patternNode is one word position in the trie. The words of a topic name
// below /topic/ lead from the root to the node holding the subscriptions of
// that pattern.
type patternNode struct {
	parent   *patternNode
	word     string                  // the word leading here from parent
	children map[string]*patternNode // literal words
	star     *patternNode            // '*'
	hash     *patternNode            // '#'
	subs     []*Subscription

	// ambiguous marks a pattern with two or more '#' words separated by
	// others ("#.*.#"): one destination can reach it along several paths,
	// and each publish must deliver to it once only.
	ambiguous bool
}

// normalizePattern collapses runs of '#' words ("a.#.#" → "a.#"), which match
// the same destinations, so that the trie never holds a '#' below a '#'.
func normalizePattern(name string) string {
	if !strings.Contains(name, "#.#") {
		return name
	}
	var b strings.Builder
	prevHash := false
	for pos := firstWord(name); pos <= len(name); {
		var w string
		w, pos = nextWord(name, pos)
		if w == "#" && prevHash {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(w)
		prevHash = w == "#"
	}
	return b.String()
}

// addLocked puts s in the trie. The caller holds x.mu for writing.
func (x *patternIndex) addLocked(s *Subscription) {
	n := &x.root
	hashes := 0
	for pos := firstWord(s.pattern); pos <= len(s.pattern); {
		var w string
		w, pos = nextWord(s.pattern, pos)
		n = n.child(w)
		if w == "#" {
			hashes++
		}
	}
	if len(n.subs) == 0 {
		x.patterns++
	}
	n.ambiguous = hashes > 1
	n.subs = append(n.subs, s)
	x.count.Add(1)
}

// remove deletes s under the trie write lock, which waits for publishers
// delivering to it, and prunes branches left empty. It reports whether s was
// still subscribed.
func (x *patternIndex) remove(s *Subscription) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := &x.root
	for pos := firstWord(s.pattern); pos <= len(s.pattern) && n != nil; {
		var w string
		w, pos = nextWord(s.pattern, pos)
		n = n.lookup(w)
	}
	if n != nil && removeSubscription(&n.subs, s) {
		x.count.Add(-1)
		if len(n.subs) == 0 {
			x.patterns--
			n.subs = nil
			n.prune()
		}
	}
	return s.markRemoved()
}

func (n *patternNode) lookup(w string) *patternNode {
	switch w {
	case "*":
		return n.star
	case "#":
		return n.hash
	}
	return n.children[w]
}

func (n *patternNode) child(w string) *patternNode {
	if c := n.lookup(w); c != nil {
		return c
	}
	c := &patternNode{parent: n, word: w}
	switch w {
	case "*":
		n.star = c
	case "#":
		n.hash = c
	default:
		if n.children == nil {
			n.children = make(map[string]*patternNode)
		}
		n.children[w] = c
	}
	return c
}

// prune detaches n and then its ancestors while they hold nothing.
func (n *patternNode) prune() {
	for n.parent != nil && len(n.subs) == 0 && len(n.children) == 0 && n.star == nil && n.hash == nil {
		p := n.parent
		switch n.word {
		case "*":
			p.star = nil
		case "#":
			p.hash = nil
		default:
			delete(p.children, n.word)
			if len(p.children) == 0 {
				p.children = nil
			}
		}
		n = p
	}
}

// match delivers st's message to every wildcard subscription whose pattern
// matches the topic name (the destination without "/topic/").
func (x *patternIndex) match(name string, st *topicPublish) {
	x.mu.RLock()
	x.root.match(name, firstWord(name), st)
	x.mu.RUnlock()
}

func (n *patternNode) match(name string, pos int, st *topicPublish) {
	if h := n.hash; h != nil {
		// '#' absorbs zero, one, … or all of the remaining words.
		for p := pos; ; {
			h.match(name, p, st)
			if p > len(name) {
				break
			}
			_, p = nextWord(name, p)
		}
	}
	if pos > len(name) {
		if len(n.subs) > 0 && (!n.ambiguous || !st.markSeen(n)) {
			for _, s := range n.subs {
				st.deliver(s)
			}
		}
		return
	}
	w, next := nextWord(name, pos)
	if c := n.children[w]; c != nil {
		c.match(name, next, st)
	}
	if n.star != nil && w != "" {
		n.star.match(name, next, st)
	}
}

// stats counts the wildcard patterns and adds their subscriptions'
// unacknowledged and held deliveries to st.
func (x *patternIndex) stats(st *Stats) (patterns int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	x.root.addStats(st)
	return x.patterns
}

func (n *patternNode) addStats(st *Stats) {
	for _, s := range n.subs {
		s.addStats(st)
	}
	for _, c := range n.children {
		c.addStats(st)
	}
	if n.star != nil {
		n.star.addStats(st)
	}
	if n.hash != nil {
		n.hash.addStats(st)
	}
}
