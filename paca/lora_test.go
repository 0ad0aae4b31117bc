package paca

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/tensor"
)

// LoRA and DoRA against PyTorch: testdata/make_lora_golden.py attaches
// rank-4 adapters with random non-zero A and B (and, for DoRA, a perturbed
// magnitude) to all seven projections of every layer of the golden models
// and records, in float64, the loss, the logits and the gradient of every
// adapter tensor, following HF PEFT's forward.

// loraRelL2 is ‖got − want‖ / ‖want‖.
func loraRelL2(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	return math.Sqrt(num / den)
}

type loraModule struct {
	path  string
	slot  *nn.Layer
	layer Layer
}

// loraAttach replaces every projection of m with a LoRA (or DoRA) built by
// the package's constructor. When gold is not nil, the adapter tensors are
// overwritten with the golden values stored under prefix.
func loraAttach(t *testing.T, m *nn.Model, dora bool, r int, alpha float64, rs bool, gold *safetensors.File, prefix string) []loraModule {
	t.Helper()
	var mods []loraModule
	for i, blk := range m.Blocks {
		for _, name := range nn.ProjNames {
			path := nn.ProjPath(i, name)
			slot := blk.Proj(name)
			lin := (*slot).(*nn.Linear)
			rng := rand.New(rand.NewPCG(uint64(i), uint64(len(mods))))
			var layer Layer
			if dora {
				d, err := NewDoRA(lin, r, alpha, rs, 0, rng)
				require.NoError(t, err)
				layer = d
			} else {
				layer = NewLoRA(lin, r, alpha, rs, 0, rng)
			}
			if gold != nil {
				for _, p := range layer.Trainable() {
					want, err := gold.Float64(prefix + path + "." + p.Name)
					require.NoError(t, err)
					require.Len(t, want, p.T.Len(), "%s.%s", path, p.Name)
					for j, v := range want {
						p.T.Data()[j] = float32(v)
						require.Equal(t, v, float64(p.T.Data()[j]), "golden values are float32-exact")
					}
				}
			}
			*slot = layer
			mods = append(mods, loraModule{path: path, slot: slot, layer: layer})
		}
	}
	return mods
}

func loraMeta(t *testing.T, gold *safetensors.File, key string) string {
	t.Helper()
	v, ok := gold.Metadata()[key]
	require.True(t, ok, "metadata %q", key)
	return v
}

func TestLoRAGoldenPyTorch(t *testing.T) {
	for _, method := range []string{"lora", "dora"} {
		for _, name := range goldenModels {
			gold, err := safetensors.Open(filepath.Join(goldenDir(name), method+"_golden.safetensors"))
			require.NoError(t, err)
			defer gold.Close()
			for _, variant := range strings.Split(loraMeta(t, gold, "variants"), ",") {
				prefix := ""
				if variant != "main" {
					prefix = variant + "."
				}
				t.Run(fmt.Sprintf("%s/%s/%s", method, name, variant), func(t *testing.T) {
					loraGoldenCase(t, name, gold, method == "dora", prefix)
				})
			}
		}
	}
}

