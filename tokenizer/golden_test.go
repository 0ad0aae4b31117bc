package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// goldenDir holds the tokenizers and the reference ids that
// testdata/tokenizer/make_goldens.mjs computed with transformers.js.
var goldenDir = filepath.Join("..", "testdata", "tokenizer")

type goldenCase struct {
	Text               string  `json:"text"`
	IDs                []int32 `json:"ids"`
	IDsNoSpecial       []int32 `json:"ids_no_special"`
	Decoded            string  `json:"decoded"`
	DecodedSkipSpecial string  `json:"decoded_skip_special"`
}

type golden struct {
	Source             string            `json:"source"`
	TokenizerSHA256    string            `json:"tokenizer_sha256"`
	VocabSize          int               `json:"vocab_size"`
	Special            map[string]string `json:"special"`
	ChatTemplateSHA256 string            `json:"chat_template_sha256"`
	Cases              []goldenCase      `json:"cases"`
}

// goldenFamilies returns the directories under testdata/tokenizer that
// have a golden.json.
func goldenFamilies(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*", "golden.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var dirs []string
	for _, f := range files {
		dirs = append(dirs, filepath.Dir(f))
	}
	return dirs
}

func readGolden(t testing.TB, dir string) golden {
	data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	require.NoError(t, err)
	var g golden
	require.NoError(t, json.Unmarshal(data, &g))
	return g
}

// TestGoldens compares every family's ids and decoded text with
// transformers.js. Real tokenizers that are not committed are skipped until
// make_goldens.mjs has fetched them.
func TestGoldens(t *testing.T) {
	for _, dir := range goldenFamilies(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
			if os.IsNotExist(err) {
				t.Skipf("%s/tokenizer.json is not committed; run testdata/tokenizer/make_goldens.mjs to fetch it", dir)
			}
			require.NoError(t, err)
			g := readGolden(t, dir)
			sum := sha256.Sum256(data)
			require.Equal(t, g.TokenizerSHA256, hex.EncodeToString(sum[:]),
				"tokenizer.json is not the file golden.json was made from (%s)", g.Source)

			tok, err := LoadDir(dir)
			require.NoError(t, err)
			require.Equal(t, g.VocabSize, tok.VocabSize(), "VocabSize")
			for role, want := range g.Special {
				require.Equal(t, want, tok.SpecialToken(role), "SpecialToken(%q)", role)
			}
			ct := sha256.Sum256([]byte(tok.ChatTemplate()))
			require.Equal(t, g.ChatTemplateSHA256, hex.EncodeToString(ct[:]), "ChatTemplate")

			failures := 0
			for _, c := range g.Cases {
				check := func(what string, want, got any) {
					if !equal(want, got) {
						failures++
						if failures <= 10 {
							t.Errorf("%q: %s:\n want %v\n  got %v", c.Text, what, want, got)
						}
					}
				}
				ids := tok.Encode(c.Text, true)
				check("Encode(text, true)", c.IDs, ids)
				check("Encode(text, false)", c.IDsNoSpecial, tok.Encode(c.Text, false))
				check("Decode(ids, false)", c.Decoded, tok.Decode(c.IDs, false))
				check("Decode(ids, true)", c.DecodedSkipSpecial, tok.Decode(c.IDs, true))
			}
			if failures > 0 {
				t.Errorf("%d mismatches in %d cases", failures, len(g.Cases))
			}
		})
	}
}

func equal(a, b any) bool {
	if x, ok := a.([]int32); ok {
		y, ok := b.([]int32)
		return ok && (len(x) == 0 && len(y) == 0 || slices.Equal(x, y))
	}
	return a == b
}
