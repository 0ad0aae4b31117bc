package paca

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// Method names, as the command line spells them.
const (
	MethodPaCA  = "paca"
	MethodQPaCA = "qpaca"
	MethodLoRA  = "lora"
	MethodQLoRA = "qlora"
	MethodDoRA  = "dora"
	MethodFull  = "full"
)

// Methods lists every method name.
var Methods = []string{MethodPaCA, MethodQPaCA, MethodLoRA, MethodQLoRA, MethodDoRA, MethodFull}

// Config says how to fine-tune a model.
type Config struct {
	Method string
	Rank   int     // r: adapted columns (PaCA) or adapter rank (LoRA)
	Alpha  float64 // scaling numerator: s = Alpha/r (Alpha/√r with RSLoRA)

	// Targets are projection names (q_proj, …, down_proj); nil or
	// "all-linear" means all seven. Layers restricts them to some decoder
	// layers; nil means every layer.
	Targets []string
	Layers  []int

	Seed     uint64   // drives PaCA's random columns and LoRA's init
	Selector Selector // PaCA column choice; nil means RandomSelector{Seed}

	Dropout     float64 // LoRA/DoRA dropout on the adapter input
	RSLoRA      bool    // LoRA scale alpha/√r
	DoubleQuant bool    // QPaCA/QLoRA: quantize the NF4 scales too
}

// Module is one adapted projection.
type Module struct {
	Path  string // HF module path, e.g. model.layers.0.self_attn.q_proj
	Index int    // decoder layer
	Proj  string // projection name, e.g. q_proj
	Layer Layer
}

// Adapted is a model with a fine-tuning method applied to its targets.
type Adapted struct {
	Model   *nn.Model
	Config  Config
	Modules []Module // in model order
}

// ParseTargets reads a comma-separated target list ("all-linear" for all
// seven projections) and checks every name.
func ParseTargets(s string) ([]string, error) {
	if s == "" || s == "all-linear" {
		return slices.Clone(nn.ProjNames), nil
	}
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(nn.ProjNames, t) {
			return nil, fmt.Errorf("unknown target module %q (want all-linear or some of %s)", t, strings.Join(nn.ProjNames, ","))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Apply replaces the target projections of m with the configured method.
// Everything else stays frozen.
func Apply(m *nn.Model, cfg Config) (*Adapted, error) {
	if !slices.Contains(Methods, cfg.Method) {
		return nil, fmt.Errorf("unknown method %q (want one of %s)", cfg.Method, strings.Join(Methods, ", "))
	}
	targets := cfg.Targets
	if len(targets) == 0 || (len(targets) == 1 && targets[0] == "all-linear") {
		targets = nn.ProjNames
	}
	for _, t := range targets {
		if !slices.Contains(nn.ProjNames, t) {
			return nil, fmt.Errorf("unknown target module %q", t)
		}
	}
	layers := cfg.Layers
	if layers == nil {
		for i := range m.Blocks {
			layers = append(layers, i)
		}
	}
	for _, l := range layers {
		if l < 0 || l >= len(m.Blocks) {
			return nil, fmt.Errorf("layer %d does not exist (the model has %d)", l, len(m.Blocks))
		}
	}
	if cfg.Method != MethodFull && cfg.Rank <= 0 {
		return nil, fmt.Errorf("rank must be positive, got %d", cfg.Rank)
	}
	if cfg.Selector == nil {
		cfg.Selector = RandomSelector{Seed: cfg.Seed}
	}
	a := &Adapted{Model: m, Config: cfg}
	for i, blk := range m.Blocks {
		if !slices.Contains(layers, i) {
			continue
		}
		for _, name := range nn.ProjNames {
			if !slices.Contains(targets, name) {
				continue
			}
			slot := blk.Proj(name)
			lin, ok := (*slot).(*nn.Linear)
			if !ok {
				return nil, fmt.Errorf("%s is already adapted", nn.ProjPath(i, name))
			}
			path := nn.ProjPath(i, name)
			layer, err := newLayer(lin, path, cfg)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			*slot = layer
			a.Modules = append(a.Modules, Module{Path: path, Index: i, Proj: name, Layer: layer})
		}
	}
	return a, nil
}

// newLayer builds one adapted projection.
func newLayer(lin *nn.Linear, path string, cfg Config) (Layer, error) {
	r, in := cfg.Rank, lin.W.Dim(1)
	if cfg.Method != MethodFull && r > in {
		return nil, fmt.Errorf("rank %d exceeds the %d input features", r, in)
	}
	switch cfg.Method {
	case MethodPaCA:
		return NewPaCA(lin, cfg.Selector.Select(path, lin.W, r), cfg.Alpha)
	case MethodQPaCA:
		return NewQPaCA(lin, cfg.Selector.Select(path, lin.W, r), cfg.Alpha, cfg.DoubleQuant)
	case MethodFull:
		if dt := lin.W.DType(); dt != tensor.Float32 {
			return nil, fmt.Errorf("full fine-tuning trains the weights in float32, and this one is %s (load the model as f32)", dt)
		}
		return NewFull(lin), nil
	}
	rng := moduleRNG(cfg.Seed, path)
	switch cfg.Method {
	case MethodLoRA:
		return NewLoRA(lin, r, cfg.Alpha, cfg.RSLoRA, cfg.Dropout, rng), nil
	case MethodQLoRA:
		return NewQLoRA(lin, r, cfg.Alpha, cfg.RSLoRA, cfg.Dropout, cfg.DoubleQuant, rng), nil
	case MethodDoRA:
		return NewDoRA(lin, r, cfg.Alpha, cfg.RSLoRA, cfg.Dropout, rng)
	}
	panic("unreachable")
}

// moduleRNG is a random stream for one module, from the run seed and the
// module path.
func moduleRNG(seed uint64, path string) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x5bd1e995, pathHash(path)))
}

