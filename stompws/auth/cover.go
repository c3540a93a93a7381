package auth

import "strings"

// patternCovers reports whether every destination that dest can match is matched by pattern,
// with broker.MatchTopic's rules for both. For a destination without wildcard words it is exactly
// broker.MatchTopic(pattern, dest). A wildcard word in dest stands for what it matches: pattern's
// '*' covers dest's '*' or one literal word, and only pattern's '#' covers dest's '#'. The answer
// errs towards false: some pairs whose matches coincide but whose words do not line up ("#.*"
// against "*.#") are not covered. It does not allocate.
func patternCovers(pattern, dest string) bool {
	pp, pname := splitKind(pattern)
	dp, dname := splitKind(dest)
	switch {
	case pp != "":
		return pp == dp && coverWords(pname, dname, false)
	case dp == "":
		return coverWords(pattern, dest, false)
	}
	// pattern has no kind prefix, so it sees dest's prefix glued to dest's first word: "/topic/a"
	// is one word. A '*' there stands for any such word; a '#' there can swallow the word
	// boundaries after the prefix, and only a pattern of '#' words is sure to cover that.
	first := dname
	if i := strings.IndexByte(dname, '.'); i >= 0 {
		first = dname[:i]
	}
	switch first {
	case "*":
		return coverWords(pattern, dest, true)
	case "#":
		return allHashes(pattern)
	}
	return coverWords(pattern, dest, false)
}

// allHashes reports whether pattern is one or more '#' words, which match everything.
func allHashes(pattern string) bool {
	for pos := firstWordAt(pattern); pos <= len(pattern); {
		var w string
		if w, pos = wordAt(pattern, pos); w != "#" {
			return false
		}
	}
	return pattern != ""
}

// splitKind splits "/kind/rest" into "/kind/" and "rest"; a string without that shape has no
// prefix.
func splitKind(s string) (prefix, rest string) {
	if len(s) > 0 && s[0] == '/' {
		if i := strings.IndexByte(s[1:], '/'); i >= 0 {
			return s[:i+2], s[i+2:]
		}
	}
	return "", s
}

// coverWords is glob matching over '.'-separated words with '#' in the role of the star: only the
// most recent '#' in pattern needs to be retried with one more word of name, since whatever an
// earlier '#' could absorb, the later one can too. starFirst makes name's first word count as a
// '*' whatever it says.
func coverWords(pattern, name string, starFirst bool) bool {
	pi, ni := firstWordAt(pattern), firstWordAt(name)
	retryP, retryN := -1, -1
	for ni <= len(name) {
		if pi <= len(pattern) {
			pw, pnext := wordAt(pattern, pi)
			if pw == "#" {
				retryP, retryN = pnext, ni
				pi = pnext
				continue
			}
			nw, nnext := wordAt(name, ni)
			if starFirst && ni == 0 {
				nw = "*"
			}
			if pw == nw || (pw == "*" && nw != "" && nw != "#") {
				pi, ni = pnext, nnext
				continue
			}
		}
		if retryP < 0 {
			return false
		}
		_, retryN = wordAt(name, retryN)
		pi, ni = retryP, retryN
	}
	for pi <= len(pattern) {
		var pw string
		pw, pi = wordAt(pattern, pi)
		if pw != "#" {
			return false
		}
	}
	return true
}

// Words are walked by byte offset so that matching never allocates. A position past the end
// (len+1) means no words are left; the empty string has no words.

func firstWordAt(s string) int {
	if s == "" {
		return 1
	}
	return 0
}

func wordAt(s string, pos int) (word string, next int) {
	if i := strings.IndexByte(s[pos:], '.'); i >= 0 {
		return s[pos : pos+i], pos + i + 1
	}
	return s[pos:], len(s) + 1
}
