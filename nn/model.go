package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/gopaca/paca/tensor"
)

// Layer is a map over the last dimension of its input, (N, in) → (N, out).
// The model's projections are Layers so that fine-tuning methods can wrap
// the frozen Linear that a checkpoint provides.
type Layer interface {
	Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor
}

// Linear is HF's nn.Linear: y = x Wᵀ + b with W (out, in) and an optional
// bias b (out).
type Linear struct {
	W, B *tensor.Tensor
}

// Forward computes x Wᵀ + b.
func (l *Linear) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	return tp.Linear(x, l.W, l.B)
}

// Block is one decoder layer:
//
//	h   = x + o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = rmsnorm(x)
//	out = h + down_proj(silu(gate_proj(n2)) · up_proj(n2)),                       n2 = rmsnorm(h)
type Block struct {
	AttnNorm, MLPNorm *tensor.Tensor // (C)
	Q, K, V, O        Layer
	Gate, Up, Down    Layer
}

// Model is a LLaMA-family causal language model.
type Model struct {
	Config *Config
	Embed  *tensor.Tensor // (V, C)
	Blocks []*Block
	Norm   *tensor.Tensor // (C)
	LMHead *tensor.Tensor // (V, C); the same tensor as Embed when tied

	// GradCheckpointing recomputes each decoder layer in backward instead
	// of keeping its activations: less memory, one more forward pass.
	GradCheckpointing bool

	ropeT            int
	ropeCos, ropeSin *tensor.Tensor // (T, D/2) tables for the last T seen
	invFreqCache     []float64
}

// ProjNames are the seven linear projections of a block, in HF order.
var ProjNames = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// Proj returns a pointer to the block's projection slot by HF name, so a
// fine-tuning method can replace it.
func (b *Block) Proj(name string) *Layer {
	switch name {
	case "q_proj":
		return &b.Q
	case "k_proj":
		return &b.K
	case "v_proj":
		return &b.V
	case "o_proj":
		return &b.O
	case "gate_proj":
		return &b.Gate
	case "up_proj":
		return &b.Up
	case "down_proj":
		return &b.Down
	}
	return nil
}

// ProjPath returns the HF module path of a projection, e.g.
// "model.layers.3.self_attn.q_proj".
func ProjPath(layer int, name string) string {
	group := "mlp"
	if strings.HasSuffix(name, "_proj") && len(name) == 6 { // q_proj, k_proj, v_proj, o_proj
		group = "self_attn"
	}
	return fmt.Sprintf("model.layers.%d.%s.%s", layer, group, name)
}

// projShape returns (out, in) and whether the projection has a bias.
func (c *Config) projShape(name string) (out, in int, bias bool) {
	q, kv := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	switch name {
	case "q_proj":
		return q, c.HiddenSize, c.AttentionBias || c.QKVBias
	case "k_proj", "v_proj":
		return kv, c.HiddenSize, c.AttentionBias || c.QKVBias
	case "o_proj":
		return c.HiddenSize, q, c.AttentionBias
	case "gate_proj", "up_proj":
		return c.IntermediateSize, c.HiddenSize, c.MLPBias
	case "down_proj":
		return c.HiddenSize, c.IntermediateSize, c.MLPBias
	}
	panic("nn: unknown projection " + name)
}

// Param is a named model tensor, named as in HF checkpoints.
type Param struct {
	Name string
	T    *tensor.Tensor
}

// Params lists every base tensor of the model in checkpoint order. A tied
// LM head is listed once, as the embedding. A projection wrapped by a
// fine-tuning method contributes the tensors of the Linear its Base()
// method returns (a quantized weight is not a float32 tensor and is left
// out).
func (m *Model) Params() []Param {
	ps := []Param{{"model.embed_tokens.weight", m.Embed}}
	for i, b := range m.Blocks {
		pre := fmt.Sprintf("model.layers.%d.", i)
		ps = append(ps, Param{pre + "input_layernorm.weight", b.AttnNorm})
		for _, name := range ProjNames {
			lin := baseLinear(*b.Proj(name))
			if lin == nil {
				continue
			}
			path := ProjPath(i, name)
			if lin.W != nil {
				ps = append(ps, Param{path + ".weight", lin.W})
			}
			if lin.B != nil {
				ps = append(ps, Param{path + ".bias", lin.B})
			}
		}
		ps = append(ps, Param{pre + "post_attention_layernorm.weight", b.MLPNorm})
	}
	ps = append(ps, Param{"model.norm.weight", m.Norm})
	if !m.Config.TieEmbeddings {
		ps = append(ps, Param{"lm_head.weight", m.LMHead})
	}
	return ps
}

