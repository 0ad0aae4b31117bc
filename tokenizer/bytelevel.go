package tokenizer

import "unicode/utf8"

// GPT-2's reversible map from bytes to printable characters: the bytes
// '!'…'~', '¡'…'¬' and '®'…'ÿ' stand for themselves, the other 68 bytes,
// in order, for U+0100, U+0101, ….
var (
	byteToChar [256]rune
	charToByte [0x144]int16 // -1 where the character stands for no byte
)

func init() {
	for i := range charToByte {
		charToByte[i] = -1
	}
	printable := func(b int) bool {
		return b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF
	}
	next := rune(256)
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !printable(b) {
			r = next
			next++
		}
		byteToChar[b] = r
		charToByte[r] = int16(b)
	}
}

// byteLevelEncode maps every byte of s to its character.
func byteLevelEncode(s string) string {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = utf8.AppendRune(b, byteToChar[s[i]])
	}
	return string(b)
}
