package paca

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gopaca/paca/internal/atomicfile"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/tensor"
)

// Adapter files follow HF PEFT's directory layout: adapter_config.json and
// adapter_model.safetensors, tensor names prefixed by "base_model.model."
// and suffixed by the method's parameter names. PEFT loads what Save
// writes, and Load reads what PEFT saves.
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
	peftPrefix         = "base_model.model."
)

// adapterConfig is the part of adapter_config.json this package writes
// and reads. Unknown fields are ignored on reading (PEFT writes many).
type adapterConfig struct {
	PeftType         string   `json:"peft_type"`
	TaskType         string   `json:"task_type"`
	BaseModel        string   `json:"base_model_name_or_path"`
	R                int      `json:"r"`
	PacaAlpha        *float64 `json:"paca_alpha,omitempty"`
	RandomSeed       *uint64  `json:"random_seed,omitempty"`
	LoraAlpha        *float64 `json:"lora_alpha,omitempty"`
	LoraDropout      *float64 `json:"lora_dropout,omitempty"`
	UseRSLoRA        *bool    `json:"use_rslora,omitempty"`
	UseDoRA          *bool    `json:"use_dora,omitempty"`
	Bias             string   `json:"bias,omitempty"`
	FanInFanOut      *bool    `json:"fan_in_fan_out,omitempty"`
	InitLoraWeights  *bool    `json:"init_lora_weights,omitempty"`
	TargetModules    any      `json:"target_modules"`
	LayersTransform  any      `json:"layers_to_transform"`
	InferenceMode    bool     `json:"inference_mode"`
	ModulesToSave    any      `json:"modules_to_save"`
	Revision         any      `json:"revision"`
	PeftVersionNotes string   `json:"-"`
}

// Save writes the adapter of a (PaCA, QPaCA, LoRA, QLoRA or DoRA) to dir
// in PEFT's layout, float32 tensors. base is recorded as
// base_model_name_or_path.
func Save(dir string, a *Adapted, base string) error {
	cfg := a.Config
	ac := adapterConfig{TaskType: "CAUSAL_LM", BaseModel: base, R: cfg.Rank, InferenceMode: true}
	targets := a.targetNames()
	ac.TargetModules = targets
	if cfg.Layers != nil {
		ac.LayersTransform = cfg.Layers
	}
	alpha := cfg.Alpha
	switch cfg.Method {
	case MethodPaCA, MethodQPaCA:
		ac.PeftType = "PACA"
		ac.PacaAlpha = &alpha
		seed := cfg.Seed
		ac.RandomSeed = &seed
	case MethodLoRA, MethodQLoRA, MethodDoRA:
		ac.PeftType = "LORA"
		ac.LoraAlpha = &alpha
		dropout, rs, dora, f, init := cfg.Dropout, cfg.RSLoRA, cfg.Method == MethodDoRA, false, true
		ac.LoraDropout, ac.UseRSLoRA, ac.UseDoRA, ac.FanInFanOut, ac.InitLoraWeights = &dropout, &rs, &dora, &f, &init
		ac.Bias = "none"
	default:
		return fmt.Errorf("save adapter: method %q has no adapter (save the model instead)", cfg.Method)
	}
	var ts []safetensors.Tensor
	for _, mod := range a.Modules {
		for _, p := range mod.Layer.Trainable() {
			ts = append(ts, safetensors.F32Tensor(peftPrefix+mod.Path+"."+p.Name, p.T.Shape(), p.T.Data()))
		}
		if p, ok := mod.Layer.(*PaCA); ok {
			idx := make([]int64, len(p.Indices))
			for i, c := range p.Indices {
				idx[i] = int64(c)
			}
			ts = append(ts, safetensors.I64Tensor(peftPrefix+mod.Path+".paca_indices", []int{len(idx)}, idx))
		}
	}
	return writeAdapter(dir, ac, ts)
}