func baseLinear(l Layer) *Linear {
	switch v := l.(type) {
	case *Linear:
		return v
	case interface{ Base() *Linear }:
		return v.Base()
	}
	return nil
}

// NumParams is the number of values in the model's base tensors.
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.Params() {
		n += p.T.Len()
	}
	return n
}

// SetTrainable switches every base tensor to trainable (full fine-tuning)
// or frozen, moving its memory to the matching category.
func (m *Model) SetTrainable(on bool) {
	cat := tensor.Frozen
	if on {
		cat = tensor.Trainable
	}
	for _, p := range m.Params() {
		p.T.SetRequiresGrad(on)
		p.T.SetCategory(cat)
	}
}

// ZeroGrad releases every parameter gradient.
func (m *Model) ZeroGrad() {
	for _, p := range m.Params() {
		p.T.Grad.Release()
		p.T.Grad = nil
	}
}

// Load reads an HF model directory: config.json and model.safetensors (or
// a sharded index). Weights stored as F32, F16 or BF16 become float32
// tensors accounted as Frozen. Every error names the file and the tensor.
func Load(dir string) (*Model, error) { return LoadAs(dir, tensor.Float32) }

// LoadAs is Load with the weight matrices — embedding, projections and LM
// head — stored as dt (bf16 or f16 halves their memory; computation stays
// in float32). Norm weights and biases stay float32.
func LoadAs(dir string, dt tensor.DType) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	ck, err := openCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	m, err := build(cfg, func(name string, shape ...int) (*tensor.Tensor, error) {
		data, err := ck.read(name, shape...)
		if err != nil {
			return nil, err
		}
		// Into pooled storage, off the Go heap: the collector would
		// otherwise let the heap grow to twice the weights.
		if len(shape) == 2 && dt != tensor.Float32 {
			t := tensor.NewDType(tensor.Frozen, dt, shape...)
			if dt == tensor.BFloat16 {
				tensor.F32ToBF16(t.Halves(), data)
			} else {
				tensor.F32ToF16(t.Halves(), data)
			}
			return t, nil
		}
		t := tensor.New(tensor.Frozen, shape...)
		copy(t.Data(), data)
		return t, nil
	}, ck.has)
	if err != nil {
		return nil, err
	}
	if left := ck.leftover(); len(left) > 0 {
		m.Release()
		more := ""
		if len(left) > 3 {
			more = fmt.Sprintf(" and %d more", len(left)-3)
			left = left[:3]
		}
		return nil, fmt.Errorf("%s: tensors %q%s are not part of a %s model with this config", dir, left, more, orDefault(cfg.ModelType, "llama"))
	}
	return m, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// NewRandom builds a model with the given config and random weights
// (normal, std 0.02 as HF's initializer_range; norms at 1; biases 0) from a
// seed. It serves tests, benchmarks and the demo.
func NewRandom(cfg *Config, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	m, _ := build(cfg, func(name string, shape ...int) (*tensor.Tensor, error) {
		t := tensor.New(tensor.Frozen, shape...)
		d := t.Data()
		switch {
		case strings.HasSuffix(name, "norm.weight"):
			for i := range d {
				d[i] = 1
			}
		case strings.HasSuffix(name, ".bias"):
		default:
			for i := range d {
				d[i] = float32(rng.NormFloat64() * 0.02)
			}
		}
		return t, nil
	}, func(string) bool { return false })
	return m
}

// ConvertWeights stores the weight matrices of the model — embedding,
// projections and LM head — as dt, as LoadAs does. It is for a model that
// no fine-tuning method has been applied to yet (NewRandom's, say).
func (m *Model) ConvertWeights(dt tensor.DType) {
	conv := func(t *tensor.Tensor) *tensor.Tensor {
		if t.DType() == dt {
			return t
		}
		u := t.Convert(t.Category(), dt)
		t.Release()
		return u
	}
	tied := m.LMHead == m.Embed
	m.Embed = conv(m.Embed)
	if tied {
		m.LMHead = m.Embed
	} else {
		m.LMHead = conv(m.LMHead)
	}
	for _, b := range m.Blocks {
		for _, name := range ProjNames {
			if lin, ok := (*b.Proj(name)).(*Linear); ok {
				lin.W = conv(lin.W)
			}
		}
	}
}

