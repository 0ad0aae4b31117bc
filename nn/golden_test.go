package nn

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/tensor"
)

// The golden models in testdata/golden were written, with their logits,
// loss and every parameter gradient, by testdata/make_golden.py: an
// independent float64 PyTorch implementation of HF's modeling_llama.
var goldenModels = []string{"llama_gqa", "llama_tied", "qwen2_bias", "llama_gqa_bf16"}

func goldenDir(name string) string { return filepath.Join("..", "testdata", "golden", name) }

type batch struct {
	ids, labels []int32
	B, T        int
}

// goldenRecords reads a golden model's data.jsonl as one B×T batch.
func goldenRecords(tb testing.TB, name string) batch {
	tb.Helper()
	recs, err := data.ReadTokenized(filepath.Join(goldenDir(name), "data.jsonl"))
	require.NoError(tb, err)
	var bt batch
	bt.ids, bt.labels, bt.B, bt.T = data.Pad(recs)
	return bt
}

// relL2 is ‖got − want‖ / ‖want‖.
func relL2(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	return math.Sqrt(num / den)
}

func TestGoldenPyTorch(t *testing.T) {
	for _, name := range goldenModels {
		t.Run(name, func(t *testing.T) {
			m, err := Load(filepath.Join(goldenDir(name), "model"))
			require.NoError(t, err)
			defer m.Release()
			gold, err := safetensors.Open(filepath.Join(goldenDir(name), "golden.safetensors"))
			require.NoError(t, err)
			defer gold.Close()
			bt := goldenRecords(t, name)
			ids, labels, B, T := bt.ids, bt.labels, bt.B, bt.T

			m.SetTrainable(true)
			tp := tensor.NewTape()
			logits := m.Forward(tp, ids, B, T)
			wantLogits, err := gold.Float64("logits")
			require.NoError(t, err)
			require.Len(t, logits.Data(), len(wantLogits))
			var maxDiff float64
			for i, w := range wantLogits {
				maxDiff = max(maxDiff, math.Abs(float64(logits.Data()[i])-w))
			}
			require.LessOrEqual(t, maxDiff, 1e-4, "max |Δlogit|")

			loss, n := tp.CrossEntropy(logits, ShiftLabels(labels, B, T))
			logits.Release()
			wantLoss, err := gold.Float64("loss")
			require.NoError(t, err)
			require.Greater(t, n, 0)
			require.InDelta(t, 0, math.Abs(float64(loss.Item())-wantLoss[0])/wantLoss[0], 1e-5, "relative loss error: got %v want %v", loss.Item(), wantLoss[0])

			got := loss.Item()
			tp.Backward(loss, 1)
			loss.Release()
			t.Logf("max |Δlogit| %.2e, loss %.8f (PyTorch %.8f)", maxDiff, got, wantLoss[0])
			params := m.Params()
			require.Len(t, params, countPrefix(gold.Names(), "grad."))
			var worst float64
			for _, p := range params {
				want, err := gold.Float64("grad." + p.Name)
				require.NoError(t, err, p.Name)
				require.NotNil(t, p.T.Grad, p.Name)
				e := relL2(p.T.Grad.Data(), want)
				worst = max(worst, e)
				require.LessOrEqual(t, e, 1e-4, "gradient of %s", p.Name)
			}
			t.Logf("worst relative L2 gradient error %.2e over %d parameters", worst, len(params))
			m.ZeroGrad()
			require.Zero(t, tensor.MemStats().Live[tensor.Saved], "saved activations left after backward")
		})
	}
}

func countPrefix(names []string, prefix string) int {
	n := 0
	for _, s := range names {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

// The BF16 checkpoint must load to exactly the bf16-rounded F32 weights.
func TestGoldenBF16IsRoundedF32(t *testing.T) {
	f32, err := Load(filepath.Join(goldenDir("llama_gqa"), "model"))
	require.NoError(t, err)
	defer f32.Release()
	b16, err := Load(filepath.Join(goldenDir("llama_gqa_bf16"), "model"))
	require.NoError(t, err)
	defer b16.Release()
	pa, pb := f32.Params(), b16.Params()
	require.Len(t, pb, len(pa))
	for i := range pa {
		for j, v := range pa[i].T.Data() {
			require.Equal(t, tensor.BF16Round(v), pb[i].T.Data()[j], "%s[%d]", pa[i].Name, j)
		}
	}
}

// Recomputing each layer in backward gives the same gradients as keeping
// its activations, and keeps less saved memory at the peak.
func TestGradCheckpointing(t *testing.T) {
	grads := map[bool]map[string][]float32{}
	peakSaved := map[bool]int64{}
	for _, ckpt := range []bool{false, true} {
		m, err := Load(filepath.Join(goldenDir("llama_tied"), "model"))
		require.NoError(t, err)
		bt := goldenRecords(t, "llama_tied")
		m.SetTrainable(true)
		m.GradCheckpointing = ckpt
		tensor.ResetPeak()
		base := tensor.MemStats().Live[tensor.Saved]
		tp := tensor.NewTape()
		loss, _ := m.Loss(tp, bt.ids, bt.labels, bt.B, bt.T)
		peakSaved[ckpt] = tensor.MemStats().Peak[tensor.Saved] - base
		tp.Backward(loss, 1)
		loss.Release()
		grads[ckpt] = map[string][]float32{}
		for _, p := range m.Params() {
			grads[ckpt][p.Name] = append([]float32(nil), p.T.Grad.Data()...)
		}
		m.Release()
	}
	for name, g := range grads[false] {
		require.InDeltaSlice(t, g, grads[true][name], 1e-6, name)
	}
	t.Logf("peak saved: %d B without, %d B with recomputation", peakSaved[false], peakSaved[true])
	require.Less(t, peakSaved[true], peakSaved[false]/2)
}