func loraGoldenCase(t *testing.T, name string, gold *safetensors.File, dora bool, prefix string) {
	r, err := strconv.Atoi(loraMeta(t, gold, prefix+"r"))
	require.NoError(t, err)
	alpha, err := strconv.ParseFloat(loraMeta(t, gold, prefix+"lora_alpha"), 64)
	require.NoError(t, err)
	rs := loraMeta(t, gold, prefix+"use_rslora") == "true"
	scaling, err := strconv.ParseFloat(loraMeta(t, gold, prefix+"scaling"), 64)
	require.NoError(t, err)
	require.Equal(t, dora, loraMeta(t, gold, prefix+"use_dora") == "true")

	m, b := loadGolden(t, name)
	defer m.Release()
	saved0 := tensor.MemStats().Live[tensor.Saved]
	mods := loraAttach(t, m, dora, r, alpha, rs, gold, prefix)
	for _, mod := range mods {
		var s float32
		switch l := mod.layer.(type) {
		case *LoRA:
			s = l.Scale
		case *DoRA:
			s = l.Scale
		}
		require.Equal(t, float32(scaling), s, "scale of %s", mod.path)
	}

	tp := tensor.NewTape()
	logits := m.Forward(tp, b.IDs, b.B, b.T)
	wantLogits, err := gold.Float64(prefix + "logits")
	require.NoError(t, err)
	require.Len(t, logits.Data(), len(wantLogits))
	var maxDiff float64
	for i, w := range wantLogits {
		maxDiff = max(maxDiff, math.Abs(float64(logits.Data()[i])-w))
	}
	require.LessOrEqual(t, maxDiff, 1e-4, "max |Δlogit|")

	loss, n := tp.CrossEntropy(logits, nn.ShiftLabels(b.Labels, b.B, b.T))
	logits.Release()
	require.Positive(t, n)
	wantLoss, err := gold.Float64(prefix + "loss")
	require.NoError(t, err)
	lossErr := math.Abs(float64(loss.Item())-wantLoss[0]) / wantLoss[0]
	require.LessOrEqual(t, lossErr, 1e-5, "relative loss error: got %v want %v", loss.Item(), wantLoss[0])
	tp.Backward(loss, 1)
	loss.Release()
	require.Equal(t, saved0, tensor.MemStats().Live[tensor.Saved], "saved activations left after backward")

	var worst float64
	checked := 0
	for _, mod := range mods {
		for _, p := range mod.layer.Trainable() {
			key := prefix + "grad." + mod.path + "." + p.Name
			want, err := gold.Float64(key)
			require.NoError(t, err)
			require.NotNil(t, p.T.Grad, key)
			e := loraRelL2(p.T.Grad.Data(), want)
			worst = max(worst, e)
			require.LessOrEqual(t, e, 1e-4, "gradient %s", key)
			checked++
		}
		require.Nil(t, mod.layer.Base().W.Grad, "frozen base got a gradient")
	}
	nGrads := 0
	for _, k := range gold.Names() {
		if strings.HasPrefix(k, prefix+"grad.") {
			nGrads++
		}
	}
	require.Equal(t, nGrads, checked, "every golden gradient checked")
	t.Logf("max |Δlogit| %.2e, loss rel err %.2e, worst gradient rel L2 err %.2e over %d tensors", maxDiff, lossErr, worst, checked)
}

// PEFT's init (B = 0, m = ‖W‖_row) leaves the model unchanged: the loss
// is the base model's, exactly for LoRA (s·0 adds zeros), to rounding for
// DoRA (m/‖W‖ is 1 up to float32). dA is then exactly zero for LoRA.
func TestLoRAInitIsIdentity(t *testing.T) {
	for _, name := range goldenModels {
		t.Run(name, func(t *testing.T) {
			m, b := loadGolden(t, name)
			defer m.Release()
			targets := nn.ShiftLabels(b.Labels, b.B, b.T)
			baseLoss := func() float32 {
				logits := m.Forward(nil, b.IDs, b.B, b.T)
				defer logits.Release()
				l, _ := (*tensor.Tape)(nil).CrossEntropy(logits, targets)
				defer l.Release()
				return l.Item()
			}
			want := baseLoss()

			mods := loraAttach(t, m, false, 4, 8, false, nil, "")
			tp := tensor.NewTape()
			loss, _ := m.Loss(tp, b.IDs, b.Labels, b.B, b.T)
			require.Equal(t, want, loss.Item(), "LoRA at init must not change the loss")
			tp.Backward(loss, 1)
			loss.Release()
			for _, mod := range mods {
				l := mod.layer.(*LoRA)
				for _, v := range l.B.Data() {
					require.Zero(t, v)
				}
				require.NotNil(t, l.A.Grad)
				for _, g := range l.A.Grad.Data() {
					require.Zero(t, g, "dA with B = 0")
				}
				nonzero := false
				for _, g := range l.B.Grad.Data() {
					nonzero = nonzero || g != 0
				}
				require.True(t, nonzero, "dB of %s is zero", mod.path)
				*mod.slot = l.Base()
				l.Release()
			}

			dmods := loraAttach(t, m, true, 4, 8, false, nil, "")
			logits := m.Forward(nil, b.IDs, b.B, b.T)
			l, _ := (*tensor.Tape)(nil).CrossEntropy(logits, targets)
			logits.Release()
			require.InDelta(t, 0, math.Abs(float64(l.Item()-want))/float64(want), 1e-6, "DoRA at init: %v vs %v", l.Item(), want)
			l.Release()
			for _, mod := range dmods {
				d := mod.layer.(*DoRA)
				w := d.Base().W
				for o, mv := range d.M.Data() {
					var s float64
					for _, v := range w.Data()[o*w.Dim(1) : (o+1)*w.Dim(1)] {
						s += float64(v) * float64(v)
					}
					require.InDelta(t, math.Sqrt(s), float64(mv), 1e-6*math.Sqrt(s))
				}
			}
		})
	}
}