// build assembles a model, getting each tensor from get. has reports
// whether an optional tensor (lm_head of a tied model) is present.
func build(cfg *Config, get func(name string, shape ...int) (*tensor.Tensor, error), has func(string) bool) (m *Model, err error) {
	c, v := cfg.HiddenSize, cfg.VocabSize
	m = &Model{Config: cfg}
	defer func() {
		if err != nil {
			m.Release()
			m = nil
		}
	}()
	if m.Embed, err = get("model.embed_tokens.weight", v, c); err != nil {
		return m, err
	}
	for i := 0; i < cfg.NumLayers; i++ {
		b := &Block{}
		m.Blocks = append(m.Blocks, b)
		pre := fmt.Sprintf("model.layers.%d.", i)
		if b.AttnNorm, err = get(pre+"input_layernorm.weight", c); err != nil {
			return m, err
		}
		if b.MLPNorm, err = get(pre+"post_attention_layernorm.weight", c); err != nil {
			return m, err
		}
		for _, name := range ProjNames {
			out, in, bias := cfg.projShape(name)
			lin := &Linear{}
			*b.Proj(name) = lin
			path := ProjPath(i, name)
			if lin.W, err = get(path+".weight", out, in); err != nil {
				return m, err
			}
			if bias {
				if lin.B, err = get(path+".bias", out); err != nil {
					return m, err
				}
			}
		}
	}
	if m.Norm, err = get("model.norm.weight", c); err != nil {
		return m, err
	}
	switch {
	case !cfg.TieEmbeddings:
		m.LMHead, err = get("lm_head.weight", v, c)
	case has("lm_head.weight"):
		// Some tied checkpoints store the head anyway: check and drop it.
		var t *tensor.Tensor
		if t, err = get("lm_head.weight", v, c); err == nil {
			t.Release()
		}
		m.LMHead = m.Embed
	default:
		m.LMHead = m.Embed
	}
	return m, err
}

// Release frees every tensor of the model.
func (m *Model) Release() {
	if m == nil {
		return
	}
	for _, p := range m.Params() {
		if p.T != nil {
			p.T.Grad.Release()
			p.T.Grad = nil
			p.T.Release()
		}
	}
	// Layers that wrap a projection (fine-tuning methods) own more tensors.
	for _, b := range m.Blocks {
		for _, name := range ProjNames {
			if r, ok := (*b.Proj(name)).(interface{ Release() }); ok {
				r.Release()
			}
		}
	}
	m.ropeCos.Release()
	m.ropeSin.Release()
	m.ropeCos, m.ropeSin, m.ropeT = nil, nil, 0
}

// rope returns the (T, D/2) cos and sin tables for positions 0..T−1,
// computed in float64 and rounded once.
func (m *Model) rope(T int) (cos, sin *tensor.Tensor) {
	if m.ropeT >= T && m.ropeCos != nil {
		return m.ropeCos, m.ropeSin
	}
	if m.invFreqCache == nil {
		m.invFreqCache = m.Config.InvFreq()
	}
	half := len(m.invFreqCache)
	m.ropeCos.Release()
	m.ropeSin.Release()
	m.ropeCos, m.ropeSin = tensor.New(tensor.Frozen, T, half), tensor.New(tensor.Frozen, T, half)
	cs, ss := m.ropeCos.Data(), m.ropeSin.Data()
	for t := 0; t < T; t++ {
		for i, f := range m.invFreqCache {
			cs[t*half+i] = float32(math.Cos(float64(t) * f))
			ss[t*half+i] = float32(math.Sin(float64(t) * f))
		}
	}
	m.ropeT = T
	return m.ropeCos, m.ropeSin
}

// Forward runs the decoder on ids, B sequences of T tokens laid out row by
// row, and returns the logits (B·T, V). Intermediates are released as soon
// as the forward pass is done with them; what backward needs, the tape has
// saved. With GradCheckpointing set, each decoder layer keeps only its
// input and is recomputed during backward.
func (m *Model) Forward(tp *tensor.Tape, ids []int32, B, T int) *tensor.Tensor {
	h := m.hidden(tp, ids, B, T)
	logits := tp.Linear(h, m.LMHead, nil) // (B·T, V)
	h.Release()
	return logits
}

