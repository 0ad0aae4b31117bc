package paca

import (
	"fmt"

	"github.com/gopaca/paca/nn/safetensors"
)

// ExportLoRA writes a PaCA adapter as the exactly equivalent LoRA adapter,
// which every LoRA-serving tool loads. PaCA's update s·Δ on columns I is
// the rank-r product s·B·A with
//
//	A (r, in): row j is the unit vector e_{I[j]}   (the column selector)
//	B (out, r) = Δ
//
// and lora_alpha = paca_alpha, so that LoRA's scale alpha/r equals s.
func ExportLoRA(dir string, a *Adapted, base string) error {
	cfg := a.Config
	if cfg.Method != MethodPaCA && cfg.Method != MethodQPaCA {
		return fmt.Errorf("export as LoRA: the adapter is %s, not PaCA", cfg.Method)
	}
	alpha, dropout, no, yes := cfg.Alpha, 0.0, false, true
	ac := adapterConfig{
		PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: base, R: cfg.Rank,
		LoraAlpha: &alpha, LoraDropout: &dropout, UseRSLoRA: &no, UseDoRA: &no,
		FanInFanOut: &no, InitLoraWeights: &yes, Bias: "none",
		TargetModules: a.targetNames(), InferenceMode: true,
	}
	if cfg.Layers != nil {
		ac.LayersTransform = cfg.Layers
	}
	var ts []safetensors.Tensor
	for _, mod := range a.Modules {
		p := mod.Layer.(*PaCA)
		r, in := p.Rank(), p.inFeatures()
		sel := make([]float32, r*in)
		for j, c := range p.Indices {
			sel[j*in+c] = 1
		}
		ts = append(ts,
			safetensors.F32Tensor(peftPrefix+mod.Path+".lora_A.weight", []int{r, in}, sel),
			safetensors.F32Tensor(peftPrefix+mod.Path+".lora_B.weight", p.Delta.Shape(), p.Delta.Data()))
	}
	return writeAdapter(dir, ac, ts)
}