// Merged() is the weight of the equivalent plain linear: a model whose
// projections hold Merged() (and the unchanged bias) gives the adapted
// model's logits.
func TestLoRAMergedMatchesAdapted(t *testing.T) {
	for _, method := range []string{"lora", "dora"} {
		for _, name := range goldenModels {
			t.Run(method+"/"+name, func(t *testing.T) {
				gold, err := safetensors.Open(filepath.Join(goldenDir(name), method+"_golden.safetensors"))
				require.NoError(t, err)
				defer gold.Close()
				m, b := loadGolden(t, name)
				defer m.Release()
				mods := loraAttach(t, m, method == "dora", 4, 8, false, gold, "")
				adapted := m.Forward(nil, b.IDs, b.B, b.T)
				defer adapted.Release()
				var merged []*tensor.Tensor
				for _, mod := range mods {
					w := mod.layer.Merged()
					require.Equal(t, tensor.Frozen, w.Category())
					merged = append(merged, w)
					*mod.slot = &nn.Linear{W: w, B: mod.layer.Base().B}
				}
				plain := m.Forward(nil, b.IDs, b.B, b.T)
				defer plain.Release()
				var maxDiff, maxAbs float64
				for i, v := range adapted.Data() {
					maxDiff = max(maxDiff, math.Abs(float64(plain.Data()[i]-v)))
					maxAbs = max(maxAbs, math.Abs(float64(v)))
				}
				t.Logf("max |Δlogit| %.2e (max |logit| %.2f)", maxDiff, maxAbs)
				require.LessOrEqual(t, maxDiff, 1e-5*maxAbs)
				for i, mod := range mods {
					*mod.slot = mod.layer
					merged[i].Release()
				}
			})
		}
	}
}

// loraRandLinear is a frozen random linear (out, in) with a bias.
func loraRandLinear(rng *rand.Rand, out, in int) *nn.Linear {
	w, b := tensor.New(tensor.Frozen, out, in), tensor.New(tensor.Frozen, out)
	for i := range w.Data() {
		w.Data()[i] = float32(rng.NormFloat64() / math.Sqrt(float64(in)))
	}
	for i := range b.Data() {
		b.Data()[i] = float32(0.1 * rng.NormFloat64())
	}
	return &nn.Linear{W: w, B: b}
}

func loraRandActivation(rng *rand.Rand, shape ...int) *tensor.Tensor {
	x := tensor.New(tensor.Activation, shape...)
	for i := range x.Data() {
		x.Data()[i] = float32(rng.NormFloat64())
	}
	return x
}

func loraRandomize(rng *rand.Rand, ts ...*tensor.Tensor) {
	for _, t := range ts {
		for i := range t.Data() {
			t.Data()[i] = float32(0.3 * rng.NormFloat64())
		}
	}
}

// loraSum reduces y to a scalar loss on the tape: the cross-entropy of y
// read as logits against fixed targets.
func loraSum(tp *tensor.Tape, y *tensor.Tensor) *tensor.Tensor {
	targets := make([]int32, y.Rows())
	for i := range targets {
		targets[i] = int32(i % y.Cols())
	}
	l, _ := tp.CrossEntropy(y, targets)
	return l
}

