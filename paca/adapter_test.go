package paca

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/tensor"
)

// logits runs the model without a tape and returns a copy of its logits.
func logits(m *nn.Model, b Batch) []float32 {
	z := m.Forward(nil, b.IDs, b.B, b.T)
	out := append([]float32(nil), z.Data()...)
	z.Release()
	return out
}

// randomize fills every trainable tensor with small random values, so that
// an adapter is not the identity.
func randomize(a *Adapted, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range a.Trainable() {
		for i := range p.T.Data() {
			p.T.Data()[i] += float32(rng.NormFloat64() * 0.05)
		}
	}
}

func requireClose(t *testing.T, want, got []float32, tol float64, msg string) {
	t.Helper()
	require.Len(t, got, len(want))
	require.LessOrEqual(t, relErr(got, want), tol, msg)
}

// Save → load gives the same logits; merging gives the same logits as the
// adapted model; PaCA exported as LoRA gives the same logits as PaCA.
func TestAdapterRoundTrip(t *testing.T) {
	for _, method := range []string{MethodPaCA, MethodLoRA, MethodDoRA} {
		t.Run(method, func(t *testing.T) {
			m, b := loadGolden(t, "qwen2_bias")
			defer m.Release()
			a, err := Apply(m, Config{Method: method, Rank: 3, Alpha: 6, Seed: 9, Targets: []string{"q_proj", "v_proj", "down_proj"}})
			require.NoError(t, err)
			randomize(a, 3)
			want := logits(m, b)

			dir := t.TempDir()
			require.NoError(t, Save(dir, a, "base"))
			m2, _ := loadGolden(t, "qwen2_bias")
			defer m2.Release()
			a2, err := LoadAdapter(dir, m2, false)
			require.NoError(t, err)
			require.Equal(t, a.Config.Method, a2.Config.Method)
			requireClose(t, want, logits(m2, b), 1e-6, "reloaded adapter")

			if method == MethodPaCA {
				lora := t.TempDir()
				require.NoError(t, ExportLoRA(lora, a2, "base"))
				m3, _ := loadGolden(t, "qwen2_bias")
				defer m3.Release()
				a3, err := LoadAdapter(lora, m3, false)
				require.NoError(t, err)
				require.Equal(t, MethodLoRA, a3.Config.Method)
				requireClose(t, want, logits(m3, b), 1e-5, "PaCA exported as LoRA")
			}

			a2.Unapply()
			requireClose(t, want, logits(m2, b), 1e-5, "merged model")
			out := t.TempDir()
			require.NoError(t, m2.Save(out))
			m4, err := nn.Load(out)
			require.NoError(t, err)
			defer m4.Release()
			requireClose(t, want, logits(m4, b), 1e-5, "merged checkpoint")
		})
	}
}

// The paper code stores the columns themselves divided by s (paca_w), with
// unsorted indices; reading it must give the same Δ.
func TestLoadPaperPaCA(t *testing.T) {
	m, b := loadGolden(t, "llama_gqa")
	defer m.Release()
	a, err := Apply(m, Config{Method: MethodPaCA, Rank: 4, Alpha: 8, Seed: 5, Targets: []string{"o_proj"}})
	require.NoError(t, err)
	randomize(a, 4)
	want := logits(m, b)

	var ts []safetensors.Tensor
	for _, mod := range a.Modules {
		p := mod.Layer.(*PaCA)
		w := p.Merged() // W_eff: columns I hold W[:, I] + s·Δ
		out, in, r := w.Dim(0), w.Dim(1), p.Rank()
		// Reverse the column order to exercise the permutation.
		idx := make([]int64, r)
		pw := make([]float32, out*r)
		for j := 0; j < r; j++ {
			c := p.Indices[r-1-j]
			idx[j] = int64(c)
			for o := 0; o < out; o++ {
				pw[o*r+j] = w.Data()[o*in+c] / p.Scale
			}
		}
		w.Release()
		ts = append(ts,
			safetensors.F32Tensor(peftPrefix+mod.Path+".paca_w", []int{out, r}, pw),
			safetensors.I64Tensor(peftPrefix+mod.Path+".paca_indices", []int{r}, idx))
	}
	dir := t.TempDir()
	require.NoError(t, safetensors.Write(filepath.Join(dir, AdapterWeightsFile), ts, nil))
	require.NoError(t, os.WriteFile(filepath.Join(dir, AdapterConfigFile), []byte(`{"peft_type": "PACA", "r": 4, "paca_alpha": 8, "task_type": "CAUSAL_LM"}`), 0o644))

	m2, _ := loadGolden(t, "llama_gqa")
	defer m2.Release()
	_, err = LoadAdapter(dir, m2, false)
	require.NoError(t, err)
	requireClose(t, want, logits(m2, b), 1e-5, "paper-format adapter")
}

