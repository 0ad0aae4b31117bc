package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of tokenizer.json's added_tokens.
type addedToken struct {
	id         int32
	content    string
	special    bool
	singleWord bool
	lstrip     bool
	rstrip     bool
	normalized bool
}

// addedMatcher finds added tokens in text: leftmost match first, the
// longest among those starting there, as HF's Aho-Corasick matcher does.
type addedMatcher struct {
	nodes []trieNode // nodes[0] is the root
}

type trieNode struct {
	next map[byte]int32
	tok  *addedToken // token ending here, if any
}

func newAddedMatcher(toks []*addedToken, pattern func(*addedToken) string) *addedMatcher {
	m := &addedMatcher{nodes: []trieNode{{}}}
	for _, t := range toks {
		p := pattern(t)
		if p == "" {
			continue
		}
		n := int32(0)
		for i := 0; i < len(p); i++ {
			c, ok := m.nodes[n].next[p[i]]
			if !ok {
				if m.nodes[n].next == nil {
					m.nodes[n].next = map[byte]int32{}
				}
				c = int32(len(m.nodes))
				m.nodes[n].next[p[i]] = c
				m.nodes = append(m.nodes, trieNode{})
			}
			n = c
		}
		m.nodes[n].tok = t
	}
	if len(m.nodes) == 1 {
		return nil
	}
	return m
}

// longestAt returns the longest token matching s at i and its length.
func (m *addedMatcher) longestAt(s string, i int) (*addedToken, int) {
	var best *addedToken
	bestLen := 0
	n := int32(0)
	for j := i; j < len(s); j++ {
		c, ok := m.nodes[n].next[s[j]]
		if !ok {
			break
		}
		n = c
		if t := m.nodes[n].tok; t != nil {
			best, bestLen = t, j+1-i
		}
	}
	return best, bestLen
}

// section is a piece of text: an added token (id >= 0) or text to
// tokenize (id < 0). start is its byte offset in the text it came from.
type section struct {
	text  string
	start int
	id    int32
}

// split cuts s into added tokens and the text between them, applying the
// tokens' single_word, lstrip and rstrip rules as HF does. Empty pieces of
// text are dropped.
func (m *addedMatcher) split(s string) []section {
	if m == nil {
		if s == "" {
			return nil
		}
		return []section{{text: s, id: -1}}
	}
	var out []section
	gap := func(a, b int) {
		if a < b {
			out = append(out, section{text: s[a:b], start: a, id: -1})
		}
	}
	offset := 0 // end of the previous match
	for i := 0; i < len(s); {
		tok, n := m.longestAt(s, i)
		if tok == nil {
			i++
			continue
		}
		start, stop := i, i+n
		i = stop // the scan goes on after the match itself, as HF's does
		if tok.singleWord {
			startOK := start == 0 || !endsWithWord(s[:start])
			stopOK := stop == len(s) || !startsWithWord(s[stop:])
			if !startOK || !stopOK {
				continue
			}
		}
		if tok.lstrip {
			start = max(trailingSpaceStart(s[:start]), offset)
		}
		if tok.rstrip {
			stop += leadingSpaceLen(s[stop:])
		}
		gap(offset, start)
		out = append(out, section{text: s[start:max(start, stop)], start: start, id: tok.id})
		offset = stop
	}
	gap(offset, len(s))
	return out
}

// isWordChar is \w of Rust's regex crate: Alphabetic, Mark,
// Decimal_Number, Connector_Punctuation, Join_Control.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) ||
		r == 0x200C || r == 0x200D
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordChar(r)
}

// trailingSpaceStart returns where the run of white space ending s begins.
func trailingSpaceStart(s string) int {
	i := len(s)
	for i > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:i])
		if !unicode.IsSpace(r) {
			break
		}
		i -= n
	}
	return i
}

// leadingSpaceLen returns the length of the run of white space starting s.
func leadingSpaceLen(s string) int {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}
