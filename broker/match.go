package broker

import "strings"

// MatchTopic reports whether destination dest matches pattern. Both are split
// into words at '.'; in pattern, a word that is exactly '*' matches one
// non-empty word and a word that is exactly '#' matches zero or more words.
// Wildcards inside a longer word ("a*") are literal. A pattern without
// wildcards matches only itself.
//
// A pattern that begins with a kind prefix such as "/topic/" or "/queue/"
// matches only destinations with the same prefix, and the words are those
// after it, so "/topic/#" matches every topic. A pattern without such a prefix
// is matched word by word against the whole destination, so "#" alone matches
// every destination. This is how both topic subscriptions and
// [DestinationPolicy] patterns are matched.
//
// MatchTopic does not allocate, and its cost is bounded by
// len(pattern words) × len(dest words) even with several '#' words.
func MatchTopic(pattern, dest string) bool {
	pp, pname := splitKindPrefix(pattern)
	if pp == "" {
		return matchWords(pattern, dest)
	}
	dp, dname := splitKindPrefix(dest)
	if pp != dp {
		return false
	}
	return matchWords(pname, dname)
}

// splitKindPrefix splits "/kind/rest" into "/kind/" and "rest".
func splitKindPrefix(s string) (prefix, rest string) {
	if len(s) > 0 && s[0] == '/' {
		if i := strings.IndexByte(s[1:], '/'); i >= 0 {
			return s[:i+2], s[i+2:]
		}
	}
	return "", s
}

// matchWords is glob matching over words, with '#' in the role of a
// many-character star and '*' in the role of a one-character wildcard. Only
// the most recent '#' needs to be retried with one more word: any match that
// an earlier '#' could make by absorbing more words, the later '#' can make
// as well.
func matchWords(pattern, name string) bool { return globWords(pattern, name, false, false) }

// globWords is matchWords, and with cover the same walk for CoversTopic, in
// which name's words may be wildcards themselves: a '*' in pattern then
// takes a literal word or a '*' but never a '#', which only a '#' in pattern
// absorbs. starFirst makes name's first word count as a '*' whatever it says.
func globWords(pattern, name string, cover, starFirst bool) bool {
	pi, ni := firstWord(pattern), firstWord(name)
	retryP, retryN := -1, -1
	for ni <= len(name) {
		if pi <= len(pattern) {
			pw, pnext := nextWord(pattern, pi)
			if pw == "#" {
				retryP, retryN = pnext, ni
				pi = pnext
				continue
			}
			nw, nnext := nextWord(name, ni)
			if starFirst && ni == 0 {
				nw = "*"
			}
			if pw == nw || (pw == "*" && nw != "" && !(cover && nw == "#")) {
				pi, ni = pnext, nnext
				continue
			}
		}
		if retryP < 0 {
			return false
		}
		_, retryN = nextWord(name, retryN)
		pi, ni = retryP, retryN
	}
	for pi <= len(pattern) {
		var pw string
		pw, pi = nextWord(pattern, pi)
		if pw != "#" {
			return false
		}
	}
	return true
}

// CoversTopic reports whether every destination that sub (itself a pattern,
// as a SUBSCRIBE may give) can match is matched by pattern, with MatchTopic's
// rules for both; authorization uses it to decide wildcard subscriptions. For
// a sub without wildcard words it is exactly MatchTopic(pattern, sub). A
// wildcard word in sub stands for what it matches: pattern's '*' covers sub's
// '*' or one literal word, and only pattern's '#' covers sub's '#'. The answer
// errs towards false: some pairs whose matches coincide but whose words do
// not line up ("#.*" against "*.#") are not covered. It does not allocate.
func CoversTopic(pattern, sub string) bool {
	pp, pname := splitKindPrefix(pattern)
	dp, dname := splitKindPrefix(sub)
	switch {
	case pp != "":
		return pp == dp && globWords(pname, dname, true, false)
	case dp == "":
		return globWords(pattern, sub, true, false)
	}
	// pattern has no kind prefix, so it sees sub's prefix glued to sub's first
	// word: "/topic/a" is one word. A '*' there stands for any such word; a '#'
	// there can swallow the word boundaries after the prefix, and only a
	// pattern of '#' words is sure to cover that.
	first := dname
	if i := strings.IndexByte(dname, '.'); i >= 0 {
		first = dname[:i]
	}
	switch first {
	case "*":
		return globWords(pattern, sub, true, true)
	case "#":
		return allHashes(pattern)
	}
	return globWords(pattern, sub, true, false)
}

// allHashes reports whether pattern is one or more '#' words, which match
// everything.
func allHashes(pattern string) bool {
	for pos := firstWord(pattern); pos <= len(pattern); {
		var w string
		if w, pos = nextWord(pattern, pos); w != "#" {
			return false
		}
	}
	return pattern != ""
}