// The activations LoRA keeps for backward are exactly what PyTorch keeps:
// the adapter input (n·in floats, for dA = s·(dy B)ᵀ x) and the rank-r
// intermediate (n·r floats, for dB = s·dyᵀ (x Aᵀ)); the frozen base
// product keeps nothing. Whether x needs a gradient does not matter: then
// the base product and the A product both refer to x (and the weights,
// which are not activations), which PyTorch also stores once. A second
// layer on the same x (q/k/v, gate/up) adds only its intermediate. With
// dropout the adapter input is the dropped copy: each layer keeps its own
// (n·in + n·r), and x itself is not kept.
func TestLoRASavedActivations(t *testing.T) {
	const n, in, out, r = 6, 10, 7, 3
	const f = 4 // bytes per value
	for _, dropout := range []float64{0, 0.25} {
		for _, xGrad := range []bool{false, true} {
			t.Run(fmt.Sprintf("dropout %v, x requires grad %v", dropout, xGrad), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				base1, base2 := loraRandLinear(rng, out, in), loraRandLinear(rng, out, in)
				defer func() {
					for _, ts := range []*tensor.Tensor{base1.W, base1.B, base2.W, base2.B} {
						ts.Release()
					}
				}()
				l1 := NewLoRA(base1, r, 8, false, dropout, rng)
				l2 := NewLoRA(base2, r, 8, false, dropout, rng)
				defer l1.Release()
				defer l2.Release()
				loraRandomize(rng, l1.B, l2.B)
				x := loraRandActivation(rng, n, in).SetRequiresGrad(xGrad)

				s0 := tensor.MemStats().Live[tensor.Saved]
				tp := tensor.NewTape()
				y1 := l1.Forward(tp, x)
				s1 := tensor.MemStats().Live[tensor.Saved]
				require.Equal(t, int64(n*in*f+n*r*f), s1-s0, "saved by one LoRA layer")
				y2 := l2.Forward(tp, x)
				s2 := tensor.MemStats().Live[tensor.Saved]
				if dropout == 0 {
					require.Equal(t, int64(n*r*f), s2-s1, "a second layer on the same x")
				} else {
					require.Equal(t, int64(n*in*f+n*r*f), s2-s1, "a second layer with its own dropout")
				}
				x.Release() // the caller is done with x; the tape may still hold it

				sum := tp.Add(y1, y2)
				y1.Release()
				y2.Release()
				loss := loraSum(tp, sum)
				sum.Release()
				tp.Backward(loss, 1)
				loss.Release()
				require.Equal(t, s0, tensor.MemStats().Live[tensor.Saved], "everything saved is freed by backward")
				for _, l := range []*LoRA{l1, l2} {
					require.NotNil(t, l.A.Grad)
					require.NotNil(t, l.B.Grad)
					require.Nil(t, l.Base().W.Grad)
					require.Nil(t, l.Base().B.Grad)
				}
				if xGrad {
					require.NotNil(t, x.Grad)
					x.Grad.Release()
				} else {
					require.Nil(t, x.Grad)
				}
			})
		}
	}
}

// DoRA keeps LoRA's two activations plus what its magnitude needs: the
// un-normalised output x Wᵀ + s·(x Aᵀ) Bᵀ (n·out, for dm), the scale
// m/‖·‖ (out, for dx, dA, dB) and 1/‖·‖ (out, for dm). PEFT keeps more
// (the base and adapter outputs separately).
func TestDoRASavedActivations(t *testing.T) {
	const n, in, out, r = 6, 10, 7, 3
	rng := rand.New(rand.NewPCG(3, 4))
	base := loraRandLinear(rng, out, in)
	defer base.W.Release()
	defer base.B.Release()
	d, err := NewDoRA(base, r, 8, false, 0, rng)
	require.NoError(t, err)
	defer d.Release()
	x := loraRandActivation(rng, n, in)
	defer x.Release()
	s0 := tensor.MemStats().Live[tensor.Saved]
	tp := tensor.NewTape()
	y := d.Forward(tp, x)
	require.Equal(t, int64(4*(n*in+n*r+n*out+2*out)), tensor.MemStats().Live[tensor.Saved]-s0)
	loss := loraSum(tp, y)
	y.Release()
	tp.Backward(loss, 1)
	loss.Release()
	require.Equal(t, s0, tensor.MemStats().Live[tensor.Saved])
	for _, p := range d.Trainable() {
		require.NotNil(t, p.T.Grad, p.Name)
	}
}

