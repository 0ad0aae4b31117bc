package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// loadTiny loads a committed tiny tokenizer by family name.
func loadTiny(t testing.TB, name string) *Tokenizer {
	t.Helper()
	tok, err := LoadDir(filepath.Join(goldenDir, name))
	require.NoError(t, err)
	return tok
}

// tinyJSON returns a tiny tokenizer.json as a generic map to edit.
func tinyJSON(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name, "tokenizer.json"))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

func mustParse(t testing.TB, m map[string]any) *Tokenizer {
	t.Helper()
	data, err := json.Marshal(m)
	require.NoError(t, err)
	tok, err := parse(data)
	require.NoError(t, err)
	return tok
}

// pieces runs a pre-tokenizer on s and returns the texts.
func pieces(p preTokenizer, s string) []string {
	var out []string
	for _, x := range p.preTokenize([]piece{{text: s, atStart: true}}) {
		out = append(out, x.text)
	}
	return out
}

// scan splits s with a regex scanner, as the Split pre-tokenizer does.
func scan(m matcher, s string) []string {
	return pieces(splitPre{m: m, behavior: isolated}, s)
}

func TestScanners(t *testing.T) {
	gpt2 := gpt2Pattern{}
	llama3 := llama3Pattern{maxDigits: 3}
	qwen := llama3Pattern{maxDigits: 1}
	for _, c := range []struct {
		m    matcher
		in   string
		want []string
	}{
		{gpt2, "Hello world", []string{"Hello", " world"}},
		{gpt2, "  x", []string{" ", " x"}},
		{gpt2, "a  ", []string{"a", "  "}},
		{gpt2, "I'M it's", []string{"I", "'", "M", " it", "'s"}},
		{gpt2, "x\t\ty", []string{"x", "\t", "\t", "y"}},
		{gpt2, " 123abc!!", []string{" 123", "abc", "!!"}},
		// U+0085 is white space for Oniguruma (and Go), not for JavaScript.
		{gpt2, "a\u0085\u0085b", []string{"a", "\u0085", "\u0085", "b"}},
		{llama3, "I'M it'S", []string{"I", "'M", " it", "'S"}},
		// (?i:'s) matches 'ſ: U+017F folds to s.
		{llama3, "'ſx", []string{"'ſ", "x"}},
		{llama3, "12345", []string{"123", "45"}},
		{qwen, "123", []string{"1", "2", "3"}},
		{llama3, "  x\n\n y", []string{" ", " x", "\n\n", " y"}},
		{llama3, "a.\n\nb", []string{"a", ".\n\n", "b"}},
		{llama3, " \n \n  z", []string{" \n \n", " ", " z"}},
		{llama3, "\tfoo", []string{"\tfoo"}},
		{llama3, "x   ", []string{"x", "   "}},
		{llama3, "١٢٣٤", []string{"١٢٣", "٤"}},
	} {
		require.Equal(t, c.want, scan(c.m, c.in), "%T %q", c.m, c.in)
	}
}

func TestSplitBehaviors(t *testing.T) {
	for _, c := range []struct {
		b      splitBehavior
		invert bool
		want   []string
	}{
		{removed, false, []string{"a", "b", "c"}},
		{isolated, false, []string{"a", "-", "b", "-", "-", "c"}},
		{mergedWithPrevious, false, []string{"a-", "b-", "-", "c"}},
		{mergedWithNext, false, []string{"a", "-b", "-", "-c"}},
		{contiguous, false, []string{"a", "-", "b", "--", "c"}},
		{removed, true, []string{"-", "-", "-"}},
	} {
		got := pieces(splitPre{m: literal("-"), behavior: c.b, invert: c.invert}, "a-b--c")
		require.Equal(t, c.want, got, "behavior %d invert %v", c.b, c.invert)
	}
}

func TestMetaspaceAndDigits(t *testing.T) {
	// split (the default) starts a piece at each ▁, as HF's Rust library
	// does (transformers.js does not split).
	require.Equal(t, []string{"▁a", "▁", "▁b"}, pieces(metaspacePre{replacement: '▁', split: true}, "a  b"))
	require.Equal(t, []string{"▁a▁▁b"}, pieces(metaspacePre{replacement: '▁'}, "a  b"))
	// "first" prepends only to the piece at the start of the input.
	first := metaspacePre{replacement: '▁', scheme: prependFirst}
	require.Equal(t, []piece{{text: "x▁y"}}, first.preTokenize([]piece{{text: "x y"}}))
	require.Equal(t, []string{"▁x▁y"}, pieces(first, "x y"))
	require.Equal(t, []string{"x▁y"}, pieces(metaspacePre{replacement: '▁', scheme: prependNever}, "x y"))
	// Digits splits on any Unicode number, as Rust's char::is_numeric.
	require.Equal(t, []string{"a", "٣", "٤", "b", "1"}, pieces(digitsPre{individual: true}, "a٣٤b1"))
	require.Equal(t, []string{"a", "٣٤", "b", "12"}, pieces(digitsPre{}, "a٣٤b12"))
}

