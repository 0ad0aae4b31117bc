package paca

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

var goldenModels = []string{"llama_gqa", "llama_tied", "qwen2_bias"}

func goldenDir(name string) string { return filepath.Join("..", "testdata", "golden", name) }

// loadGolden loads a golden model and its batch.
func loadGolden(t testing.TB, name string) (*nn.Model, Batch) {
	t.Helper()
	m, err := nn.Load(filepath.Join(goldenDir(name), "model"))
	require.NoError(t, err)
	recs, err := data.ReadTokenized(filepath.Join(goldenDir(name), "data.jsonl"))
	require.NoError(t, err)
	var b Batch
	b.IDs, b.Labels, b.B, b.T = data.Pad(recs)
	return m, b
}

// lossAndBackward runs one forward and backward pass and returns the loss.
func lossAndBackward(m *nn.Model, b Batch) float32 {
	tp := tensor.NewTape()
	loss, _ := m.Loss(tp, b.IDs, b.Labels, b.B, b.T)
	v := loss.Item()
	tp.Backward(loss, 1)
	loss.Release()
	return v
}

// relErr is ‖got − want‖₂ / ‖want‖₂.
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

// PaCA's defining identity: dΔ/s equals columns I of full fine-tuning's
// dL/dW, on every adapted layer, and the loss is unchanged at init.
func TestPaCAGradient(t *testing.T) {
	for _, name := range goldenModels {
		t.Run(name, func(t *testing.T) {
			full, b := loadGolden(t, name)
			defer full.Release()
			fa, err := Apply(full, Config{Method: MethodFull})
			require.NoError(t, err)
			fullLoss := lossAndBackward(full, b)

			pm, _ := loadGolden(t, name)
			defer pm.Release()
			pa, err := Apply(pm, Config{Method: MethodPaCA, Rank: 5, Alpha: 10, Seed: 1})
			require.NoError(t, err)
			require.Len(t, pa.Modules, 7*len(pm.Blocks))
			pacaLoss := lossAndBackward(pm, b)
			require.Equal(t, fullLoss, pacaLoss, "loss at initialisation")

			var worst float64
			for i, mod := range pa.Modules {
				p := mod.Layer.(*PaCA)
				require.Equal(t, mod.Path, fa.Modules[i].Path)
				dW := fa.Modules[i].Layer.(*Full).base.W.Grad
				require.NotNil(t, p.Delta.Grad, mod.Path)
				want := tensor.New(tensor.Scratch, dW.Dim(0), p.Rank())
				tensor.CurrentBackend().GatherCols(want, dW, p.Indices)
				got := p.Delta.Grad.Clone(tensor.Scratch)
				for j := range got.Data() {
					got.Data()[j] /= p.Scale
				}
				e := relErr(got.Data(), want.Data())
				worst = max(worst, e)
				require.LessOrEqual(t, e, 1e-5, mod.Path)
				want.Release()
				got.Release()
			}
			t.Logf("worst relative error of dΔ/s against dL/dW[:, I]: %.1e over %d layers", worst, len(pa.Modules))
		})
	}
}

// savedBy returns the bytes a layer's forward pass keeps for backward,
// measured by the accounting allocator.
func savedBy(l Layer, x *tensor.Tensor) int64 {
	before := tensor.MemStats().Live[tensor.Saved]
	tp := tensor.NewTape()
	y := l.Forward(tp, x)
	saved := tensor.MemStats().Live[tensor.Saved] - before
	y.Release()
	tp.Reset()
	return saved
}

// PaCA keeps exactly x[..., I] (n·r floats) for backward; full fine-tuning
// keeps x (n·in floats).
func TestPaCASavesOnlySelectedColumns(t *testing.T) {
	const n, in, out, r = 37, 48, 20, 5
	newLinear := func() *nn.Linear {
		return &nn.Linear{W: tensor.New(tensor.Frozen, out, in), B: tensor.New(tensor.Frozen, out)}
	}
	x := tensor.New(tensor.Activation, n, in)
	defer x.Release()

	lin := newLinear()
	p, err := NewPaCA(lin, RandomSelector{Seed: 1}.Select("l", lin.W, r), 2*r)
	require.NoError(t, err)
	require.Equal(t, int64(n*r*4), savedBy(p, x))
	p.Release()
	lin.W.Release()
	lin.B.Release()

	lin = newLinear()
	f := NewFull(lin)
	require.Equal(t, int64(n*in*4), savedBy(f, x))
	f.Release()
	lin.W.Release()
	lin.B.Release()

	lin = newLinear()
	q, err := NewQPaCA(lin, []int{0, 7, 9, 20, 47}, 2*r, false)
	require.NoError(t, err)
	require.Equal(t, int64(n*r*4), savedBy(q, x))
	q.Release()
	lin.B.Release()
}

