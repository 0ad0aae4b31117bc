package paca

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// Every method on a 16-bit base computes what it computes on a float32
// base holding the same (rounded) values. The loss, every trainable
// gradient and the merged weights are bit for bit the same, except for
// PaCA's loss and gradients: on a 16-bit base it adds the columns' update
// as a second product (x Wᵀ + s·x_I Δᵀ) instead of writing it into W, the
// same sum rounded in another order.
func TestMethodsOnHalfBase(t *testing.T) {
	for _, name := range goldenModels {
		for _, method := range []string{MethodPaCA, MethodQPaCA, MethodLoRA, MethodQLoRA, MethodDoRA} {
			for _, dt := range []tensor.DType{tensor.BFloat16, tensor.Float16} {
				if dt == tensor.Float16 && method != MethodPaCA && method != MethodLoRA {
					continue
				}
				t.Run(name+"/"+method+"/"+dt.String(), func(t *testing.T) {
					half, b := loadGolden(t, name)
					half.Release()
					dir := filepath.Join(goldenDir(name), "model")
					half, err := nn.LoadAs(dir, dt)
					require.NoError(t, err)
					defer half.Release()
					require.Equal(t, dt, half.Embed.DType())
					require.Equal(t, tensor.Float32, half.Norm.DType())

					ref, err := nn.LoadAs(dir, dt)
					require.NoError(t, err)
					defer ref.Release()
					ref.ConvertWeights(tensor.Float32)
					require.Equal(t, tensor.Float32, ref.Embed.DType())

					cfg := Config{Method: method, Rank: 4, Alpha: 8, Seed: 3}
					ha, err := Apply(half, cfg)
					require.NoError(t, err)
					ra, err := Apply(ref, cfg)
					require.NoError(t, err)
					randomize(ha, 7)
					randomize(ra, 7)
					wantLoss, gotLoss := lossAndBackward(ref, b), lossAndBackward(half, b)
					exact := method != MethodPaCA
					if exact {
						require.Equal(t, wantLoss, gotLoss, "loss")
					} else {
						require.InEpsilon(t, wantLoss, gotLoss, 1e-6, "loss")
					}
					for i, mod := range ha.Modules {
						for j, p := range mod.Layer.Trainable() {
							want := ra.Modules[i].Layer.Trainable()[j].T.Grad
							if exact {
								require.Equal(t, want.Data(), p.T.Grad.Data(), "%s %s gradient", mod.Path, p.Name)
							} else {
								require.Less(t, relErr(p.T.Grad.Data(), want.Data()), 1e-5, "%s %s gradient", mod.Path, p.Name)
							}
						}
						if method == MethodPaCA || method == MethodLoRA {
							w, g := ra.Modules[i].Layer.Merged(), mod.Layer.Merged()
							require.Equal(t, w.Data(), g.Data(), "%s merged", mod.Path)
							w.Release()
							g.Release()
						}
					}
				})
			}
		}
	}
}

func TestFullFineTuningNeedsFloat32(t *testing.T) {
	m, err := nn.LoadAs(filepath.Join(goldenDir("llama_gqa"), "model"), tensor.BFloat16)
	require.NoError(t, err)
	defer m.Release()
	_, err = Apply(m, Config{Method: MethodFull})
	require.ErrorContains(t, err, "full fine-tuning trains the weights in float32, and this one is bf16")
}
