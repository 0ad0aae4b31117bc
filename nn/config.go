// Package nn builds the LLaMA-family decoder from the ops of package tensor:
// the HF config and checkpoint formats, the model's forward pass (whose
// backward the tape derives), and the causal-LM loss.
package nn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// Config is the part of an HF config.json that fixes the model's math.
type Config struct {
	ModelType        string
	VocabSize        int
	HiddenSize       int // C
	IntermediateSize int
	NumLayers        int
	NumHeads         int // H
	NumKVHeads       int // KV; H is a multiple of it (grouped-query attention)
	HeadDim          int // D; hidden/heads unless config.json says otherwise
	RMSNormEps       float64
	RoPE             RoPEConfig
	MaxPositions     int
	SlidingWindow    int // 0: none
	TieEmbeddings    bool
	AttentionBias    bool // bias on q, k, v and o (LLaMA's attention_bias)
	QKVBias          bool // bias on q, k, v only (Qwen2)
	MLPBias          bool
	BOSTokenID       int   // -1 when absent
	EOSTokenIDs      []int // eos_token_id, an int or a list
	TorchDtype       string

	// Raw is the config.json this was parsed from; Save writes it back
	// unchanged so that fields this package ignores survive.
	Raw []byte
}

// RoPEConfig holds the rotary embedding's base and scaling rule.
type RoPEConfig struct {
	Type           string  // "default", "linear" or "llama3"
	Theta          float64 // base θ
	Factor         float64 // linear, llama3
	LowFreqFactor  float64 // llama3
	HighFreqFactor float64 // llama3
	OriginalMax    int     // llama3: original_max_position_embeddings
}

// rawConfig mirrors config.json. Pointers tell "absent" from zero.
type rawConfig struct {
	ModelType        string          `json:"model_type"`
	VocabSize        *int            `json:"vocab_size"`
	HiddenSize       *int            `json:"hidden_size"`
	IntermediateSize *int            `json:"intermediate_size"`
	NumLayers        *int            `json:"num_hidden_layers"`
	NumHeads         *int            `json:"num_attention_heads"`
	NumKVHeads       *int            `json:"num_key_value_heads"`
	HeadDim          *int            `json:"head_dim"`
	HiddenAct        *string         `json:"hidden_act"`
	RMSNormEps       *float64        `json:"rms_norm_eps"`
	RopeTheta        *float64        `json:"rope_theta"`
	RopeScaling      json.RawMessage `json:"rope_scaling"`
	RopeParameters   json.RawMessage `json:"rope_parameters"`
	MaxPositions     *int            `json:"max_position_embeddings"`
	TieEmbeddings    *bool           `json:"tie_word_embeddings"`
	AttentionBias    *bool           `json:"attention_bias"`
	MLPBias          *bool           `json:"mlp_bias"`
	BOSTokenID       json.RawMessage `json:"bos_token_id"`
	EOSTokenID       json.RawMessage `json:"eos_token_id"`
	TorchDtype       string          `json:"torch_dtype"`
	Dtype            string          `json:"dtype"`
	PretrainingTP    *int            `json:"pretraining_tp"`
	UseSlidingWindow *bool           `json:"use_sliding_window"`
	SlidingWindow    *int            `json:"sliding_window"`
}

type rawRoPE struct {
	RopeType       string   `json:"rope_type"`
	Type           string   `json:"type"` // older spelling of rope_type
	RopeTheta      *float64 `json:"rope_theta"`
	Factor         *float64 `json:"factor"`
	LowFreqFactor  *float64 `json:"low_freq_factor"`
	HighFreqFactor *float64 `json:"high_freq_factor"`
	OriginalMax    *int     `json:"original_max_position_embeddings"`
}

// LoadConfig reads an HF config.json. Errors name the file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// supportedModelTypes are the architectures whose math is the LLaMA
// decoder's: they differ only in which linears carry a bias.
var supportedModelTypes = map[string]bool{"": true, "llama": true, "mistral": true, "qwen2": true}

