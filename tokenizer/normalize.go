package tokenizer

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

type normalizer interface {
	normalize(s string) string
}

type sequenceNorm []normalizer

func (q sequenceNorm) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

// prependNorm is HF's Prepend: the string in front of any non-empty text.
type prependNorm string

func (p prependNorm) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

// replaceNorm replaces every occurrence of a fixed string.
type replaceNorm struct{ pattern, content string }

func (r replaceNorm) normalize(s string) string { return strings.ReplaceAll(s, r.pattern, r.content) }

// stripNorm is HF's Strip normalizer: white space off either end.
type stripNorm struct{ left, right bool }

func (st stripNorm) normalize(s string) string {
	if st.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if st.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// nfcNorm and nfdNorm are Unicode normalization forms C and D, from the
// tables in unicode_tables.go.
type nfcNorm struct{}
type nfdNorm struct{}

func (nfcNorm) normalize(s string) string { return nfc(s) }
func (nfdNorm) normalize(s string) string { return nfd(s) }

// Hangul syllable constants (Unicode §3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = hangulLCount * hangulNCount
)

func ccc(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	return combiningClass[r]
}

// quickStable reports whether s is unchanged by NFC and NFD: every
// character below U+0300 and not decomposable (ASCII and most Latin-1 need
// no work).
func quickStable(s string, allowLatin1 bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 {
			continue
		}
		if !allowLatin1 {
			return false
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r >= 0x300 {
			return false
		}
		i += n - 1
	}
	return true
}

// decompose returns the canonical decomposition of s in canonical order.
func decompose(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case r >= hangulSBase && r < hangulSBase+hangulSCount:
			si := r - hangulSBase
			out = append(out, hangulLBase+si/hangulNCount, hangulVBase+(si%hangulNCount)/hangulTCount)
			if t := si % hangulTCount; t != 0 {
				out = append(out, hangulTBase+t)
			}
		default:
			if d, ok := canonicalDecomposition[r]; ok {
				for _, x := range d {
					out = append(out, x)
				}
			} else {
				out = append(out, r)
			}
		}
	}
	// Canonical ordering: a stable sort of each run of non-starters by
	// combining class.
	for i := 0; i < len(out); {
		if ccc(out[i]) == 0 {
			i++
			continue
		}
		j := i + 1
		for j < len(out) && ccc(out[j]) != 0 {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(out[i:j], func(a, b rune) int { return int(ccc(a)) - int(ccc(b)) })
		}
		i = j
	}
	return out
}

func nfd(s string) string {
	if quickStable(s, false) {
		return s
	}
	return string(decompose(s))
}

func nfc(s string) string {
	if quickStable(s, true) {
		return s
	}
	d := decompose(s)
	out := d[:0]
	starter := -1   // index in out of the last starter
	var lastCCC int // combining class of the last character after it
	for _, r := range d {
		c := int(ccc(r))
		if starter >= 0 {
			adjacent := starter == len(out)-1
			if adjacent || lastCCC != 0 && lastCCC < c {
				if comp, ok := compose(out[starter], r); ok {
					out[starter] = comp
					continue
				}
			}
		}
		out = append(out, r)
		if c == 0 {
			starter = len(out) - 1
			lastCCC = 0
		} else {
			lastCCC = c
		}
	}
	return string(out)
}

func compose(a, b rune) (rune, bool) {
	switch {
	case a >= hangulLBase && a < hangulLBase+hangulLCount && b >= hangulVBase && b < hangulVBase+hangulVCount:
		return hangulSBase + ((a-hangulLBase)*hangulVCount+(b-hangulVBase))*hangulTCount, true
	case a >= hangulSBase && a < hangulSBase+hangulSCount && (a-hangulSBase)%hangulTCount == 0 &&
		b > hangulTBase && b < hangulTBase+hangulTCount:
		return a + (b - hangulTBase), true
	}
	r, ok := primaryComposite[[2]rune{a, b}]
	return r, ok
}