// hidden runs the decoder and the final norm: the LM head's input (B·T, C).
func (m *Model) hidden(tp *tensor.Tape, ids []int32, B, T int) *tensor.Tensor {
	cfg := m.Config
	if len(ids) != B*T {
		panic(fmt.Sprintf("nn: %d ids for batch %d×%d", len(ids), B, T))
	}
	shape := tensor.AttnShape{B: B, T: T, H: cfg.NumHeads, KV: cfg.NumKVHeads, D: cfg.HeadDim}
	cos, sin := m.rope(T)

	x := tp.Embedding(m.Embed, ids) // (B·T, C)
	for _, blk := range m.Blocks {
		var y *tensor.Tensor
		if m.GradCheckpointing {
			y = tp.Checkpoint(x, func(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
				return m.block(tp, blk, x, cos, sin, shape)
			})
		} else {
			y = m.block(tp, blk, x, cos, sin, shape)
		}
		x.Release()
		x = y
	}
	h := tp.RMSNorm(x, m.Norm, float32(cfg.RMSNormEps))
	x.Release()
	return h
}

// block runs one decoder layer on x (B·T, C) and returns its output; x
// stays the caller's.
func (m *Model) block(tp *tensor.Tape, blk *Block, x, cos, sin *tensor.Tensor, s tensor.AttnShape) *tensor.Tensor {
	eps := float32(m.Config.RMSNormEps)
	// Attention.
	h := tp.RMSNorm(x, blk.AttnNorm, eps) // (B·T, C)
	q := blk.Q.Forward(tp, h)             // (B·T, H·D)
	k := blk.K.Forward(tp, h)             // (B·T, KV·D)
	v := blk.V.Forward(tp, h)             // (B·T, KV·D)
	h.Release()
	qr := tp.RoPE(q, cos, sin, s.T, s.D)
	kr := tp.RoPE(k, cos, sin, s.T, s.D)
	q.Release()
	k.Release()
	a := tp.Attention(qr, kr, v, s) // (B·T, H·D)
	qr.Release()
	kr.Release()
	v.Release()
	o := blk.O.Forward(tp, a) // (B·T, C)
	a.Release()
	x1 := tp.Add(x, o)
	o.Release()

	// MLP.
	h = tp.RMSNorm(x1, blk.MLPNorm, eps)
	g := blk.Gate.Forward(tp, h) // (B·T, I)
	u := blk.Up.Forward(tp, h)   // (B·T, I)
	h.Release()
	gu := tp.SwiGLU(g, u)
	g.Release()
	u.Release()
	d := blk.Down.Forward(tp, gu) // (B·T, C)
	gu.Release()
	out := tp.Add(x1, d)
	x1.Release()
	d.Release()
	return out
}

// ShiftLabels turns per-position labels into next-token targets, the HF
// causal-LM convention: position t is scored on labels[t+1]; the last
// position of each sequence and labels of -100 are not scored.
func ShiftLabels(labels []int32, B, T int) []int32 {
	return shiftLabels(make([]int32, B*T), labels, B, T)
}

// shiftLabels is ShiftLabels into targets (B·T).
func shiftLabels(targets, labels []int32, B, T int) []int32 {
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			targets[b*T+t] = IgnoreIndex
			if t+1 < T {
				targets[b*T+t] = labels[b*T+t+1]
			}
		}
	}
	return targets
}

// IgnoreIndex marks a label that the loss does not count, as in PyTorch.
const IgnoreIndex = -100

// Loss runs the model and returns HF's causal-LM loss, the mean
// cross-entropy over the counted targets (see ShiftLabels), with their
// count. The LM head and the loss are one op that never holds more than a
// block of rows of logits (tensor.Tape.LinearCrossEntropy).
func (m *Model) Loss(tp *tensor.Tape, ids, labels []int32, B, T int) (*tensor.Tensor, int) {
	h := m.hidden(tp, ids, B, T)
	// The targets live as long as the tape needs them (its backward).
	loss, n := tp.LinearCrossEntropy(h, m.LMHead, shiftLabels(tp.Int32s(B*T), labels, B, T))
	h.Release()
	return loss, n
}