// PEFT's init_lora_weights=True: A ~ kaiming_uniform(a=√5), i.e. uniform
// in (−1/√in, 1/√in); B = 0; both trainable; s = alpha/r, or alpha/√r
// with use_rslora. The same rng gives the same A.
func TestLoRAInit(t *testing.T) {
	const out, in, r = 48, 256, 8
	rng := rand.New(rand.NewPCG(5, 6))
	base := loraRandLinear(rng, out, in)
	defer base.W.Release()
	defer base.B.Release()
	l := NewLoRA(base, r, 16, false, 0.1, rand.New(rand.NewPCG(7, 8)))
	defer l.Release()
	require.Equal(t, []int{r, in}, l.A.Shape())
	require.Equal(t, []int{out, r}, l.B.Shape())
	require.Equal(t, r, l.Rank())
	require.Equal(t, float32(2), l.Scale)
	require.Equal(t, 0.1, l.Dropout)
	require.True(t, l.Training)
	require.Same(t, base, l.Base())
	require.Same(t, base.B, l.Bias())

	bound := 1 / math.Sqrt(in)
	var sum, sum2, maxAbs float64
	for _, v := range l.A.Data() {
		a := float64(v)
		require.Less(t, math.Abs(a), bound)
		sum += a
		sum2 += a * a
		maxAbs = max(maxAbs, math.Abs(a))
	}
	cnt := float64(l.A.Len())
	require.Greater(t, maxAbs, 0.99*bound, "A should fill (−bound, bound)")
	require.InDelta(t, 0, sum/cnt, 4*bound/math.Sqrt(3*cnt))
	require.InDelta(t, bound/math.Sqrt(3), math.Sqrt(sum2/cnt), 0.05*bound)
	for _, v := range l.B.Data() {
		require.Zero(t, v)
	}
	ps := l.Trainable()
	require.Len(t, ps, 2)
	require.Equal(t, "lora_A.weight", ps[0].Name)
	require.Equal(t, "lora_B.weight", ps[1].Name)
	for _, p := range ps {
		require.True(t, p.T.RequiresGrad())
		require.Equal(t, tensor.Trainable, p.T.Category())
	}
	require.Equal(t, tensor.Frozen, base.W.Category())
	require.False(t, base.W.RequiresGrad())

	again := NewLoRA(base, r, 16, false, 0.1, rand.New(rand.NewPCG(7, 8)))
	defer again.Release()
	require.Equal(t, l.A.Data(), again.A.Data())

	rs := NewLoRA(base, r, 16, true, 0, rng)
	defer rs.Release()
	require.Equal(t, float32(16/math.Sqrt(r)), rs.Scale)
	require.Equal(t, 16/math.Sqrt(8), LoRAScale(8, 16, true))
	require.Equal(t, 2.0, LoRAScale(8, 16, false))

	d, err := NewDoRA(base, r, 16, true, 0, rng)
	require.NoError(t, err)
	defer d.Release()
	require.Equal(t, float32(16/math.Sqrt(r)), d.Scale)
	names := []string{}
	for _, p := range d.Trainable() {
		names = append(names, p.Name)
		require.True(t, p.T.RequiresGrad())
		require.Equal(t, tensor.Trainable, p.T.Category())
	}
	require.Equal(t, []string{"lora_A.weight", "lora_B.weight", "lora_magnitude_vector"}, names)
	require.Equal(t, []int{out}, d.M.Shape())

	require.Panics(t, func() { NewLoRA(base, 0, 16, false, 0, rng) })
	require.Panics(t, func() { NewLoRA(base, 2, 16, false, 1.5, rng) })
	_, err = NewDoRA(base, 0, 16, false, 0, rng)
	require.Error(t, err)
	zero := &nn.Linear{W: tensor.New(tensor.Frozen, 3, 4)}
	defer zero.W.Release()
	_, err = NewDoRA(zero, 2, 4, false, 0, rng)
	require.ErrorContains(t, err, "row 0")
}

