package bench

import (
	"fmt"
	"strings"

	"github.com/gopaca/paca/nn"
)

// Shape names, as "paca bench --shape" spells them.
const (
	ShapeTiny      = "tiny"
	ShapeSmolLM2   = "smollm2-135m"
	ShapeLlama7BL1 = "llama-7b-layer"
)

// Shapes lists every built-in model shape.
var Shapes = []string{ShapeTiny, ShapeSmolLM2, ShapeLlama7BL1}

// ShapeConfig returns the model config of a built-in shape and a note that
// says what it is (printed with the results).
func ShapeConfig(name string) (*nn.Config, string, error) {
	switch name {
	case ShapeTiny:
		return &nn.Config{ModelType: "llama", VocabSize: 256, HiddenSize: 64, IntermediateSize: 160,
				NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 16, RMSNormEps: 1e-5,
				RoPE: nn.RoPEConfig{Type: "default", Theta: 10000}, MaxPositions: 2048,
				TieEmbeddings: true, BOSTokenID: -1},
			"tiny: 2 layers, hidden 64, 4 heads / 2 KV heads, intermediate 160, vocab 256 (for tests and smoke runs)", nil
	case ShapeSmolLM2:
		// HuggingFaceTB/SmolLM2-135M's config.json.
		return &nn.Config{ModelType: "llama", VocabSize: 49152, HiddenSize: 576, IntermediateSize: 1536,
				NumLayers: 30, NumHeads: 9, NumKVHeads: 3, HeadDim: 64, RMSNormEps: 1e-5,
				RoPE: nn.RoPEConfig{Type: "default", Theta: 100000}, MaxPositions: 8192,
				TieEmbeddings: true, BOSTokenID: 0, EOSTokenIDs: []int{0}},
			"smollm2-135m: SmolLM2-135M's shape with random weights — 30 layers, hidden 576, 9 heads / 3 KV heads, head_dim 64, intermediate 1536, vocab 49152, tied embeddings", nil
	case ShapeLlama7BL1:
		// One decoder layer of LLaMA-7B; a small vocabulary keeps the
		// embedding and LM head from dominating what is measured.
		return &nn.Config{ModelType: "llama", VocabSize: 1024, HiddenSize: 4096, IntermediateSize: 11008,
				NumLayers: 1, NumHeads: 32, NumKVHeads: 32, HeadDim: 128, RMSNormEps: 1e-6,
				RoPE: nn.RoPEConfig{Type: "default", Theta: 10000}, MaxPositions: 4096,
				BOSTokenID: 1, EOSTokenIDs: []int{2}},
			"llama-7b-layer: ONE decoder layer of LLaMA-7B (hidden 4096, 32 heads, intermediate 11008) with a 1024-token vocabulary and an untied head, so that the layer dominates; not a whole 7B model", nil
	}
	return nil, "", fmt.Errorf("unknown shape %q (want one of %s)", name, strings.Join(Shapes, ", "))
}
