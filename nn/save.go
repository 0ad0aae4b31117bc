package nn

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gopaca/paca/internal/atomicfile"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/tensor"
)

// Save writes the model as an HF checkpoint directory: config.json and
// model.safetensors, with weights stored in the dtype config.json names
// (bfloat16, float16, else float32). Both files are written atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conv := safetensors.F32Tensor
	switch m.Config.TorchDtype {
	case "bfloat16":
		conv = safetensors.BF16Tensor
	case "float16":
		conv = safetensors.F16Tensor
	}
	var ts []safetensors.Tensor
	for _, p := range m.Params() {
		w := p.T.AsFloat32(tensor.Scratch)
		// The converter copies the values, so w can go at once.
		ts = append(ts, conv(p.Name, w.Shape(), w.Data()))
		w.Release()
	}
	if len(ts) != len(m.Params()) || !m.complete() {
		return fmt.Errorf("save %s: some projections have no plain weight (merge the adapters first)", dir)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	cfg, err := m.Config.JSON()
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "config.json"), cfg)
}

// complete reports whether every projection has a plain base weight.
func (m *Model) complete() bool {
	for _, b := range m.Blocks {
		for _, name := range ProjNames {
			if lin := baseLinear(*b.Proj(name)); lin == nil || lin.W == nil {
				return false
			}
		}
	}
	return true
}