// QPaCA's dΔ/s equals columns I of the full gradient with respect to the
// weight it computes with: the dequantized W with columns I restored to
// full precision.
func TestQPaCAGradient(t *testing.T) {
	const name = "llama_gqa"
	ref, b := loadGolden(t, name)
	defer ref.Release()
	qm, _ := loadGolden(t, name)
	defer qm.Release()
	qa, err := Apply(qm, Config{Method: MethodQPaCA, Rank: 6, Alpha: 12, Seed: 3})
	require.NoError(t, err)

	// The reference: each target weight replaced by what QPaCA multiplies by.
	for _, mod := range qa.Modules {
		w := mod.Layer.Merged() // Δ = 0: deq(W) with columns I from W
		lin := (*ref.Blocks[mod.Index].Proj(mod.Proj)).(*nn.Linear)
		copy(lin.W.Data(), w.Data())
		w.Release()
	}
	fa, err := Apply(ref, Config{Method: MethodFull})
	require.NoError(t, err)
	require.Equal(t, lossAndBackward(ref, b), lossAndBackward(qm, b))
	for i, mod := range qa.Modules {
		p := mod.Layer.(*PaCA)
		dW := fa.Modules[i].Layer.(*Full).base.W.Grad
		want := tensor.New(tensor.Scratch, dW.Dim(0), p.Rank())
		tensor.CurrentBackend().GatherCols(want, dW, p.Indices)
		got := p.Delta.Grad.Clone(tensor.Scratch)
		for j := range got.Data() {
			got.Data()[j] /= p.Scale
		}
		require.LessOrEqual(t, relErr(got.Data(), want.Data()), 1e-5, mod.Path)
		want.Release()
		got.Release()
	}
}

// The selection strategies: random is seeded per module, weight-norm and
// gradient pick the largest columns.
func TestSelectors(t *testing.T) {
	w := tensor.FromSlice(tensor.Scratch, []float32{
		1, 0, 3, 0, -5,
		1, 0, 0, 2, 0,
	}, 2, 5)
	defer w.Release()
	require.Equal(t, []int{2, 4}, WeightNormSelector{}.Select("x", w, 2))
	require.Equal(t, []int{2, 3, 4}, WeightNormSelector{}.Select("x", w, 3))

	a := RandomSelector{Seed: 1}.Select("model.layers.0.self_attn.q_proj", w, 3)
	require.Equal(t, a, RandomSelector{Seed: 1}.Select("model.layers.0.self_attn.q_proj", w, 3))
	require.NoError(t, checkIndices(a, 5))
	differs := false
	for s := uint64(2); s < 10 && !differs; s++ {
		differs = !slices.Equal(a, RandomSelector{Seed: s}.Select("model.layers.0.self_attn.q_proj", w, 3))
	}
	require.True(t, differs, "the seed changes the columns")

	g := GradientSelector{Norms: map[string][]float64{"m": {0.1, 9, 0.2, 7, 0.3}}}
	require.Equal(t, []int{1, 3}, g.Select("m", w, 2))
}

// Gradient selection ranks columns by the calibration gradient: the
// chosen columns are the top-r of dL/dW's column norms.
func TestCalibrationNorms(t *testing.T) {
	m, b := loadGolden(t, "llama_gqa")
	defer m.Release()
	before := tensor.MemStats().Live
	norms, err := CalibrationNorms(m, []string{"v_proj"}, nil, []Batch{b})
	require.NoError(t, err)
	after := tensor.MemStats().Live
	for _, c := range []tensor.Category{tensor.Gradient, tensor.Saved, tensor.Activation, tensor.Trainable} {
		require.Equal(t, before[c], after[c], "calibration leaves no %s behind", c)
	}
	require.Len(t, norms, len(m.Blocks))

	full, _ := loadGolden(t, "llama_gqa")
	defer full.Release()
	fa, err := Apply(full, Config{Method: MethodFull, Targets: []string{"v_proj"}})
	require.NoError(t, err)
	lossAndBackward(full, b)
	for _, mod := range fa.Modules {
		want := columnNormsSquared(mod.Layer.(*Full).base.W.Grad)
		require.InDeltaSlice(t, want, norms[mod.Path], 1e-9)
	}
}
