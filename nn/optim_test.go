package nn

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/tensor"
)

// testdata/optim/golden.safetensors was written by
// testdata/make_optim_golden.py: float64 PyTorch runs of torch.optim.AdamW and
// torch.optim.SGD with clip_grad_norm_ before every step and HF-style
// LambdaLR schedules. The Go side runs in float32 from the same (float32-
// exact) initial values and gradients.
const optimGoldenPath = "../testdata/optim/golden.safetensors"

// optimTol bounds the relative error of the parameters after every step:
// max |got − want| / max |want| over each tensor.
const optimTol = 1e-5

type optimScenario struct {
	Name        string  `json:"name"`
	Optimizer   string  `json:"optimizer"`
	LR          float64 `json:"lr"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"`
	MaxNorm     float64 `json:"max_norm"`
	Schedule    string  `json:"schedule"`
	Warmup      int     `json:"warmup"`
	Total       int     `json:"total"`
	Steps       int     `json:"steps"`
}

func openOptimGolden(t *testing.T) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(filepath.FromSlash(optimGoldenPath))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func goldenF64(t *testing.T, f *safetensors.File, name string) []float64 {
	t.Helper()
	v, err := f.Float64(name)
	require.NoError(t, err, name)
	return v
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// relErr is max |got − want| / max |want|, and the largest elementwise
// |got − want| / |want| for the report.
func relErr(got []float32, want []float64) (rel, elem float64) {
	var num, den float64
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		num = max(num, d)
		den = max(den, math.Abs(w))
		if w != 0 {
			elem = max(elem, d/math.Abs(w))
		}
	}
	return num / den, elem
}

func TestOptimGoldenPyTorch(t *testing.T) {
	f := openOptimGolden(t)
	var scs []optimScenario
	require.NoError(t, json.Unmarshal([]byte(f.Metadata()["scenarios"]), &scs))
	require.NotEmpty(t, scs)
	names := []string{"p0", "p1"}
	shapes := map[string][]int{"p0": {3, 4}, "p1": {5}}

	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			before := tensor.MemStats()
			params := make([]Param, len(names))
			for i, n := range names {
				init := goldenF64(t, f, sc.Name+"."+n+".init")
				params[i] = Param{n, tensor.FromSlice(tensor.Trainable, toF32(init), shapes[n]...)}
			}
			var opt Optimizer
			switch sc.Optimizer {
			case "adamw":
				opt = NewAdamW(params, sc.Beta1, sc.Beta2, sc.Eps, sc.WeightDecay)
			case "sgd":
				opt = NewSGD(params, sc.WeightDecay)
			default:
				t.Fatalf("unknown optimizer %q", sc.Optimizer)
			}
			sched, err := ParseSchedule(sc.Schedule)
			require.NoError(t, err)

			grads := map[string][]float64{}
			after := map[string][]float64{}
			for _, n := range names {
				grads[n] = goldenF64(t, f, sc.Name+"."+n+".grad")
				after[n] = goldenF64(t, f, sc.Name+"."+n+".after")
			}
			has := goldenF64(t, f, sc.Name+".has_grad")
			wantLR := goldenF64(t, f, sc.Name+".lr")
			wantNorm := goldenF64(t, f, sc.Name+".norm")

			var worst, worstElem float64
			for k := range sc.Steps {
				for i, n := range names {
					if has[k*len(names)+i] == 0 {
						continue
					}
					sz := params[i].T.Len()
					params[i].T.Grad = tensor.FromSlice(tensor.Gradient, toF32(grads[n][k*sz:(k+1)*sz]), shapes[n]...)
				}
				norm := ClipGradNorm(params, sc.MaxNorm)
				require.InDelta(t, wantNorm[k], norm, 1e-12*wantNorm[k], "norm at step %d", k)
				lr := sched.LR(sc.LR, k, sc.Warmup, sc.Total)
				require.InDelta(t, wantLR[k], lr, 1e-12, "lr at step %d", k)
				opt.Step(lr)
				require.Equal(t, k+1, opt.StepCount())
				for i, n := range names {
					sz := params[i].T.Len()
					rel, elem := relErr(params[i].T.Data(), after[n][k*sz:(k+1)*sz])
					worst, worstElem = max(worst, rel), max(worstElem, elem)
					require.LessOrEqual(t, rel, optimTol, "%s after step %d", n, k)
					params[i].T.Grad.Release()
					params[i].T.Grad = nil
				}
			}
			t.Logf("max relative error over %d steps: %.2e (largest elementwise %.2e)", sc.Steps, worst, worstElem)
			opt.Release()
			for _, p := range params {
				p.T.Release()
			}
			require.Equal(t, before.Live, tensor.MemStats().Live, "all memory returned")
		})
	}
}

