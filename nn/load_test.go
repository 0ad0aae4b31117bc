package nn

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn/safetensors"
)

// tinyConfigJSON is a small GQA LLaMA config used by the fixtures below.
const tinyConfigJSON = `{
  "model_type": "llama", "vocab_size": 23, "hidden_size": 16, "intermediate_size": 24,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64,
  "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2
}`

// writeModelDir writes config and the model's tensors (converted by conv)
// split over shards files; shards > 1 also writes the HF index.
func writeModelDir(t *testing.T, dir, config string, m *Model, shards int, conv func(string, []int, []float32) safetensors.Tensor) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644))
	params := m.Params()
	if shards == 1 {
		var ts []safetensors.Tensor
		for _, p := range params {
			ts = append(ts, conv(p.Name, p.T.Shape(), p.T.Data()))
		}
		require.NoError(t, safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil))
		return
	}
	weightMap := map[string]string{}
	per := (len(params) + shards - 1) / shards
	for s := 0; s < shards; s++ {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		var ts []safetensors.Tensor
		for _, p := range params[s*per : min((s+1)*per, len(params))] {
			ts = append(ts, conv(p.Name, p.T.Shape(), p.T.Data()))
			weightMap[p.Name] = name
		}
		require.NoError(t, safetensors.Write(filepath.Join(dir, name), ts, nil))
	}
	idx, err := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644))
}

func tinyModel(t *testing.T) *Model {
	cfg, err := ParseConfig([]byte(tinyConfigJSON))
	require.NoError(t, err)
	return NewRandom(cfg, 7)
}

func TestLoadShardedMatchesSingle(t *testing.T) {
	m := tinyModel(t)
	defer m.Release()
	single, sharded := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	writeModelDir(t, single, tinyConfigJSON, m, 1, safetensors.F32Tensor)
	writeModelDir(t, sharded, tinyConfigJSON, m, 3, safetensors.F32Tensor)
	a, err := Load(single)
	require.NoError(t, err)
	defer a.Release()
	b, err := Load(sharded)
	require.NoError(t, err)
	defer b.Release()
	pm, pa, pb := m.Params(), a.Params(), b.Params()
	for i := range pm {
		require.Equal(t, pm[i].T.Data(), pa[i].T.Data(), pm[i].Name)
		require.Equal(t, pm[i].T.Data(), pb[i].T.Data(), pm[i].Name)
	}
}

func TestLoadF16(t *testing.T) {
	m := tinyModel(t)
	defer m.Release()
	dir := t.TempDir()
	writeModelDir(t, dir, tinyConfigJSON, m, 1, safetensors.F16Tensor)
	h, err := Load(dir)
	require.NoError(t, err)
	defer h.Release()
	pm, ph := m.Params(), h.Params()
	for i := range pm {
		require.InDeltaSlice(t, pm[i].T.Data(), ph[i].T.Data(), 1e-4, pm[i].Name)
	}
}

// Each kind of broken checkpoint gives one error that names the file and,
// where there is one, the tensor.
func TestLoadErrors(t *testing.T) {
	m := tinyModel(t)
	defer m.Release()
	good := filepath.Join(t.TempDir(), "good")
	writeModelDir(t, good, tinyConfigJSON, m, 1, safetensors.F32Tensor)
	st, err := os.ReadFile(filepath.Join(good, "model.safetensors"))
	require.NoError(t, err)

	cases := []struct {
		name   string
		mutate func(dir string)
		want   []string
	}{
		{"truncated safetensors", func(dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors"), st[:len(st)-100], 0o644)
		}, []string{"model.safetensors"}},
		{"config without hidden_size", func(dir string) {
			var c map[string]any
			json.Unmarshal([]byte(tinyConfigJSON), &c)
			delete(c, "hidden_size")
			b, _ := json.Marshal(c)
			os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
		}, []string{"config.json", "missing hidden_size"}},
		{"shape mismatch", func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			var c map[string]any
			json.Unmarshal(b, &c)
			c["intermediate_size"] = 20
			b, _ = json.Marshal(c)
			os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
		}, []string{"model.safetensors", "model.layers.0.mlp.gate_proj.weight", "[24 16]", "[20 16]"}},
		{"missing tensor", func(dir string) {
			var ts []safetensors.Tensor
			for _, p := range m.Params() {
				if p.Name != "model.norm.weight" {
					ts = append(ts, safetensors.F32Tensor(p.Name, p.T.Shape(), p.T.Data()))
				}
			}
			safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil)
		}, []string{"model.norm.weight", "missing"}},
		{"unknown tensor", func(dir string) {
			ts := []safetensors.Tensor{safetensors.F32Tensor("model.layers.0.self_attn.q_norm.weight", []int{4}, make([]float32, 4))}
			for _, p := range m.Params() {
				ts = append(ts, safetensors.F32Tensor(p.Name, p.T.Shape(), p.T.Data()))
			}
			safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil)
		}, []string{"q_norm.weight", "not part of"}},
		{"no weights", func(dir string) {
			os.Remove(filepath.Join(dir, "model.safetensors"))
		}, []string{"no model.safetensors"}},
		{"index points outside", func(dir string) {
			os.Remove(filepath.Join(dir, "model.safetensors"))
			os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map": {"model.norm.weight": "../x.safetensors"}}`), 0o644)
		}, []string{"model.safetensors.index.json", "../x.safetensors"}},
		{"config not JSON", func(dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte("{\"hidden_size\": 16,"), 0o644)
		}, []string{"config.json", "invalid JSON"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			writeModelDir(t, dir, tinyConfigJSON, m, 1, safetensors.F32Tensor)
			tc.mutate(dir)
			_, err := Load(dir)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}
