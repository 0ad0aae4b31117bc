package tokenizer

import (
	"path/filepath"
	"sync"
	"testing"
)

var tinyFamilies = []string{
	"tiny-gpt2", "tiny-llama3", "tiny-qwen2", "tiny-smollm",
	"tiny-llama2", "tiny-spm-unk", "tiny-mistral",
}

// FuzzLoad: no tokenizer.json, however broken, makes Load panic, and a
// tokenizer that loads encodes and decodes anything without panicking.
// The seeds (testdata/fuzz/FuzzLoad) are small tokenizers that use every
// supported component; the tiny-* files are too large to mutate quickly.
//
//	go test ./tokenizer -run '^$' -fuzz FuzzLoad -fuzztime 30s
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parse(data)
		if err != nil {
			if tok != nil {
				t.Fatal("a tokenizer and an error")
			}
			return
		}
		texts := []string{"", "Hello world", " <s> a\n\n 123 é 你好 '", "\xff\xfe"}
		if len(data) > 0 {
			texts = append(texts, string(data[:min(len(data), 64)]))
		}
		for _, s := range texts {
			ids := tok.Encode(s, true)
			tok.Decode(ids, false)
			tok.Decode(ids, true)
			tok.Encode(s, false)
		}
		tok.Decode([]int32{-1, 0, 1, 2, 3, 1 << 30}, false)
		_ = tok.VocabSize()
	})
}

var (
	fuzzOnce sync.Once
	fuzzToks map[string]*Tokenizer
)

// FuzzRoundTrip: byte-level BPE gives back any valid UTF-8 string exactly
// (Qwen2's NFC normalizer: its NFC form); the SentencePiece-style
// tokenizers encode anything without panicking.
//
//	go test ./tokenizer -run '^$' -fuzz FuzzRoundTrip -fuzztime 30s
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{
		"", " ", "Hello world", "  x\n\n y\t", "I'M it'S 'ſx", "12345 ١٢٣٤", "café e\u0301 각",
		"👨‍👩‍👧‍👦 🏳️‍🌈", "<|endoftext|><|im_start|>", "a\u0085b\ufeff", "\u00a0\u3000",
	} {
		f.Add(s)
	}
	fuzzOnce.Do(func() {
		fuzzToks = map[string]*Tokenizer{}
		for _, name := range append(tinyFamilies, "gpt2") {
			tok, err := LoadDir(filepath.Join(goldenDir, name))
			if err != nil {
				f.Fatal(err)
			}
			fuzzToks[name] = tok
		}
	})
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range append(byteLevelFamilies, "gpt2") {
			checkRoundTrip(t, name, fuzzToks[name], s)
		}
		for _, name := range []string{"tiny-llama2", "tiny-spm-unk", "tiny-mistral"} {
			tok := fuzzToks[name]
			tok.Decode(tok.Encode(s, true), true)
		}
	})
}

// BenchmarkEncode encodes about 100 KB of mixed text with GPT-2's real
// tokenizer (LLaMA-3's too, when make_goldens.mjs has fetched it).
func BenchmarkEncode(b *testing.B) {
	g := readGolden(b, filepath.Join(goldenDir, "gpt2"))
	var text []byte
	for len(text) < 100_000 {
		for _, c := range g.Cases {
			text = append(text, c.Text...)
			text = append(text, ' ')
		}
	}
	for _, name := range []string{"gpt2", "llama3", "mistral", "qwen3"} {
		b.Run(name, func(b *testing.B) {
			tok, err := LoadDir(filepath.Join(goldenDir, name))
			if err != nil {
				b.Skip(err)
			}
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.cacheReset()
				tok.Encode(string(text), false)
			}
		})
	}
}

// BenchmarkLoad loads GPT-2's real tokenizer.json (2 MB, 50k merges).
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(filepath.Join(goldenDir, "gpt2", "tokenizer.json")); err != nil {
			b.Fatal(err)
		}
	}
}