// Broken adapter files give one clear error naming the file and problem.
func TestLoadAdapterErrors(t *testing.T) {
	m, _ := loadGolden(t, "llama_gqa")
	a, err := Apply(m, Config{Method: MethodPaCA, Rank: 4, Alpha: 8, Targets: []string{"q_proj"}})
	require.NoError(t, err)
	good := t.TempDir()
	require.NoError(t, Save(good, a, "base"))
	m.Release()
	path := peftPrefix + "model.layers.0.self_attn.q_proj."

	// rewrite replaces the adapter's tensors, keeping the others.
	rewrite := func(dir string, edit func(name string, f *safetensors.File) *safetensors.Tensor) {
		f, err := safetensors.Open(filepath.Join(good, AdapterWeightsFile))
		require.NoError(t, err)
		defer f.Close()
		var ts []safetensors.Tensor
		for _, name := range f.Names() {
			if e := edit(name, f); e != nil {
				ts = append(ts, *e)
				continue
			}
			info, _ := f.Info(name)
			ts = append(ts, safetensors.Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: f.Raw(name)})
		}
		require.NoError(t, safetensors.Write(filepath.Join(dir, AdapterWeightsFile), ts, nil))
	}
	indices := func(vals ...int64) func(string, *safetensors.File) *safetensors.Tensor {
		return func(name string, _ *safetensors.File) *safetensors.Tensor {
			if name == path+"paca_indices" {
				tt := safetensors.I64Tensor(name, []int{len(vals)}, vals)
				return &tt
			}
			return nil
		}
	}
	cases := []struct {
		name  string
		setup func(dir string)
		want  []string
	}{
		{"unknown peft_type", func(dir string) {
			copyFile(t, good, dir, AdapterWeightsFile)
			os.WriteFile(filepath.Join(dir, AdapterConfigFile), []byte(`{"peft_type": "IA3", "r": 4}`), 0o644)
		}, []string{AdapterConfigFile, `peft_type "IA3"`}},
		{"delta of the wrong shape", func(dir string) {
			copyFile(t, good, dir, AdapterConfigFile)
			rewrite(dir, func(name string, _ *safetensors.File) *safetensors.Tensor {
				if name == path+"paca_delta" {
					tt := safetensors.F32Tensor(name, []int{16, 4}, make([]float32, 64))
					return &tt
				}
				return nil
			})
		}, []string{AdapterWeightsFile, "paca_delta", "shape [16 4]", "needs [32 4]"}},
		{"index out of range", func(dir string) {
			copyFile(t, good, dir, AdapterConfigFile)
			rewrite(dir, indices(0, 1, 2, 32))
		}, []string{"paca_indices", "outside"}},
		{"repeated index", func(dir string) {
			copyFile(t, good, dir, AdapterConfigFile)
			rewrite(dir, indices(3, 1, 3, 7))
		}, []string{"paca_indices", "repeated"}},
		{"wrong number of indices", func(dir string) {
			copyFile(t, good, dir, AdapterConfigFile)
			rewrite(dir, indices(1, 2, 3))
		}, []string{"paca_indices", "shape [3]", "needs [4]"}},
		{"module not in the model", func(dir string) {
			copyFile(t, good, dir, AdapterConfigFile)
			rewrite(dir, func(name string, f *safetensors.File) *safetensors.Tensor {
				info, _ := f.Info(name)
				tt := safetensors.Tensor{Name: strings.Replace(name, "layers.0.", "layers.9.", 1), DType: info.DType, Shape: info.Shape, Data: f.Raw(name)}
				return &tt
			})
		}, []string{"layers.9", "not in this 2-layer model"}},
		{"LoRA tensor in a PaCA adapter", func(dir string) {
			copyFile(t, good, dir, AdapterConfigFile)
			rewrite(dir, func(name string, f *safetensors.File) *safetensors.Tensor {
				if name == path+"paca_delta" {
					tt := safetensors.F32Tensor(path+"lora_B.weight", []int{32, 4}, make([]float32, 128))
					return &tt
				}
				return nil
			})
		}, []string{"lora_B.weight", "is not a paca parameter"}},
		{"config not JSON", func(dir string) {
			copyFile(t, good, dir, AdapterWeightsFile)
			os.WriteFile(filepath.Join(dir, AdapterConfigFile), []byte(`{"peft_type": `), 0o644)
		}, []string{AdapterConfigFile, "invalid JSON"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(dir)
			m, _ := loadGolden(t, "llama_gqa")
			defer m.Release()
			before := tensor.MemStats().Live
			_, err := LoadAdapter(dir, m, false)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Equal(t, before, tensor.MemStats().Live, "a failed load builds nothing")
		})
	}
}

func copyFile(t *testing.T, from, to, name string) {
	b, err := os.ReadFile(filepath.Join(from, name))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(to, name), b, 0o644))
}

// The adapter config carries PEFT's fields.
func TestAdapterConfigFields(t *testing.T) {
	m, _ := loadGolden(t, "llama_gqa")
	defer m.Release()
	a, err := Apply(m, Config{Method: MethodPaCA, Rank: 4, Alpha: 8, Seed: 7})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, Save(dir, a, "/models/base"))
	b, err := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	require.Equal(t, "PACA", c["peft_type"])
	require.Equal(t, "CAUSAL_LM", c["task_type"])
	require.Equal(t, 4.0, c["r"])
	require.Equal(t, 8.0, c["paca_alpha"])
	require.Equal(t, 7.0, c["random_seed"])
	require.Equal(t, "/models/base", c["base_model_name_or_path"])
	require.ElementsMatch(t, nn.ProjNames, c["target_modules"])
}
