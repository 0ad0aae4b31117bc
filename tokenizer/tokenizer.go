// Package tokenizer loads HuggingFace tokenizer.json files and encodes and
// decodes text exactly as HF tokenizers does, for the BPE tokenizers of the
// LLaMA family:
//
//   - byte-level BPE (GPT-2, LLaMA-3, SmolLM, Qwen2/Qwen3): the ByteLevel
//     byte↔character map, the Split pre-tokenizers with the regular
//     expressions these families use, Digits, ignore_merges, NFC;
//   - SentencePiece-style BPE (LLaMA-2, TinyLlama, Mistral): the
//     Prepend/Replace normalizers or the Metaspace pre-tokenizer, byte
//     fallback to <0xNN> tokens, fuse_unk, and their decoders;
//   - added and special tokens, split out of the text before anything else;
//   - the TemplateProcessing, ByteLevel, Roberta, Bert and Sequence
//     post-processors, so Encode(text, true) adds BOS (or whatever the
//     template says) as HF does.
//
// Go's regexp has no look-ahead, so the Split regular expressions are not
// compiled: each pattern these families ship is recognised by its exact
// text and run by a small hand-written scanner with the regex's semantics
// (Oniguruma's, as HF tokenizers uses it); any other pattern is an error
// at load time. Unsupported components (WordPiece, Unigram, Lowercase, …)
// are load errors too, never silent approximations.
//
// Where HF's Rust tokenizers and its JavaScript port disagree the Rust
// library, which transformers uses, is followed; the tests compare against
// transformers.js only on inputs where the two agree (testdata/tokenizer).
// Decode does not apply transformers' clean_up_tokenization_spaces, so
// byte-level tokenizers round-trip any valid UTF-8 text exactly.
//
// Not supported: WordPiece, Unigram and WordLevel models; BPE dropout,
// continuing_subword_prefix and end_of_word_suffix; the Lowercase, NFKC,
// NFKD, Bert and Precompiled normalizers; Replace with a regex; other Split
// regexes; pair encoding; tokenizer.json's truncation and padding (ignored).
// Character classes follow Go's Unicode tables (unicode.Version), so
// characters assigned after that version may split differently from HF.
package tokenizer

import (
	"sync"
	"unicode/utf8"
)

// Tokenizer is a loaded tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	model      *bpe
	normalizer normalizer
	pre        preTokenizer
	post       postProcessor
	decoder    decoder

	added []*addedToken
	// addedByID maps an added token's id to it; addedIDs maps content to id.
	addedByID map[int32]*addedToken
	addedIDs  map[string]int32
	// raw matches the added tokens with normalized false on the input,
	// normalized those with normalized true on the normalized text.
	raw, normalized *addedMatcher

	vocabSize    int
	special      map[string]string // role -> token
	chatTemplate string
}

// Encode returns the token ids of text. With addSpecial the post-processor
// adds its special tokens (BOS and the like) as the tokenizer's
// tokenizer.json (or tokenizer_config.json's add_bos_token/add_eos_token)
// says; without it nothing is added. Special tokens written in the text are
// always recognised. Invalid UTF-8 bytes are read as U+FFFD.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int32 {
	if !utf8.ValidString(text) {
		text = string(lossyUTF8([]byte(text)))
	}
	ids := make([]int32, 0, len(text)/3+2)
	for _, sec := range t.raw.split(text) {
		if sec.id >= 0 {
			ids = append(ids, sec.id)
			continue
		}
		s := sec.text
		if t.normalizer != nil {
			s = t.normalizer.normalize(s)
		}
		for _, sub := range t.normalized.split(s) {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				continue
			}
			pieces := []piece{{text: sub.text, atStart: sec.start == 0 && sub.start == 0}}
			if t.pre != nil {
				pieces = t.pre.preTokenize(pieces)
			}
			for _, p := range pieces {
				ids = t.model.tokenize(p.text, ids)
			}
		}
	}
	if t.post != nil {
		ids = t.post.process(ids, addSpecial)
	}
	return ids
}

// Decode returns the text of ids, through the tokenizer's decoder. With
// skipSpecial, special tokens are left out. Ids that are not in the
// vocabulary are skipped, as HF does.
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.addedByID[id]; ok {
			if skipSpecial && a.special {
				continue
			}
			tokens = append(tokens, a.content)
			continue
		}
		tok, ok := t.model.idToToken(id)
		if !ok {
			continue
		}
		if skipSpecial {
			if aid, ok := t.addedIDs[tok]; ok && t.addedByID[aid].special {
				continue
			}
		}
		tokens = append(tokens, tok)
	}
	if t.decoder == nil {
		return joinStrings(tokens, " ")
	}
	return joinStrings(t.decoder.decode(tokens), "")
}

// VocabSize returns the number of token ids, added tokens included: the
// largest id plus one.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// TokenID returns the id of a token string (an added token's content or a
// vocabulary entry, as it is stored: "Ġthe", "▁the", "<0x0A>").
func (t *Tokenizer) TokenID(tok string) (int32, bool) {
	if id, ok := t.addedIDs[tok]; ok {
		return id, true
	}
	id, ok := t.model.vocab[tok]
	return id, ok
}

// SpecialToken returns the token string of a special role — "bos", "eos",
// "pad" or "unk" — or "" if the tokenizer has none. The roles come from
// tokenizer_config.json; without it "unk" is the model's unk_token and
// "bos" the special token the post-processor puts first, if any.
func (t *Tokenizer) SpecialToken(role string) string { return t.special[role] }

// ChatTemplate returns the Jinja chat template from tokenizer_config.json
// (the "default" one if it lists several) or chat_template.jinja, or "".
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

func joinStrings(ss []string, sep string) string {
	n := 0
	for _, s := range ss {
		n += len(s) + len(sep)
	}
	b := make([]byte, 0, n)
	for i, s := range ss {
		if i > 0 {
			b = append(b, sep...)
		}
		b = append(b, s...)
	}
	return string(b)
}

// cache is a bounded concurrent map from a pre-token to its token ids.
type cache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

const (
	cacheMaxEntries = 1 << 16
	cacheMaxWordLen = 256 // bytes; as HF
)

func (c *cache) get(w string) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *cache) put(w string, ids []int32) {
	if len(w) >= cacheMaxWordLen {
		return
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string][]int32)
	}
	if len(c.m) < cacheMaxEntries {
		c.m[w] = ids
	}
	c.mu.Unlock()
}