func newParam(name string, vals ...float32) Param {
	return Param{name, tensor.FromSlice(tensor.Trainable, vals, len(vals))}
}

func setGrad(p Param, vals ...float32) {
	p.T.Grad.Release()
	p.T.Grad = tensor.FromSlice(tensor.Gradient, vals, len(vals))
}

func releaseParams(ps ...Param) {
	for _, p := range ps {
		p.T.Grad.Release()
		p.T.Grad = nil
		p.T.Release()
	}
}

func TestOptimNilGradSkipped(t *testing.T) {
	for _, kind := range []string{"adamw", "sgd"} {
		t.Run(kind, func(t *testing.T) {
			a, b := newParam("a", 1, -2), newParam("b", 3, 4)
			defer releaseParams(a, b)
			var opt Optimizer
			if kind == "adamw" {
				opt = NewAdamW([]Param{a, b}, 0.9, 0.999, 1e-8, 0.1)
			} else {
				opt = NewSGD([]Param{a, b}, 0.1)
			}
			defer opt.Release()

			setGrad(a, 0.5, -0.25) // b has no gradient
			opt.Step(0.1)
			assert.Equal(t, []float32{3, 4}, b.T.Data(), "nil grad: parameter untouched (no decay either)")
			assert.NotEqual(t, []float32{1, -2}, a.T.Data())
			for _, st := range opt.State() {
				if st.Name == "exp_avg.b" || st.Name == "exp_avg_sq.b" {
					assert.Equal(t, []float32{0, 0}, st.T.Data(), st.Name)
				}
			}

			// b's first update comes on the optimizer's second step: for
			// AdamW it must use the bias correction of a first step (t = 1),
			// where m̂/√v̂ = sign(g), as torch's per-parameter step count does.
			a.T.Grad.Release()
			a.T.Grad = nil
			setGrad(b, 2, -0.01)
			opt.Step(0.1)
			assert.Equal(t, 2, opt.StepCount())
			if kind == "adamw" {
				assert.InDeltaSlice(t, []float64{3*(1-0.01) - 0.1, 4*(1-0.01) + 0.1}, f64(b.T.Data()), 1e-6)
			} else {
				assert.InDeltaSlice(t, []float64{3 - 0.1*(2+0.3), 4 - 0.1*(-0.01+0.4)}, f64(b.T.Data()), 1e-6)
			}
		})
	}
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestClipGradNorm(t *testing.T) {
	a, b, c := newParam("a", 0, 0), newParam("b", 0), newParam("c", 0) // c: nil grad
	defer releaseParams(a, b, c)
	ps := []Param{a, b, c}

	setGrad(a, 3, 4)
	setGrad(b, 12)
	assert.Equal(t, 13.0, ClipGradNorm(ps, 0), "maxNorm 0 only measures")
	assert.Equal(t, []float32{3, 4}, a.T.Grad.Data())
	assert.Equal(t, 13.0, ClipGradNorm(ps, -1))
	assert.Equal(t, 13.0, ClipGradNorm(ps, 13.5), "under the limit: unchanged")
	assert.Equal(t, []float32{3, 4}, a.T.Grad.Data())
	assert.Equal(t, []float32{12}, b.T.Grad.Data())

	assert.Equal(t, 13.0, ClipGradNorm(ps, 6.5), "returns the norm before clipping")
	coef := 6.5 / (13 + 1e-6)
	assert.InDeltaSlice(t, []float64{3 * coef, 4 * coef}, f64(a.T.Grad.Data()), 1e-6)
	assert.InDeltaSlice(t, []float64{12 * coef}, f64(b.T.Grad.Data()), 1e-6)
	assert.InDelta(t, 6.5, ClipGradNorm(ps, 0), 1e-5, "clipped norm is maxNorm")

	// A large gradient exercises the chunked, multi-goroutine sum; the
	// result must not depend on how it was split.
	n := 5<<16 + 123 // several of the CPU kernel's chunks
	big := Param{"big", tensor.New(tensor.Trainable, n)}
	defer releaseParams(big)
	big.T.Grad = tensor.New(tensor.Gradient, n)
	var want float64
	for i := range n {
		v := float32(math.Sin(float64(i)))
		big.T.Grad.Data()[i] = v
		want += float64(v) * float64(v)
	}
	want = math.Sqrt(want)
	got := ClipGradNorm([]Param{big}, 1)
	assert.InDelta(t, want, got, 1e-12*want)
	assert.InDelta(t, 1, ClipGradNorm([]Param{big}, 0), 1e-5)

	// Non-finite norms are returned, as torch does by default.
	setGrad(a, float32(math.Inf(1)), 1)
	assert.True(t, math.IsInf(ClipGradNorm(ps, 1), 1))
	setGrad(a, float32(math.NaN()), 1)
	assert.True(t, math.IsNaN(ClipGradNorm(ps, 1)))
	assert.Equal(t, float32(1), a.T.Grad.Data()[1], "NaN norm: gradients left alone")
	assert.Equal(t, 0.0, ClipGradNorm(nil, 1))
}

func TestOptimizerStateAccounting(t *testing.T) {
	a := Param{"model.layers.0.self_attn.q_proj.paca", tensor.New(tensor.Trainable, 6, 3)}
	b := Param{"model.norm.weight", tensor.New(tensor.Trainable, 6)}
	defer releaseParams(a, b)

	before := tensor.MemStats().Live[tensor.Optimizer]
	opt := NewAdamW([]Param{a, b}, 0.9, 0.999, 1e-8, 0)
	assert.Equal(t, before+2*4*(18+6), tensor.MemStats().Live[tensor.Optimizer])
	st := opt.State()
	require.Len(t, st, 4)
	wantNames := []string{"exp_avg." + a.Name, "exp_avg_sq." + a.Name, "exp_avg." + b.Name, "exp_avg_sq." + b.Name}
	for i, s := range st {
		assert.Equal(t, wantNames[i], s.Name)
		assert.Equal(t, tensor.Optimizer, s.T.Category(), s.Name)
	}
	assert.Equal(t, []int{6, 3}, st[0].T.Shape())
	opt.Release()
	assert.Equal(t, before, tensor.MemStats().Live[tensor.Optimizer], "Release frees the state")
	assert.Empty(t, opt.State())
	assert.NotPanics(t, opt.Release, "Release twice is harmless")
	assert.Panics(t, func() { opt.Step(1) })

	sgd := NewSGD([]Param{a, b}, 0)
	assert.Empty(t, sgd.State())
	assert.Equal(t, before, tensor.MemStats().Live[tensor.Optimizer], "SGD keeps no state")
	sgd.Release()
}

func TestOptimizerMisuse(t *testing.T) {
	a := newParam("a", 1, 2)
	defer releaseParams(a)
	for i, bad := range [][4]float64{{1, 0.999, 1e-8, 0}, {0.9, -0.1, 1e-8, 0}, {0.9, 0.999, -1, 0}, {0.9, 0.999, 1e-8, -0.1}, {math.NaN(), 0.999, 1e-8, 0}} {
		assert.Panics(t, func() { NewAdamW([]Param{a}, bad[0], bad[1], bad[2], bad[3]) }, fmt.Sprint(i))
	}
	assert.Panics(t, func() { NewSGD([]Param{a}, -1) })
	assert.PanicsWithValue(t, `nn: SGD: parameters "a" and "again" are the same tensor`, func() {
		NewSGD([]Param{a, {"again", a.T}}, 0)
	})
	opt := NewSGD([]Param{a}, 0)
	setGrad(a, 1, 2, 3)
	assert.Panics(t, func() { opt.Step(1) }, "gradient shape mismatch")
}