// Release returns every byte the adapter owns.
func TestLoRARelease(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	base := loraRandLinear(rng, 5, 6)
	defer base.W.Release()
	defer base.B.Release()
	before := tensor.MemStats().LiveTotal
	for _, dora := range []bool{false, true} {
		var l Layer
		if dora {
			d, err := NewDoRA(base, 2, 4, false, 0, rng)
			require.NoError(t, err)
			l = d
		} else {
			l = NewLoRA(base, 2, 4, false, 0, rng)
		}
		x := loraRandActivation(rng, 3, 6)
		tp := tensor.NewTape()
		y := l.Forward(tp, x)
		x.Release()
		loss := loraSum(tp, y)
		y.Release()
		tp.Backward(loss, 1)
		loss.Release()
		l.Release()
		require.Equal(t, before, tensor.MemStats().LiveTotal, "dora %v", dora)
	}
}

// loraRef is a float64 reference of one adapted layer on flat row-major
// values, with an explicit dropout mask (nil: none) and, for DoRA, a fixed
// row norm (the detached ‖W + s·B A‖):
//
//	LoRA: y = x Wᵀ + b + s·(x̃ Aᵀ) Bᵀ
//	DoRA: y = x Wᵀ + b + (g − 1)⊙x̃ Wᵀ + g⊙s·(x̃ Aᵀ) Bᵀ,  g = m / norm
func loraRef(x, w, bias, a, b, m, mask, norm []float64, n, in, out, r int, s float64) []float64 {
	y := make([]float64, n*out)
	for i := 0; i < n; i++ {
		xd := make([]float64, in)
		for k := range xd {
			xd[k] = x[i*in+k]
			if mask != nil {
				xd[k] *= mask[i*in+k]
			}
		}
		h := make([]float64, r)
		for j := range h {
			for k := 0; k < in; k++ {
				h[j] += xd[k] * a[j*in+k]
			}
		}
		for o := 0; o < out; o++ {
			var base, based, z float64
			for k := 0; k < in; k++ {
				base += x[i*in+k] * w[o*in+k]
				based += xd[k] * w[o*in+k]
			}
			for j := range h {
				z += h[j] * b[o*r+j]
			}
			v := base + bias[o]
			if m == nil {
				v += s * z
			} else {
				g := m[o] / norm[o]
				v += (g-1)*based + g*s*z
			}
			y[i*out+o] = v
		}
	}
	return y
}

func loraF64(t *tensor.Tensor) []float64 {
	out := make([]float64, t.Len())
	for i, v := range t.Data() {
		out[i] = float64(v)
	}
	return out
}