// writeAdapter writes an adapter directory, each file atomically.
func writeAdapter(dir string, ac adapterConfig, ts []safetensors.Tensor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := safetensors.Write(filepath.Join(dir, AdapterWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	js, err := json.MarshalIndent(ac, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, AdapterConfigFile), append(js, '\n'))
}

// targetNames lists the adapted projection names, sorted.
func (a *Adapted) targetNames() []string {
	var names []string
	for _, mod := range a.Modules {
		n := mod.Path[strings.LastIndexByte(mod.Path, '.')+1:]
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// LoadAdapter reads a PEFT adapter directory and applies it to m. A PaCA
// adapter becomes QPaCA and a LoRA one QLoRA when quantize is set. Both
// HF PEFT's PaCA tensors (paca_delta, Δ) and the paper code's (paca_w, the
// columns divided by s) are read.
func LoadAdapter(dir string, m *nn.Model, quantize bool) (*Adapted, error) {
	cfgPath := filepath.Join(dir, AdapterConfigFile)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	var ac adapterConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", cfgPath, err)
	}
	cfg, err := configFromAdapter(ac)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if quantize {
		cfg.Method = map[string]string{MethodPaCA: MethodQPaCA, MethodLoRA: MethodQLoRA, MethodDoRA: MethodDoRA}[cfg.Method]
		if cfg.Method == MethodDoRA {
			return nil, fmt.Errorf("%s: DoRA has no quantized variant here", cfgPath)
		}
	}
	wPath := filepath.Join(dir, AdapterWeightsFile)
	f, err := safetensors.Open(wPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no %s (only safetensors adapters are read)", dir, AdapterWeightsFile)
		}
		return nil, err
	}
	defer f.Close()
	a, err := loadTensors(f, m, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", wPath, err)
	}
	return a, nil
}

// configFromAdapter checks adapter_config.json and turns it into a Config.
func configFromAdapter(ac adapterConfig) (Config, error) {
	cfg := Config{Rank: ac.R}
	if ac.R <= 0 {
		return cfg, fmt.Errorf("r must be positive, got %d", ac.R)
	}
	if ac.TaskType != "" && ac.TaskType != "CAUSAL_LM" {
		return cfg, fmt.Errorf("task_type %q is not supported (CAUSAL_LM)", ac.TaskType)
	}
	switch ac.PeftType {
	case "PACA":
		cfg.Method = MethodPaCA
		if ac.PacaAlpha == nil {
			return cfg, fmt.Errorf("missing paca_alpha")
		}
		cfg.Alpha = *ac.PacaAlpha
		if ac.RandomSeed != nil {
			cfg.Seed = *ac.RandomSeed
		}
	case "LORA":
		cfg.Method = MethodLoRA
		if ac.LoraAlpha == nil {
			return cfg, fmt.Errorf("missing lora_alpha")
		}
		cfg.Alpha = *ac.LoraAlpha
		if ac.UseDoRA != nil && *ac.UseDoRA {
			cfg.Method = MethodDoRA
		}
		if ac.UseRSLoRA != nil {
			cfg.RSLoRA = *ac.UseRSLoRA
		}
		if ac.LoraDropout != nil {
			cfg.Dropout = *ac.LoraDropout
		}
		if ac.FanInFanOut != nil && *ac.FanInFanOut {
			return cfg, fmt.Errorf("fan_in_fan_out is not supported")
		}
		if ac.Bias != "" && ac.Bias != "none" {
			return cfg, fmt.Errorf("bias %q is not supported (none)", ac.Bias)
		}
	default:
		return cfg, fmt.Errorf("peft_type %q is not supported (PACA, LORA)", ac.PeftType)
	}
	if !(cfg.Alpha > 0) || math.IsInf(cfg.Alpha, 0) {
		return cfg, fmt.Errorf("alpha must be positive, got %g", cfg.Alpha)
	}
	return cfg, nil
}

// adapterTensor names one tensor of an adapter file.
type adapterTensor struct {
	module string // HF module path
	param  string // paca_delta, lora_A.weight, …
}

// splitName splits "base_model.model.<module>.<param>" where module is a
// decoder projection; the error names the tensor.
func splitName(name string, m *nn.Model) (adapterTensor, int, string, error) {
	rest, ok := strings.CutPrefix(name, peftPrefix)
	if !ok {
		return adapterTensor{}, 0, "", fmt.Errorf("tensor %q does not start with %q", name, peftPrefix)
	}
	for _, proj := range nn.ProjNames {
		i := strings.Index(rest, "."+proj+".")
		if i < 0 {
			continue
		}
		module, param := rest[:i+1+len(proj)], rest[i+2+len(proj):]
		layerStr, ok := strings.CutPrefix(module[:i], "model.layers.")
		if !ok {
			break
		}
		layerStr = layerStr[:max(0, strings.IndexByte(layerStr, '.'))]
		layer, err := strconv.Atoi(layerStr)
		if err != nil || layer < 0 || layer >= len(m.Blocks) || module != nn.ProjPath(layer, proj) {
			return adapterTensor{}, 0, "", fmt.Errorf("tensor %q: module %s is not in this %d-layer model", name, module, len(m.Blocks))
		}
		return adapterTensor{module, param}, layer, proj, nil
	}
	return adapterTensor{}, 0, "", fmt.Errorf("tensor %q is not on a decoder projection (%s)", name, strings.Join(nn.ProjNames, ", "))
}

// paramShapes returns the tensors a module of the method holds in an
// adapter file, with their shapes, for a base weight (out, in) and rank r.
func paramShapes(method string, out, in, r int) map[string][]int {
	switch method {
	case MethodPaCA, MethodQPaCA:
		return map[string][]int{"paca_delta": {out, r}, "paca_indices": {r}}
	case MethodDoRA:
		return map[string][]int{"lora_A.weight": {r, in}, "lora_B.weight": {out, r}, "lora_magnitude_vector": {out}}
	}
	return map[string][]int{"lora_A.weight": {r, in}, "lora_B.weight": {out, r}}
}

// moduleData is one module's tensors, read and checked.
type moduleData struct {
	path    string
	layer   int
	proj    string
	values  map[string][]float32 // param → values, in the layer's layout
	indices []int                // PaCA: sorted columns
}

// loadTensors reads and checks every tensor of the file first, then builds
// the adapted layers, so that a bad file leaves the model untouched.
func loadTensors(f *safetensors.File, m *nn.Model, cfg Config) (*Adapted, error) {
	mods := map[string]*moduleData{}
	names := map[string]map[string]string{} // module → param → tensor name
	for _, name := range f.Names() {
		at, layer, proj, err := splitName(name, m)
		if err != nil {
			return nil, err
		}
		if mods[at.module] == nil {
			mods[at.module] = &moduleData{path: at.module, layer: layer, proj: proj, values: map[string][]float32{}}
			names[at.module] = map[string]string{}
		}
		names[at.module][at.param] = name
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no adapter tensors")
	}
	var order []*moduleData
	for _, md := range mods {
		order = append(order, md)
	}
	sort.Slice(order, func(i, j int) bool { // model order
		a, b := order[i], order[j]
		if a.layer != b.layer {
			return a.layer < b.layer
		}
		return slices.Index(nn.ProjNames, a.proj) < slices.Index(nn.ProjNames, b.proj)
	})
	for _, md := range order {
		lin, ok := (*m.Blocks[md.layer].Proj(md.proj)).(*nn.Linear)
		if !ok {
			return nil, fmt.Errorf("module %s is already adapted", md.path)
		}
		if err := readModule(f, md, names[md.path], lin.W, cfg); err != nil {
			return nil, err
		}
	}

	if cfg.Method == MethodPaCA || cfg.Method == MethodQPaCA {
		fixed := fixedSelector{}
		for _, md := range order {
			fixed[md.path] = md.indices
		}
		cfg.Selector = fixed
	}
	a := &Adapted{Model: m, Config: cfg}
	for _, md := range order {
		slot := m.Blocks[md.layer].Proj(md.proj)
		layer, err := newLayer((*slot).(*nn.Linear), md.path, cfg)
		if err != nil { // readModule checked everything newLayer checks
			panic(err)
		}
		for _, p := range layer.Trainable() {
			copy(p.T.Data(), md.values[p.Name])
		}
		*slot = layer
		a.Modules = append(a.Modules, Module{Path: md.path, Index: md.layer, Proj: md.proj, Layer: layer})
	}
	return a, nil
}

// readModule reads one module's tensors into md after checking names,
// shapes, values and (PaCA) indices against the base weight w (out, in).
func readModule(f *safetensors.File, md *moduleData, names map[string]string, w *tensor.Tensor, cfg Config) error {
	out, in, r := w.Dim(0), w.Dim(1), cfg.Rank
	if r > in {
		return fmt.Errorf("module %s: r %d exceeds its %d input features", md.path, r, in)
	}
	want := paramShapes(cfg.Method, out, in, r)
	isPaCA := cfg.Method == MethodPaCA || cfg.Method == MethodQPaCA
	if _, ok := names["paca_w"]; ok && isPaCA {
		// The paper code stores the columns divided by s as paca_w.
		if _, both := names["paca_delta"]; both {
			return fmt.Errorf("module %s holds both paca_delta and paca_w", md.path)
		}
		want["paca_w"] = want["paca_delta"]
		delete(want, "paca_delta")
	}
	for param, name := range names {
		if _, ok := want[param]; !ok {
			return fmt.Errorf("tensor %q is not a %s parameter (want %s)", name, cfg.Method, strings.Join(sortedKeys(want), ", "))
		}
	}
	for _, param := range sortedKeys(want) {
		name, ok := names[param]
		if !ok {
			return fmt.Errorf("module %s has no %s", md.path, param)
		}
		info, _ := f.Info(name)
		if !slices.Equal(info.Shape, want[param]) {
			return fmt.Errorf("tensor %q has shape %v, the base model needs %v", name, info.Shape, want[param])
		}
	}
	var perm []int // PaCA: file column of each sorted index
	if isPaCA {
		name := names["paca_indices"]
		raw, err := f.Int64(name)
		if err != nil {
			return err
		}
		if md.indices, perm, err = sortIndices(raw, in, r); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
	}
	for param, name := range names {
		if param == "paca_indices" {
			continue
		}
		vals, err := f.Float32(name)
		if err != nil {
			return err
		}
		for _, v := range vals {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %q holds NaN or Inf", name)
			}
		}
		if perm != nil {
			vals = permuteCols(vals, out, perm)
		}
		md.values[param] = vals
	}
	if pw, ok := md.values["paca_w"]; ok {
		// Δ = paca_w − W[:, I]/s.
		s := float32(cfg.Alpha / float64(r))
		w = w.AsFloat32(tensor.Scratch)
		defer w.Release()
		wd := w.Data()
		for o := 0; o < out; o++ {
			for j, c := range md.indices {
				pw[o*r+j] -= wd[o*in+c] / s
			}
		}
		md.values["paca_delta"] = pw
		delete(md.values, "paca_w")
	}
	return nil
}

