package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The Split regular expressions the supported families ship, as they read
// in tokenizer.json once JSON-decoded. Each is run by a scanner that
// follows the regex's alternation order and backtracking exactly; \p{L} is
// unicode.IsLetter, \p{N} unicode.IsNumber and \s unicode.IsSpace (the
// White_Space property, as in Oniguruma).
const (
	// GPT-2's, also the regex of the ByteLevel pre-tokenizer.
	gpt2Regex = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// LLaMA-3's (and DeepSeek's, Falcon-3's …).
	llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// Qwen2's and Qwen3's: LLaMA-3's with single digits.
	qwen2Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// knownRegex returns the scanner of a Split pattern, or nil if the
// pattern is not one we know.
func knownRegex(re string) matcher {
	switch re {
	case gpt2Regex:
		return gpt2Pattern{}
	case llama3Regex:
		return llama3Pattern{maxDigits: 3}
	case qwen2Regex:
		return llama3Pattern{maxDigits: 1}
	}
	return nil
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.IsSpace(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

// runEnd returns the end of the run of characters in class starting at i,
// and its length in characters.
func runEnd(s string, i int, class func(rune) bool) (end, count int) {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !class(r) {
			break
		}
		i += n
		count++
	}
	return i, count
}

// spaceTail matches \s+(?!\S)|\s+ at i: a run of white space, less its
// last character when more than one is followed by a non-space (which is
// then matched by the next ` ?X+` alternative).
func spaceTail(s string, i int) int {
	e, n := runEnd(s, i, isS)
	if n == 0 {
		return -1
	}
	if e == len(s) || n == 1 {
		return e
	}
	_, last := utf8.DecodeLastRuneInString(s[:e])
	return e - last
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i; with fold, case
// insensitively as Oniguruma folds ((?i:…)): s also matches S and ſ
// (U+017F, which folds to s).
func contraction(s string, i int, fold bool) int {
	if s[i] != '\'' || i+1 >= len(s) {
		return -1
	}
	is := func(j int, c byte) bool {
		if j >= len(s) {
			return false
		}
		return s[j] == c || fold && s[j] == c-'a'+'A'
	}
	j := i + 1
	switch {
	case is(j, 's'), is(j, 't'), is(j, 'm'), is(j, 'd'):
		return j + 1
	case fold && j+1 < len(s) && s[j] == 0xC5 && s[j+1] == 0xBF: // ſ
		return j + 2
	case is(j, 'r') && is(j+1, 'e'), is(j, 'v') && is(j+1, 'e'), is(j, 'l') && is(j+1, 'l'):
		return j + 2
	}
	return -1
}

// gpt2Pattern scans gpt2Regex:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
type gpt2Pattern struct{}

func (gpt2Pattern) matchAt(s string, i int) int {
	if e := contraction(s, i, false); e >= 0 {
		return e
	}
	j := i
	if s[i] == ' ' {
		j++ // the optional space; without it the class below fails on ' '
	}
	if j < len(s) {
		r, _ := utf8.DecodeRuneInString(s[j:])
		for _, class := range [...]func(rune) bool{isL, isN, isOther} {
			if class(r) {
				e, _ := runEnd(s, j, class)
				return e
			}
		}
	}
	return spaceTail(s, i)
}

// llama3Pattern scans llama3Regex (maxDigits 3) and qwen2Regex (1):
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
type llama3Pattern struct{ maxDigits int }

func (p llama3Pattern) matchAt(s string, i int) int {
	if e := contraction(s, i, true); e >= 0 {
		return e
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r) {
		e, _ := runEnd(s, i, isL)
		return e
	}
	if !isCRLF(r) && !isN(r) {
		if e, k := runEnd(s, i+n, isL); k > 0 {
			return e
		}
	}
	// \p{N}{1,maxDigits}
	if isN(r) {
		e := i
		for k := 0; k < p.maxDigits && e < len(s); k++ {
			d, m := utf8.DecodeRuneInString(s[e:])
			if !isN(d) {
				break
			}
			e += m
		}
		return e
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if r == ' ' {
		j++
	}
	if e, k := runEnd(s, j, isOther); k > 0 {
		e, _ = runEnd(s, e, isCRLF)
		return e
	}
	// \s*[\r\n]+: white space up to and including its last \r or \n.
	end, _ := runEnd(s, i, isS)
	lastCRLF := -1
	for k := i; k < end; {
		c, m := utf8.DecodeRuneInString(s[k:])
		if isCRLF(c) {
			lastCRLF = k
		}
		k += m
	}
	if lastCRLF >= 0 {
		return lastCRLF + 1
	}
	return spaceTail(s, i)
}