func TestDecoders(t *testing.T) {
	// Metaspace removes every ▁ of the first token, as HF does.
	require.Equal(t, []string{"a", " b"}, metaspaceDec{replacement: '▁'}.decode([]string{"▁▁a", "▁b"}))
	require.Equal(t, []string{" a", " b"}, metaspaceDec{replacement: '▁', scheme: prependNever}.decode([]string{"▁a", "▁b"}))
	// Invalid byte-fallback runs: one U+FFFD per byte.
	require.Equal(t, []string{"x", "\uFFFD", "\uFFFD", "y", "中"},
		byteFallbackDec{}.decode([]string{"x", "<0xE4>", "<0xBD>", "y", "<0xE4>", "<0xB8>", "<0xAD>"}))
	require.Equal(t, []string{"\x0f"}, byteFallbackDec{}.decode([]string{"<0x+F>"}))
	require.Equal(t, []string{"<0xZZ>", "<0x0>"}, byteFallbackDec{}.decode([]string{"<0xZZ>", "<0x0>"}))
	require.Equal(t, []string{"ab", "", " x "}, stripDec{content: ' ', start: 1, stop: 1}.decode([]string{" ab ", " ", "  x  "}))
	require.Equal(t, []string{""}, stripDec{content: ' ', start: 3, stop: 3}.decode([]string{" "}))
	// The byte-level decoder reads the bytes as UTF-8, each maximal
	// invalid subsequence as one U+FFFD (expected values: Python's
	// bytes.decode("utf-8", "replace")).
	for _, c := range []struct{ in, want string }{
		{"\xe4\xbd", "\uFFFD"},
		{"\xc3(", "\uFFFD("},
		{"a\xff\xfeb", "a\uFFFD\uFFFDb"},
		{"\xf1\x80\x80\xe1\x80\xc2\xf4\x91\x80\x80A", strings.Repeat("\uFFFD", 7) + "A"},
		{"\xed\xa0\x80x", "\uFFFD\uFFFD\uFFFDx"},
		{"\xe0\x80\xaf", "\uFFFD\uFFFD\uFFFD"},
		{"\xf0\x9f\x91", "\uFFFD"},
		{"\xc0\xafz", "\uFFFD\uFFFDz"},
	} {
		require.Equal(t, c.want, string(lossyUTF8([]byte(c.in))), "%q", c.in)
		require.Equal(t, []string{c.want}, byteLevelDec{}.decode([]string{byteLevelEncode(c.in)}), "%q", c.in)
	}
	// A token outside the byte map (an added token) is its own UTF-8.
	require.Equal(t, []string{"a<|€|>b"}, byteLevelDec{}.decode([]string{"a", "<|€|>", "b"}))
}

func TestAddedTokenRules(t *testing.T) {
	m := tinyJSON(t, "tiny-gpt2")
	added := m["added_tokens"].([]any)
	next := len(m["model"].(map[string]any)["vocab"].(map[string]any)) + 1
	tok := func(id int, content string, flags map[string]any) map[string]any {
		e := map[string]any{"id": id, "content": content, "special": true, "normalized": false}
		for k, v := range flags {
			e[k] = v
		}
		return e
	}
	m["added_tokens"] = append(added,
		tok(next, "<w>", map[string]any{"single_word": true}),
		tok(next+1, "<l>", map[string]any{"lstrip": true}),
		tok(next+2, "<r>", map[string]any{"rstrip": true}),
		tok(next+3, "<ll>", nil),
		tok(next+4, "", nil), // ignored
	)
	tk := mustParse(t, m)
	sp := func(s string) []section { return tk.raw.split(s) }
	ids := func(ss []section) (out []int32) {
		for _, s := range ss {
			out = append(out, s.id)
		}
		return out
	}
	texts := func(ss []section) (out []string) {
		for _, s := range ss {
			out = append(out, s.text)
		}
		return out
	}
	w, l, r, ll := int32(next), int32(next+1), int32(next+2), int32(next+3)
	require.Equal(t, []int32{-1}, ids(sp("a<w>b")), "single_word inside a word")
	require.Equal(t, []int32{-1, w, -1}, ids(sp("a <w> b")))
	require.Equal(t, []int32{w, -1}, ids(sp("<w>. b")))
	require.Equal(t, []string{"a", "  \t<l>", " b"}, texts(sp("a  \t<l> b")))
	require.Equal(t, []int32{-1, l, -1}, ids(sp("a  \t<l> b")))
	require.Equal(t, []string{"a ", "<r> \n", "b"}, texts(sp("a <r> \nb")))
	require.Equal(t, []int32{-1, r, -1}, ids(sp("a <r> \nb")))
	require.Equal(t, []int32{ll, -1}, ids(sp("<ll>>")), "longest match")
	require.Equal(t, []int32{-1, l, r}, ids(sp("x<l><r>")))
	_, ok := tk.TokenID("")
	require.False(t, ok)
	require.Equal(t, next+4, tk.VocabSize())
}