// Trainable lists every trainable tensor with its full module name, e.g.
// "model.layers.0.self_attn.q_proj.paca_delta".
func (a *Adapted) Trainable() []nn.Param {
	var ps []nn.Param
	for _, mod := range a.Modules {
		for _, p := range mod.Layer.Trainable() {
			ps = append(ps, nn.Param{Name: mod.Path + "." + p.Name, T: p.T})
		}
	}
	return ps
}

// Counts returns the number of trainable values and of all values (base
// weights, quantized or not, plus adapters), as PEFT's
// print_trainable_parameters counts them.
func (a *Adapted) Counts() (trainable, total int) {
	for _, p := range a.Trainable() {
		trainable += p.T.Len()
	}
	total = a.Model.NumParams()
	for _, mod := range a.Modules {
		switch l := mod.Layer.(type) {
		case *Full:
			// its weights are the model's own
		case *PaCA:
			total += l.Delta.Len()
			if l.q != nil {
				total += l.q.Rows * l.q.Cols
			}
		default:
			if q, ok := l.(interface{ QuantizedLen() int }); ok {
				total += q.QuantizedLen()
			}
			for _, p := range mod.Layer.Trainable() {
				total += p.T.Len()
			}
		}
	}
	return trainable, total
}

// Summary is a one-line account of what trains.
func (a *Adapted) Summary() string {
	tr, all := a.Counts()
	return fmt.Sprintf("%s on %d modules: trainable params: %d || all params: %d || trainable%%: %.4f",
		a.Config.Method, len(a.Modules), tr, all, 100*float64(tr)/float64(all))
}

// ZeroGrad releases the gradients of every trainable tensor.
func (a *Adapted) ZeroGrad() {
	for _, p := range a.Trainable() {
		p.T.Grad.Release()
		p.T.Grad = nil
	}
}

// Batch is B sequences of T tokens with their labels, row by row.
type Batch struct {
	IDs, Labels []int32
	B, T        int
}

// CalibrationNorms accumulates full fine-tuning's dL/dW of each target
// projection over the batches and returns its squared column norms by
// module path: the scores GradientSelector ranks. The model is left as it
// was (frozen, no gradients).
func CalibrationNorms(m *nn.Model, targets []string, layers []int, batches []Batch) (map[string][]float64, error) {
	if len(batches) == 0 {
		return nil, fmt.Errorf("gradient selection needs at least one calibration batch")
	}
	type target struct {
		path string
		w    *tensor.Tensor
	}
	var ts []target
	for i, blk := range m.Blocks {
		if layers != nil && !slices.Contains(layers, i) {
			continue
		}
		for _, name := range targets {
			lin, ok := (*blk.Proj(name)).(*nn.Linear)
			if !ok {
				return nil, fmt.Errorf("%s is already adapted", nn.ProjPath(i, name))
			}
			lin.W.SetRequiresGrad(true)
			ts = append(ts, target{nn.ProjPath(i, name), lin.W})
		}
	}
	for _, b := range batches {
		tp := tensor.NewTape()
		loss, _ := m.Loss(tp, b.IDs, b.Labels, b.B, b.T)
		tp.Backward(loss, 1)
		loss.Release()
	}
	norms := map[string][]float64{}
	for _, t := range ts {
		if t.w.Grad != nil {
			norms[t.path] = columnNormsSquared(t.w.Grad)
		} else {
			norms[t.path] = make([]float64, t.w.Dim(1))
		}
		t.w.Grad.Release()
		t.w.Grad = nil
		t.w.SetRequiresGrad(false)
	}
	return norms, nil
}
