package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// piece is a pre-token. atStart marks the piece that begins at offset 0 of
// the input (Metaspace's prepend_scheme "first" needs it).
type piece struct {
	text    string
	atStart bool
}

type preTokenizer interface {
	preTokenize(in []piece) []piece
}

// splitBehavior is HF's SplitDelimiterBehavior: what becomes of the
// matches of a pattern when a piece is split on it.
type splitBehavior int

const (
	removed splitBehavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

var splitBehaviors = map[string]splitBehavior{
	"Removed":            removed,
	"Isolated":           isolated,
	"MergedWithPrevious": mergedWithPrevious,
	"MergedWithNext":     mergedWithNext,
	"Contiguous":         contiguous,
}

// matcher finds the non-overlapping matches of a pattern, left to right.
type matcher interface {
	// matchAt returns the end of the match starting at i, or -1.
	matchAt(s string, i int) int
}

// span is a part of a piece, a match of the pattern or not.
type span struct {
	start, end int
	match      bool
}

// findMatches covers s with the matches of m and the gaps between them,
// as HF's Pattern::find_matches does.
func findMatches(s string, m matcher) []span {
	var out []span
	prev := 0
	for i := 0; i < len(s); {
		e := m.matchAt(s, i)
		if e <= i { // no match here (patterns never match empty)
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
			continue
		}
		if prev < i {
			out = append(out, span{prev, i, false})
		}
		out = append(out, span{i, e, true})
		prev, i = e, e
	}
	if prev < len(s) {
		out = append(out, span{prev, len(s), false})
	}
	return out
}

// splitPiece splits p on m's matches with the given behavior, as HF's
// NormalizedString::split does; empty pieces are dropped.
func splitPiece(p piece, m matcher, behavior splitBehavior, invert bool, out []piece) []piece {
	spans := findMatches(p.text, m)
	if invert {
		for i := range spans {
			spans[i].match = !spans[i].match
		}
	}
	type cut struct {
		start, end int
		remove     bool
	}
	var cuts []cut
	switch behavior {
	case isolated:
		for _, s := range spans {
			cuts = append(cuts, cut{s.start, s.end, false})
		}
	case removed:
		for _, s := range spans {
			cuts = append(cuts, cut{s.start, s.end, s.match})
		}
	case contiguous:
		prevMatch := false
		for _, s := range spans {
			if s.match == prevMatch && len(cuts) > 0 {
				cuts[len(cuts)-1].end = s.end
			} else {
				cuts = append(cuts, cut{s.start, s.end, false})
			}
			prevMatch = s.match
		}
	case mergedWithPrevious:
		prevMatch := false
		for _, s := range spans {
			if s.match && !prevMatch && len(cuts) > 0 {
				cuts[len(cuts)-1].end = s.end
			} else {
				cuts = append(cuts, cut{s.start, s.end, false})
			}
			prevMatch = s.match
		}
	case mergedWithNext:
		prevMatch := false
		for i := len(spans) - 1; i >= 0; i-- {
			s := spans[i]
			if s.match && !prevMatch && len(cuts) > 0 {
				cuts[len(cuts)-1].start = s.start
			} else {
				cuts = append(cuts, cut{s.start, s.end, false})
			}
			prevMatch = s.match
		}
		for i, j := 0, len(cuts)-1; i < j; i, j = i+1, j-1 {
			cuts[i], cuts[j] = cuts[j], cuts[i]
		}
	}
	for _, c := range cuts {
		if c.remove || c.start >= c.end {
			continue
		}
		out = append(out, piece{text: p.text[c.start:c.end], atStart: p.atStart && c.start == 0})
	}
	return out
}

// sequencePre runs pre-tokenizers one after the other.
type sequencePre []preTokenizer

func (s sequencePre) preTokenize(in []piece) []piece {
	for _, p := range s {
		in = p.preTokenize(in)
	}
	return in
}

// splitPre is HF's Split pre-tokenizer.
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (s splitPre) preTokenize(in []piece) []piece {
	out := make([]piece, 0, len(in)*4)
	for _, p := range in {
		out = splitPiece(p, s.m, s.behavior, s.invert, out)
	}
	return out
}

// byteLevelPre is HF's ByteLevel pre-tokenizer: an optional prefix space,
// GPT-2's split (use_regex), then every byte mapped to its character.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPre) preTokenize(in []piece) []piece {
	out := make([]piece, 0, len(in)*4)
	for _, p := range in {
		if b.addPrefixSpace && !strings.HasPrefix(p.text, " ") {
			p.text = " " + p.text
		}
		if b.useRegex {
			out = splitPiece(p, gpt2Pattern{}, isolated, false, out)
		} else if p.text != "" {
			out = append(out, p)
		}
	}
	for i := range out {
		out[i].text = byteLevelEncode(out[i].text)
	}
	return out
}

// digitsPre is HF's Digits pre-tokenizer: numbers (Unicode N) split off,
// each digit alone with individual_digits.
type digitsPre struct{ individual bool }

func (d digitsPre) preTokenize(in []piece) []piece {
	b := contiguous
	if d.individual {
		b = isolated
	}
	out := make([]piece, 0, len(in)*2)
	for _, p := range in {
		out = splitPiece(p, runeClass(unicode.IsNumber), b, false, out)
	}
	return out
}

// prependScheme is Metaspace's rule for adding the replacement character
// in front of a piece.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// metaspacePre is HF's Metaspace pre-tokenizer: spaces become the
// replacement character (▁), which is prepended as the scheme says, and
// with split each ▁ starts a new piece.
type metaspacePre struct {
	replacement rune
	scheme      prependScheme
	split       bool
}

func (m metaspacePre) preTokenize(in []piece) []piece {
	rep := string(m.replacement)
	out := make([]piece, 0, len(in))
	for _, p := range in {
		s := strings.ReplaceAll(p.text, " ", rep)
		if !strings.HasPrefix(s, rep) &&
			(m.scheme == prependAlways || m.scheme == prependFirst && p.atStart) {
			s = rep + s
		}
		p.text = s
		if m.split {
			out = splitPiece(p, runeIs(m.replacement), mergedWithNext, false, out)
		} else if s != "" {
			out = append(out, p)
		}
	}
	return out
}

// runeClass matches one character of a class.
type runeClass func(rune) bool

func (f runeClass) matchAt(s string, i int) int {
	r, n := utf8.DecodeRuneInString(s[i:])
	if f(r) {
		return i + n
	}
	return -1
}

// runeIs matches one given character.
type runeIs rune

func (c runeIs) matchAt(s string, i int) int {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == rune(c) {
		return i + n
	}
	return -1
}

// literal matches a fixed string.
type literal string

func (l literal) matchAt(s string, i int) int {
	if strings.HasPrefix(s[i:], string(l)) {
		return i + len(l)
	}
	return -1
}