// ParseConfig decodes and checks config.json contents.
func ParseConfig(b []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if !supportedModelTypes[r.ModelType] {
		return nil, fmt.Errorf("model_type %q is not supported (llama, mistral, qwen2)", r.ModelType)
	}
	c := &Config{ModelType: r.ModelType, BOSTokenID: -1, TorchDtype: r.TorchDtype, Raw: bytes.Clone(b)}
	if c.TorchDtype == "" {
		c.TorchDtype = r.Dtype
	}
	for _, f := range []struct {
		name string
		src  *int
		dst  *int
	}{
		{"vocab_size", r.VocabSize, &c.VocabSize},
		{"hidden_size", r.HiddenSize, &c.HiddenSize},
		{"intermediate_size", r.IntermediateSize, &c.IntermediateSize},
		{"num_hidden_layers", r.NumLayers, &c.NumLayers},
		{"num_attention_heads", r.NumHeads, &c.NumHeads},
	} {
		if f.src == nil {
			return nil, fmt.Errorf("missing %s", f.name)
		}
		if *f.src <= 0 {
			return nil, fmt.Errorf("%s must be positive, got %d", f.name, *f.src)
		}
		*f.dst = *f.src
	}
	c.NumKVHeads = c.NumHeads
	if r.NumKVHeads != nil {
		c.NumKVHeads = *r.NumKVHeads
	}
	if c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 {
		return nil, fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if r.HeadDim != nil {
		c.HeadDim = *r.HeadDim
	} else {
		if c.HiddenSize%c.NumHeads != 0 {
			return nil, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d (set head_dim)", c.HiddenSize, c.NumHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if c.HeadDim <= 0 || c.HeadDim%2 != 0 {
		return nil, fmt.Errorf("head_dim must be positive and even, got %d", c.HeadDim)
	}
	if r.HiddenAct != nil && *r.HiddenAct != "silu" {
		return nil, fmt.Errorf("hidden_act %q is not supported (silu)", *r.HiddenAct)
	}
	if r.PretrainingTP != nil && *r.PretrainingTP > 1 {
		return nil, fmt.Errorf("pretraining_tp %d is not supported (1)", *r.PretrainingTP)
	}
	c.RMSNormEps = 1e-6
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	if !(c.RMSNormEps > 0) {
		return nil, fmt.Errorf("rms_norm_eps must be positive, got %g", c.RMSNormEps)
	}
	c.MaxPositions = 2048
	if r.MaxPositions != nil {
		c.MaxPositions = *r.MaxPositions
	}
	c.TieEmbeddings = r.TieEmbeddings != nil && *r.TieEmbeddings
	c.MLPBias = r.MLPBias != nil && *r.MLPBias
	switch r.ModelType {
	case "qwen2":
		c.QKVBias = true
		if r.UseSlidingWindow != nil && *r.UseSlidingWindow {
			return nil, fmt.Errorf("use_sliding_window is not supported")
		}
	default:
		c.AttentionBias = r.AttentionBias != nil && *r.AttentionBias
	}
	if r.ModelType == "mistral" && r.SlidingWindow != nil {
		c.SlidingWindow = *r.SlidingWindow
	}
	var err error
	if c.RoPE, err = parseRoPE(r); err != nil {
		return nil, err
	}
	if c.BOSTokenID, err = parseTokenIDs(r.BOSTokenID, "bos_token_id"); err != nil {
		return nil, err
	}
	eos, err := parseTokenList(r.EOSTokenID)
	if err != nil {
		return nil, fmt.Errorf("eos_token_id: %w", err)
	}
	c.EOSTokenIDs = eos
	return c, nil
}

// parseRoPE reads rope_theta/rope_scaling (older configs) or
// rope_parameters (newer ones, which hold the theta too).
func parseRoPE(r rawConfig) (RoPEConfig, error) {
	rc := RoPEConfig{Type: "default", Theta: 10000}
	if r.RopeTheta != nil {
		rc.Theta = *r.RopeTheta
	}
	field, raw := "rope_scaling", r.RopeScaling
	if isSet(r.RopeParameters) {
		field, raw = "rope_parameters", r.RopeParameters
	}
	if isSet(raw) {
		var p rawRoPE
		if err := json.Unmarshal(raw, &p); err != nil {
			return rc, fmt.Errorf("%s: %w", field, err)
		}
		if p.RopeTheta != nil {
			rc.Theta = *p.RopeTheta
		}
		rc.Type = p.RopeType
		if rc.Type == "" {
			rc.Type = p.Type
		}
		if rc.Type == "" {
			rc.Type = "default"
		}
		get := func(name string, v *float64) (float64, error) {
			if v == nil {
				return 0, fmt.Errorf("%s: rope_type %q needs %s", field, rc.Type, name)
			}
			return *v, nil
		}
		var err error
		switch rc.Type {
		case "default":
		case "linear":
			if rc.Factor, err = get("factor", p.Factor); err != nil {
				return rc, err
			}
		case "llama3":
			if rc.Factor, err = get("factor", p.Factor); err != nil {
				return rc, err
			}
			if rc.LowFreqFactor, err = get("low_freq_factor", p.LowFreqFactor); err != nil {
				return rc, err
			}
			if rc.HighFreqFactor, err = get("high_freq_factor", p.HighFreqFactor); err != nil {
				return rc, err
			}
			if p.OriginalMax == nil {
				return rc, fmt.Errorf("%s: rope_type \"llama3\" needs original_max_position_embeddings", field)
			}
			rc.OriginalMax = *p.OriginalMax
			if !(rc.HighFreqFactor > rc.LowFreqFactor) || rc.OriginalMax <= 0 {
				return rc, fmt.Errorf("%s: llama3 needs high_freq_factor > low_freq_factor and a positive original_max_position_embeddings", field)
			}
		default:
			return rc, fmt.Errorf("%s: rope_type %q is not supported (default, linear, llama3)", field, rc.Type)
		}
		if rc.Type != "default" && !(rc.Factor > 0) {
			return rc, fmt.Errorf("%s: factor must be positive", field)
		}
	}
	if !(rc.Theta > 0) || math.IsInf(rc.Theta, 0) {
		return rc, fmt.Errorf("rope_theta must be positive, got %g", rc.Theta)
	}
	return rc, nil
}

func isSet(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// parseTokenIDs reads an optional single token id (or the first of a list).
func parseTokenIDs(raw json.RawMessage, name string) (int, error) {
	ids, err := parseTokenList(raw)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if len(ids) == 0 {
		return -1, nil
	}
	return ids[0], nil
}

// parseTokenList reads null, an int, or a list of ints.
func parseTokenList(raw json.RawMessage) ([]int, error) {
	if !isSet(raw) {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want an int or a list of ints, got %s", raw)
	}
	return many, nil
}

// InvFreq returns the RoPE inverse frequencies θ^(−2i/D), i < D/2, after
// the configured scaling rule (HF's rope_init_fn):
//
//	linear: inv/factor
//	llama3: wavelength λ = 2π/inv; λ > orig/low → inv/factor;
//	        λ < orig/high → inv; between: (1−s)·inv/factor + s·inv,
//	        s = (orig/λ − low)/(high − low)
func (c *Config) InvFreq() []float64 {
	d := c.HeadDim
	inv := make([]float64, d/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RoPE.Theta, float64(2*i)/float64(d))
	}
	r := c.RoPE
	switch r.Type {
	case "linear":
		for i := range inv {
			inv[i] /= r.Factor
		}
	case "llama3":
		orig := float64(r.OriginalMax)
		lowWave, highWave := orig/r.LowFreqFactor, orig/r.HighFreqFactor
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave > lowWave:
				inv[i] = f / r.Factor
			case wave < highWave:
			default:
				s := (orig/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				inv[i] = (1-s)*f/r.Factor + s*f
			}
		}
	}
	return inv
}

// JSON returns config.json contents for the model: Raw when the config
// was read from a file, else the HF fields this package knows.
func (c *Config) JSON() ([]byte, error) {
	if c.Raw != nil {
		return c.Raw, nil
	}
	mt := c.ModelType
	if mt == "" {
		mt = "llama"
	}
	rope := map[string]any{"rope_type": c.RoPE.Type, "rope_theta": c.RoPE.Theta}
	switch c.RoPE.Type {
	case "linear":
		rope["factor"] = c.RoPE.Factor
	case "llama3":
		rope["factor"] = c.RoPE.Factor
		rope["low_freq_factor"] = c.RoPE.LowFreqFactor
		rope["high_freq_factor"] = c.RoPE.HighFreqFactor
		rope["original_max_position_embeddings"] = c.RoPE.OriginalMax
	}
	m := map[string]any{
		"architectures":           []string{map[string]string{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}[mt]},
		"model_type":              mt,
		"vocab_size":              c.VocabSize,
		"hidden_size":             c.HiddenSize,
		"intermediate_size":       c.IntermediateSize,
		"num_hidden_layers":       c.NumLayers,
		"num_attention_heads":     c.NumHeads,
		"num_key_value_heads":     c.NumKVHeads,
		"head_dim":                c.HeadDim,
		"hidden_act":              "silu",
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RoPE.Theta,
		"rope_scaling":            nil,
		"max_position_embeddings": c.MaxPositions,
		"tie_word_embeddings":     c.TieEmbeddings,
		"torch_dtype":             orDefault(c.TorchDtype, "float32"),
	}
	if c.RoPE.Type != "default" {
		m["rope_scaling"] = rope
	}
	if mt != "qwen2" {
		m["attention_bias"] = c.AttentionBias
		m["mlp_bias"] = c.MLPBias
	}
	if c.BOSTokenID >= 0 {
		m["bos_token_id"] = c.BOSTokenID
	}
	switch len(c.EOSTokenIDs) {
	case 0:
	case 1:
		m["eos_token_id"] = c.EOSTokenIDs[0]
	default:
		m["eos_token_id"] = c.EOSTokenIDs
	}
	return json.MarshalIndent(m, "", "  ")
}
