package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// decoder is HF's decode_chain: tokens in, strings out; Decode joins them.
type decoder interface {
	decode(tokens []string) []string
}

type sequenceDec []decoder

func (q sequenceDec) decode(tokens []string) []string {
	for _, d := range q {
		tokens = d.decode(tokens)
	}
	return tokens
}

// byteLevelDec maps each token's characters back to bytes (a token with a
// character outside the byte map, such as an added token, is taken as its
// own UTF-8) and reads the bytes as UTF-8, invalid sequences as U+FFFD.
type byteLevelDec struct{}

func (byteLevelDec) decode(tokens []string) []string {
	var b []byte
	for _, t := range tokens {
		n := len(b)
		ok := true
		for _, r := range t {
			if r >= 0 && int(r) < len(charToByte) && charToByte[r] >= 0 {
				b = append(b, byte(charToByte[r]))
			} else {
				ok = false
				break
			}
		}
		if !ok {
			b = append(b[:n], t...)
		}
	}
	return []string{string(lossyUTF8(b))}
}

// replaceDec replaces a fixed string in every token.
type replaceDec struct{ pattern, content string }

func (r replaceDec) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = strings.ReplaceAll(t, r.pattern, r.content)
	}
	return out
}

// byteFallbackDec turns runs of <0xNN> tokens into the text of their
// bytes; a run that is not valid UTF-8 becomes one U+FFFD per byte, as HF
// does.
type byteFallbackDec struct{}

func (byteFallbackDec) decode(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, t := range tokens {
		if b, ok := byteToken(t); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// byteToken parses "<0xNN>" as Rust's u8::from_str_radix(NN, 16) does (a
// leading '+' is accepted).
func byteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	digits := t[3:5]
	if digits[0] == '+' {
		digits = digits[1:]
	}
	var v byte
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// fuseDec joins all tokens into one.
type fuseDec struct{}

func (fuseDec) decode(tokens []string) []string { return []string{strings.Join(tokens, "")} }

// stripDec removes up to start leading and stop trailing copies of a
// character from every token.
type stripDec struct {
	content     rune
	start, stop int
}

func (s stripDec) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rs := []rune(t)
		lo := 0
		for lo < s.start && lo < len(rs) && rs[lo] == s.content {
			lo++
		}
		hi := len(rs)
		for k := 0; k < s.stop && hi > 0 && rs[hi-1] == s.content; k++ {
			hi--
		}
		if hi < lo {
			hi = lo // HF panics here; we return the empty string
		}
		out[i] = string(rs[lo:hi])
	}
	return out
}

// metaspaceDec turns the replacement character back into spaces; in the
// first token it is removed instead (all of them, as HF does) unless the
// prepend scheme is "never".
type metaspaceDec struct {
	replacement rune
	scheme      prependScheme
}

func (m metaspaceDec) decode(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		var b strings.Builder
		for _, r := range t {
			switch {
			case r != m.replacement:
				b.WriteRune(r)
			case i == 0 && m.scheme != prependNever:
			default:
				b.WriteByte(' ')
			}
		}
		out[i] = b.String()
	}
	return out
}

// lossyUTF8 returns b with each maximal invalid subsequence replaced by
// U+FFFD (the WHATWG and Unicode-recommended practice that Rust's
// from_utf8_lossy and Python's "replace" follow).
func lossyUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		if b[i] < 0x80 {
			out = append(out, b[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[i:i+n]...)
			i += n
			continue
		}
		out = append(out, "\uFFFD"...)
		i += invalidPrefixLen(b[i:])
	}
	return out
}

// invalidPrefixLen returns the length of the maximal subpart of an
// ill-formed sequence at the start of b: the lead byte plus the
// continuation bytes that could still have begun a valid character.
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range of the second byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 && (x < lo || x > hi) || k > 0 && (x < 0x80 || x > 0xBF) {
			break
		}
		n++
	}
	return n
}