// With dropout, training mode and a tape, LoRA and DoRA follow PEFT's
// formulas with the mask the Dropout op draws from the layer's rng; the
// gradients of x, A, B (and m) match central differences of the float64
// reference (DoRA's norm held constant, as PEFT detaches it). Without a
// tape or with Training off, dropout is the identity.
func TestLoRADropout(t *testing.T) {
	const n, in, out, r, p = 9, 12, 7, 3, 0.3
	for _, dora := range []bool{false, true} {
		t.Run(fmt.Sprintf("dora %v", dora), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 12))
			base := loraRandLinear(rng, out, in)
			defer base.W.Release()
			defer base.B.Release()
			// Twin layers from equal rngs: the twin's next draw is the seed
			// the layer's forward will use.
			mk := func(rng *rand.Rand) (Layer, *LoRA, *tensor.Tensor) {
				if dora {
					d, err := NewDoRA(base, r, 6, false, p, rng)
					require.NoError(t, err)
					return d, &d.LoRA, d.M
				}
				l := NewLoRA(base, r, 6, false, p, rng)
				return l, l, nil
			}
			layer, l, m := mk(rand.New(rand.NewPCG(1, 1)))
			defer layer.Release()
			twin, twinLoRA, _ := mk(rand.New(rand.NewPCG(1, 1)))
			seed := twinLoRA.drop.Uint64() // the seed layer's first dropout will use
			twin.Release()
			loraRandomize(rng, l.B)
			if m != nil {
				for i := range m.Data() {
					m.Data()[i] *= float32(1 + 0.2*rng.NormFloat64())
				}
			}
			x := loraRandActivation(rng, n, in).SetRequiresGrad(true)
			defer x.Release()

			// The mask: dropout of a tensor of ones with the same seed.
			ones := tensor.New(tensor.Scratch, n, in)
			for i := range ones.Data() {
				ones.Data()[i] = 1
			}
			maskT := (*tensor.Tape)(nil).Dropout(ones, p, seed)
			mask := loraF64(maskT)
			maskT.Release()
			ones.Release()
			zeros := 0
			for _, v := range mask {
				if v == 0 {
					zeros++
				}
			}
			require.Positive(t, zeros)

			vals := [][]float64{loraF64(x), loraF64(base.W), loraF64(base.B), loraF64(l.A), loraF64(l.B), nil}
			var norm []float64
			if m != nil {
				vals[5] = loraF64(m)
				// The detached ‖W + s·B A‖, in float64.
				norm = make([]float64, out)
				for o := range norm {
					var ss float64
					for k := 0; k < in; k++ {
						v := vals[1][o*in+k]
						for j := 0; j < r; j++ {
							v += float64(l.Scale) * vals[4][o*r+j] * vals[3][j*in+k]
						}
						ss += v * v
					}
					norm[o] = math.Sqrt(ss)
				}
			}
			s := float64(l.Scale)
			ref := func(v [][]float64) []float64 {
				return loraRef(v[0], v[1], v[2], v[3], v[4], v[5], mask, norm, n, in, out, r, s)
			}

			tp := tensor.NewTape()
			y := layer.Forward(tp, x)
			want := ref(vals)
			for i, w := range want {
				require.InDelta(t, w, float64(y.Data()[i]), 1e-5*(1+math.Abs(w)), "y[%d]", i)
			}
			rv := make([]float32, y.Len())
			rr := rand.New(rand.NewPCG(13, 14))
			for i := range rv {
				rv[i] = float32(2*rr.Float64() - 1)
			}
			loss := loraDot(tp, y, rv)
			y.Release()
			tp.Backward(loss, 1)
			loss.Release()

			lossOf := func() float64 {
				yy := ref(vals)
				var sum float64
				for i := range yy {
					sum += yy[i] * float64(rv[i])
				}
				return sum
			}
			grads := map[int]*tensor.Tensor{0: x.Grad, 3: l.A.Grad, 4: l.B.Grad}
			if m != nil {
				grads[5] = m.Grad
			}
			for idx, g := range grads {
				require.NotNil(t, g, "gradient %d", idx)
				num := make([]float64, len(vals[idx]))
				for j, old := range vals[idx] {
					const h = 1e-6
					vals[idx][j] = old + h
					lp := lossOf()
					vals[idx][j] = old - h
					lm := lossOf()
					vals[idx][j] = old
					num[j] = (lp - lm) / (2 * h)
				}
				e := loraRelL2(g.Data(), num)
				assert.LessOrEqual(t, e, 1e-4, "gradient %d", idx)
			}
			x.Grad.Release()
			x.Grad = nil
			require.Nil(t, base.W.Grad)

			// Evaluation: no tape, or Training off, means no dropout.
			noDrop := func(v [][]float64) []float64 {
				return loraRef(v[0], v[1], v[2], v[3], v[4], v[5], nil, norm, n, in, out, r, s)
			}(vals)
			ye := layer.Forward(nil, x)
			l.SetTraining(false)
			tp2 := tensor.NewTape()
			yt := layer.Forward(tp2, x)
			tp2.Reset()
			l.SetTraining(true)
			for i, w := range noDrop {
				require.InDelta(t, w, float64(ye.Data()[i]), 1e-5*(1+math.Abs(w)))
				require.Equal(t, ye.Data()[i], yt.Data()[i])
			}
			ye.Release()
			yt.Release()
		})
	}
}

// loraDot returns the one-element tensor Σ y·r and records the node whose
// backward seeds dy = dl·r: any layer output as a scalar loss.
func loraDot(tp *tensor.Tape, y *tensor.Tensor, r []float32) *tensor.Tensor {
	l := tensor.New(tensor.Activation, 1)
	var s float64
	for i, v := range y.Data() {
		s += float64(v) * float64(r[i])
	}
	l.Data()[0] = float32(s)
	if tp.Recording(y) {
		tp.Record(l, nil, func(dl *tensor.Tensor) {
			g := tensor.GradOf(y).Data()
			for i := range g {
				g[i] += dl.Data()[0] * r[i]
			}
		})
	}
	return l
}
