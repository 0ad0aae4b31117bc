package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var goldenModel = filepath.Join("..", "..", "testdata", "golden", "llama_gqa")

// runPaca runs the tool in-process and returns its exit status and output.
func runPaca(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestEvalJSON(t *testing.T) {
	code, out, errOut := runPaca("eval", "--model", filepath.Join(goldenModel, "model"), "--data", filepath.Join(goldenModel, "data.jsonl"), "--json")
	require.Equal(t, 0, code, errOut)
	var res struct {
		Loss   float64 `json:"loss"`
		Tokens int     `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	// testdata/make_golden.py: PyTorch's float64 loss of this batch.
	require.InDelta(t, 5.3292159812, res.Loss, 1e-5)
	require.Equal(t, 10, res.Tokens)
}

// Records of different lengths in one batch are padded; the loss must equal
// the one computed a record at a time.
func TestEvalPaddingIsExact(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"input_ids": [1, 5, 9, 13, 2]}
{"input_ids": [1, 7, 3], "labels": [-100, 7, 3]}
{"input_ids": [4, 4, 4, 4, 4, 4, 4, 8]}
`), 0o644))
	model := filepath.Join(goldenModel, "model")
	var losses []string
	for _, bs := range []string{"1", "3"} {
		code, out, errOut := runPaca("eval", "--model", model, "--data", path, "--batch-size", bs, "--json")
		require.Equal(t, 0, code, errOut)
		losses = append(losses, out)
	}
	var a, b struct {
		Loss   float64
		Tokens int
	}
	require.NoError(t, json.Unmarshal([]byte(losses[0]), &a))
	require.NoError(t, json.Unmarshal([]byte(losses[1]), &b))
	require.Equal(t, 4+2+7, a.Tokens)
	require.Equal(t, a.Tokens, b.Tokens)
	require.InDelta(t, a.Loss, b.Loss, 1e-6)
}

// copyModel copies the golden model directory so a test can break it.
func copyModel(t *testing.T) string {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(goldenModel, "model", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	return dir
}

// Every broken input ends in exit status 1 and one line that names the
// file and the place, never a panic.
func TestEvalBadInput(t *testing.T) {
	goodData := filepath.Join(goldenModel, "data.jsonl")
	cases := []struct {
		name  string
		setup func(dir string) (model, data string)
		want  []string
	}{
		{"truncated safetensors", func(dir string) (string, string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
			return dir, goodData
		}, []string{"model.safetensors"}},
		{"offsets past the end", func(dir string) (string, string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			n := binary.LittleEndian.Uint64(b)
			hdr := strings.Replace(string(b[8:8+n]), `"data_offsets":[0,`, `"data_offsets":[9000000,`, 1)
			require.NotEqual(t, string(b[8:8+n]), hdr, "fixture: no offsets to corrupt")
			os.WriteFile(p, append(append(b[:8:8], hdr...), b[8+n:]...), 0o644)
			return dir, goodData
		}, []string{"model.safetensors"}},
		{"shape does not match config", func(dir string) (string, string) {
			p := filepath.Join(dir, "config.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"intermediate_size": 40`), []byte(`"intermediate_size": 41`), 1), 0o644)
			return dir, goodData
		}, []string{"model.safetensors", "gate_proj.weight", "[40 32]"}},
		{"config without hidden_size", func(dir string) (string, string) {
			p := filepath.Join(dir, "config.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"hidden_size"`), []byte(`"hidden_sise"`), 1), 0o644)
			return dir, goodData
		}, []string{"config.json", "missing hidden_size"}},
		{"JSONL line that is not JSON", func(dir string) (string, string) {
			p := filepath.Join(dir, "bad.jsonl")
			os.WriteFile(p, []byte("{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [1, 2\n"), 0o644)
			return dir, p
		}, []string{"bad.jsonl:2"}},
		{"token outside the vocabulary", func(dir string) (string, string) {
			p := filepath.Join(dir, "big.jsonl")
			os.WriteFile(p, []byte("{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [1, 61]}\n"), 0o644)
			return dir, p
		}, []string{"big.jsonl:2", "61"}},
		{"missing model directory", func(dir string) (string, string) {
			return filepath.Join(dir, "nope"), goodData
		}, []string{"nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			model, data := tc.setup(copyModel(t))
			code, out, errOut := runPaca("eval", "--model", model, "--data", data)
			require.Equal(t, 1, code, "stdout: %s", out)
			require.True(t, strings.HasPrefix(errOut, "paca eval: "), errOut)
			require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
			for _, w := range tc.want {
				require.Contains(t, errOut, w)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	code, _, errOut := runPaca("eval")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "missing required flag -model")
	code, _, errOut = runPaca("frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "frobnicate"`)
	code, _, errOut = runPaca("help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "eval")
	code, _, _ = runPaca("eval", "-h")
	require.Equal(t, 0, code)
}

func TestInspect(t *testing.T) {
	code, out, errOut := runPaca("inspect", filepath.Join(goldenModel, "model"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "2 layers, hidden 32, 4 heads (2 KV, head dim 8)")
	require.Contains(t, out, "F32       21 tensors")
	require.Contains(t, out, "total 17,888 values")

	adapter := t.TempDir()
	code, _, errOut = runPaca("train", "--model", filepath.Join(goldenModel, "model"), "--data", filepath.Join(goldenModel, "data.jsonl"),
		"--out", adapter, "--steps", "1", "--rank", "2", "--targets", "q_proj")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = runPaca("inspect", "--tensors", adapter)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"peft_type": "PACA"`)
	require.Contains(t, out, "base_model.model.model.layers.1.self_attn.q_proj.paca_indices  I64  [2]")

	code, _, errOut = runPaca("inspect", filepath.Join(t.TempDir(), "missing"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "missing")
}