// permuteCols returns the (rows, len(perm)) matrix whose column j is
// column perm[j] of vals.
func permuteCols(vals []float32, rows int, perm []int) []float32 {
	cols := len(perm)
	out := make([]float32, len(vals))
	for i := 0; i < rows; i++ {
		for j, c := range perm {
			out[i*cols+j] = vals[i*cols+c]
		}
	}
	return out
}

func sortedKeys(m map[string][]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortIndices checks r distinct in-range indices and returns them sorted,
// with the permutation that sorts them (the paper code does not sort).
func sortIndices(raw []int64, in, r int) (idx, perm []int, err error) {
	if len(raw) != r {
		return nil, nil, fmt.Errorf("%d indices, but r is %d", len(raw), r)
	}
	perm = make([]int, r)
	for j := range perm {
		perm[j] = j
		if raw[j] < 0 || raw[j] >= int64(in) {
			return nil, nil, fmt.Errorf("index %d at %d is outside the layer's %d input features", raw[j], j, in)
		}
	}
	sort.SliceStable(perm, func(a, b int) bool { return raw[perm[a]] < raw[perm[b]] })
	idx = make([]int, r)
	for j, k := range perm {
		idx[j] = int(raw[k])
		if j > 0 && idx[j] == idx[j-1] {
			return nil, nil, fmt.Errorf("index %d is repeated", idx[j])
		}
	}
	return idx, perm, nil
}

// fixedSelector returns the columns an adapter file holds.
type fixedSelector map[string][]int

func (s fixedSelector) Select(path string, _ *tensor.Tensor, _ int) []int { return s[path] }

// Unapply puts plain linears holding the merged weights W + ΔW back in
// place of the adapted modules and frees the adapters: the model is then
// an ordinary checkpoint again, ready for Save.
func (a *Adapted) Unapply() {
	for _, mod := range a.Modules {
		w := mod.Layer.Merged()
		base := mod.Layer.Base()
		mod.Layer.Release()
		base.W.Release() // nil for quantized layers
		*a.Model.Blocks[mod.Index].Proj(mod.Proj) = &nn.Linear{W: w, B: base.B}
	}
	a.Modules = nil
}