func TestByteFallbackAndUnk(t *testing.T) {
	m := tinyJSON(t, "tiny-llama2")
	tk := mustParse(t, m)
	id := func(s string) int32 {
		i, ok := tk.TokenID(s)
		require.True(t, ok, s)
		return i
	}
	// ö is not in the vocabulary: its two bytes.
	require.Equal(t, []int32{id("▁"), id("<0xC3>"), id("<0xB6>")}, tk.Encode("ö", false))
	require.Equal(t, "ö", tk.Decode(tk.Encode("ö", true), true))

	// Without <0xC3> the byte fallback fails and ö becomes <unk>; HF adds
	// the byte tokens of a later character before a pending unk.
	vocab := m["model"].(map[string]any)["vocab"].(map[string]any)
	delete(vocab, "<0xC3>")
	tk = mustParse(t, m)
	require.Equal(t, []int32{id("▁"), 0}, tk.Encode("öö", false), "fused")
	require.Equal(t, []int32{id("▁"), 0, id("a")}, tk.Encode("ööa", false), "fused")
	require.Equal(t, []int32{id("▁"), id("<0xE2>"), id("<0x82>"), id("<0xAC>"), 0}, tk.Encode("ö€", false), "byte tokens before the pending unk")
	m["model"].(map[string]any)["fuse_unk"] = false
	tk = mustParse(t, m)
	require.Equal(t, []int32{id("▁"), 0, 0, id("a")}, tk.Encode("ööa", false), "not fused")
}

func TestMergeForms(t *testing.T) {
	m := tinyJSON(t, "tiny-gpt2")
	model := m["model"].(map[string]any)
	want := mustParse(t, m).Encode("Hello world 2024", false)
	// The array form and a leading #version line give the same merges.
	var pairs []any
	for _, s := range model["merges"].([]any) {
		a, b, _ := strings.Cut(s.(string), " ")
		pairs = append(pairs, []any{a, b})
	}
	model["merges"] = pairs
	require.Equal(t, want, mustParse(t, m).Encode("Hello world 2024", false))
	m = tinyJSON(t, "tiny-gpt2")
	model = m["model"].(map[string]any)
	model["merges"] = append([]any{"#version: 0.2"}, model["merges"].([]any)...)
	require.Equal(t, want, mustParse(t, m).Encode("Hello world 2024", false))

	// A pair listed twice keeps its last rank: with "a a" last, "aa a"
	// comes first.
	m = tinyJSON(t, "tiny-gpt2")
	model = m["model"].(map[string]any)
	merges := model["merges"].([]any)
	tk := mustParse(t, m)
	id := func(s string) int32 {
		i, ok := tk.TokenID(s)
		require.True(t, ok, s)
		return i
	}
	require.Equal(t, []int32{id("aa"), id("aa")}, tk.Encode("aaaa", false))
	model["merges"] = append(merges, "a a")
	require.Equal(t, []int32{id("aaa"), id("a")}, mustParse(t, m).Encode("aaaa", false))
}

func TestIgnoreMerges(t *testing.T) {
	tk := loadTiny(t, "tiny-llama3")
	id, ok := tk.TokenID(byteLevelEncode(" tokenizer"))
	require.True(t, ok)
	require.Equal(t, []int32{id}, tk.Encode(" tokenizer", false))
	m := tinyJSON(t, "tiny-llama3")
	m["model"].(map[string]any)["ignore_merges"] = false
	require.Greater(t, len(mustParse(t, m).Encode(" tokenizer", false)), 1)
}

func TestSpecialTokensAndConfig(t *testing.T) {
	tk := loadTiny(t, "tiny-llama2")
	require.Equal(t, "<s>", tk.SpecialToken("bos"))
	require.Equal(t, "</s>", tk.SpecialToken("eos"))
	require.Equal(t, "", tk.SpecialToken("pad"))
	require.Equal(t, "<unk>", tk.SpecialToken("unk"))
	require.Contains(t, tk.ChatTemplate(), "[INST]")

	// Without tokenizer_config.json: unk from the model, bos from the
	// template.
	raw, err := Load(filepath.Join(goldenDir, "tiny-llama2", "tokenizer.json"))
	require.NoError(t, err)
	require.Equal(t, "<s>", raw.SpecialToken("bos"))
	require.Equal(t, "<unk>", raw.SpecialToken("unk"))
	require.Equal(t, "", raw.SpecialToken("eos"))
	require.Equal(t, "", raw.ChatTemplate())

	q := loadTiny(t, "tiny-qwen2")
	require.Equal(t, "", q.SpecialToken("bos"))
	require.Equal(t, "<|im_end|>", q.SpecialToken("eos"))
	require.True(t, strings.HasPrefix(q.ChatTemplate(), "{% for m in messages %}<|im_start|>"), "the default of the list")
	require.Equal(t, "<|im_start|>", loadTiny(t, "tiny-smollm").SpecialToken("bos"), "{content: …} form")
}

// copyTiny copies a tiny tokenizer's directory so a test can edit it.
func copyTiny(t *testing.T, name string) string {
	dir := t.TempDir()
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(goldenDir, name, f))
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	return dir
}

func writeConfig(t *testing.T, dir string, cfg map[string]any) {
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644))
}

func TestAddBOSEOSOverride(t *testing.T) {
	dir := copyTiny(t, "tiny-llama2")
	base := loadTiny(t, "tiny-llama2").Encode("hi", false)
	for _, c := range []struct {
		bos, eos any
		want     []int32
	}{
		{true, false, append([]int32{1}, base...)},
		{nil, true, append(append([]int32{1}, base...), 2)},
		{false, true, append(append([]int32{}, base...), 2)},
		{false, nil, base},
	} {
		cfg := map[string]any{"bos_token": "<s>", "eos_token": "</s>"}
		if c.bos != nil {
			cfg["add_bos_token"] = c.bos
		}
		if c.eos != nil {
			cfg["add_eos_token"] = c.eos
		}
		writeConfig(t, dir, cfg)
		tk, err := LoadDir(dir)
		require.NoError(t, err)
		require.Equal(t, c.want, tk.Encode("hi", true), "add_bos_token %v add_eos_token %v", c.bos, c.eos)
		require.Equal(t, base, tk.Encode("hi", false))
	}
	// chat_template.jinja when the config has none.
	writeConfig(t, dir, map[string]any{})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chat_template.jinja"), []byte("{{ x }}"), 0o644))
	tk, err := LoadDir(dir)
	require.NoError(t, err)
	require.Equal(t, "{{ x }}", tk.ChatTemplate())
}

func TestDecodeSkips(t *testing.T) {
	tk := loadTiny(t, "tiny-gpt2")
	eot, ok := tk.TokenID("<|endoftext|>")
	require.True(t, ok)
	ids := append(tk.Encode("hi", false), eot, -5, 1<<30)
	require.Equal(t, "hi<|endoftext|>", tk.Decode(ids, false))
	require.Equal(t, "hi", tk.Decode(ids, true))
	require.Equal(t, "", tk.Decode(nil, false))
}

func TestInvalidUTF8Input(t *testing.T) {
	tk := loadTiny(t, "tiny-gpt2")
	require.Equal(t, tk.Encode("a\uFFFDb", false), tk.Encode("a\xffb", false))
	require.Equal(t, "a\uFFFDb", tk.Decode(tk.Encode("a\xffb", false), false))
}

// TestRoundTrip: byte-level tokenizers give back any valid UTF-8 text.
func TestRoundTrip(t *testing.T) {
	g := readGolden(t, filepath.Join(goldenDir, "tiny-gpt2"))
	for _, name := range byteLevelFamilies {
		tk := loadTiny(t, name)
		for _, c := range g.Cases {
			checkRoundTrip(t, name, tk, c.Text)
		}
	}
}

var byteLevelFamilies = []string{"tiny-gpt2", "tiny-llama3", "tiny-qwen2", "tiny-smollm"}

func checkRoundTrip(t *testing.T, name string, tk *Tokenizer, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		return
	}
	// Tokens that strip the white space around them do not round-trip.
	for _, a := range tk.added {
		if (a.lstrip || a.rstrip) && strings.Contains(s, a.content) {
			return
		}
	}
	want := s
	if name == "tiny-qwen2" {
		want = nfc(s)
	}
	if got := tk.Decode(tk.Encode(s, false), false); got != want {
		t.Fatalf("%s: %q decodes to %q", name, s, got)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := loadTiny(t, "tiny-llama3")
	g := readGolden(t, filepath.Join(goldenDir, "tiny-llama3"))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range g.Cases {
				if !equal(c.IDs, tk.Encode(c.Text, true)) {
					t.Errorf("%q", c.Text)
				}
			}
		}()
	}
	wg.Wait()
}

// cacheReset empties the BPE cache, for benchmarks.
func (t *Tokenizer) cacheReset() {
	t.model.cache.mu.Lock()
	t.model.cache.m = nil
	t.model.cache.mu.Unlock()
}
