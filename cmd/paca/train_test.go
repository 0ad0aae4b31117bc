package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
)

// One step of plain SGD through the real command changes Δ by exactly
// −lr·s·(dL/dW)[:, I], with dL/dW computed here by full fine-tuning on the
// same batch (the first B records).
func TestTrainOneSGDStep(t *testing.T) {
	model, dataPath := filepath.Join(goldenModel, "model"), filepath.Join(goldenModel, "data.jsonl")
	out := t.TempDir()
	const lr, rank, alpha = 0.5, 4, 12.0
	code, stdout, stderr := runPaca("train", "--model", model, "--data", dataPath, "--out", out,
		"--method", "paca", "--rank", "4", "--alpha", "12", "--optimizer", "sgd", "--lr", "0.5",
		"--max-grad-norm", "0", "--lr-scheduler", "constant", "--steps", "1", "--batch-size", "2", "--seq-len", "64")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "step 1/1")

	// The reference gradient.
	m, err := nn.Load(model)
	require.NoError(t, err)
	defer m.Release()
	fa, err := paca.Apply(m, paca.Config{Method: paca.MethodFull})
	require.NoError(t, err)
	recs, err := data.ReadTokenized(dataPath)
	require.NoError(t, err)
	ids, labels, B, T := data.Pad(recs[:2])
	tp := tensor.NewTape()
	loss, _ := m.Loss(tp, ids, labels, B, T)
	tp.Backward(loss, 1)
	loss.Release()
	grads := map[string]*tensor.Tensor{}
	for _, p := range fa.Trainable() {
		grads[p.Name] = p.T.Grad
	}

	f, err := safetensors.Open(filepath.Join(out, paca.AdapterWeightsFile))
	require.NoError(t, err)
	defer f.Close()
	s := float32(alpha / rank)
	checked := 0
	for _, mod := range fa.Modules {
		delta, err := f.Float32("base_model.model." + mod.Path + ".paca_delta")
		require.NoError(t, err)
		idx, err := f.Int64("base_model.model." + mod.Path + ".paca_indices")
		require.NoError(t, err)
		g := grads[mod.Path+".weight"]
		in := g.Dim(1)
		for o := 0; o < g.Dim(0); o++ {
			for j, c := range idx {
				want := -lr * s * g.Data()[o*in+int(c)]
				require.InDelta(t, want, delta[o*rank+j], float64(1e-6+1e-5*abs(want)), "%s[%d,%d]", mod.Path, o, j)
			}
		}
		checked++
	}
	require.Equal(t, 14, checked)
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// Training each method end to end writes an output that loads back.
func TestTrainMethods(t *testing.T) {
	model, dataPath := filepath.Join(goldenModel, "model"), filepath.Join(goldenModel, "data.jsonl")
	for _, method := range paca.Methods {
		t.Run(method, func(t *testing.T) {
			out := t.TempDir()
			code, stdout, stderr := runPaca("train", "--model", model, "--data", dataPath, "--out", out,
				"--method", method, "--rank", "4", "--steps", "3", "--batch-size", "1", "--lr", "1e-3")
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "step 3/3")
			if method == paca.MethodFull {
				m, err := nn.Load(out)
				require.NoError(t, err)
				m.Release()
				return
			}
			m, err := nn.Load(model)
			require.NoError(t, err)
			defer m.Release()
			quant := method == paca.MethodQPaCA || method == paca.MethodQLoRA
			_, err = paca.LoadAdapter(out, m, quant)
			require.NoError(t, err)
		})
	}
}

func TestTrainSelections(t *testing.T) {
	model, dataPath := filepath.Join(goldenModel, "model"), filepath.Join(goldenModel, "data.jsonl")
	for _, sel := range []string{"random", "weight-norm", "gradient"} {
		code, _, stderr := runPaca("train", "--model", model, "--data", dataPath, "--out", t.TempDir(),
			"--selection", sel, "--steps", "1", "--batch-size", "1")
		require.Equal(t, 0, code, "%s: %s", sel, stderr)
	}
	code, _, stderr := runPaca("train", "--model", model, "--data", dataPath, "--out", t.TempDir(), "--selection", "best")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `unknown --selection "best"`)
}

// --resume from a checkpoint finishes with the same adapter, byte for
// byte, as the run that was never interrupted.
func TestTrainResume(t *testing.T) {
	model, dataPath := filepath.Join(goldenModel, "model"), filepath.Join(goldenModel, "data.jsonl")
	common := []string{"--model", model, "--data", dataPath, "--method", "lora", "--dropout", "0.1",
		"--steps", "6", "--batch-size", "1", "--grad-accum", "2", "--lr", "1e-2", "--lr-scheduler", "cosine", "--warmup-steps", "2"}
	full := t.TempDir()
	code, _, stderr := runPaca(append([]string{"train", "--out", full, "--save-every", "3", "--keep-checkpoints", "1"}, common...)...)
	require.Equal(t, 0, code, stderr)
	for _, f := range []string{"train_log.jsonl", "loss.png", "checkpoint-6", paca.AdapterWeightsFile} {
		_, err := os.Stat(filepath.Join(full, f))
		require.NoError(t, err, f)
	}
	_, err := os.Stat(filepath.Join(full, "checkpoint-3"))
	require.True(t, os.IsNotExist(err), "--keep-checkpoints 1 prunes checkpoint-3")

	// Run to step 3 only, then resume into another directory.
	part := t.TempDir()
	code, _, stderr = runPaca(append([]string{"train", "--out", part, "--save-every", "3"}, common...)...)
	require.Equal(t, 0, code, stderr)
	resumed := t.TempDir()
	code, stdout, stderr := runPaca(append([]string{"train", "--out", resumed, "--resume", filepath.Join(part, "checkpoint-3")}, common...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "resumed from")
	require.NotContains(t, stdout, "step 3/6")
	require.Contains(t, stdout, "step 4/6")
	want, err := os.ReadFile(filepath.Join(full, paca.AdapterWeightsFile))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(resumed, paca.AdapterWeightsFile))
	require.NoError(t, err)
	require.Equal(t, want, got, "resumed adapter differs")
}

// A NaN loss stops training with a clear message.
func TestTrainNaN(t *testing.T) {
	dir := copyModel(t)
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		vals, err := f.Float32(name)
		require.NoError(t, err)
		if name == "model.norm.weight" {
			vals[0] = float32(math.NaN())
		}
		info, _ := f.Info(name)
		ts = append(ts, safetensors.F32Tensor(name, info.Shape, vals))
	}
	f.Close()
	require.NoError(t, safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil))
	code, _, stderr := runPaca("train", "--model", dir, "--data", filepath.Join(goldenModel, "data.jsonl"), "--out", t.TempDir(), "--steps", "2")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "step 1: loss is NaN")
}

// --dtype bf16 trains on a bf16 copy of the frozen weights: the adapter it
// writes is close to the float32 run's, not equal to it; full fine-tuning
// and unknown dtypes are refused with one clear line.
func TestTrainDType(t *testing.T) {
	model, dataPath := filepath.Join(goldenModel, "model"), filepath.Join(goldenModel, "data.jsonl")
	args := []string{"train", "--model", model, "--data", dataPath, "--method", "paca", "--rank", "4",
		"--optimizer", "sgd", "--lr", "0.5", "--steps", "2", "--batch-size", "2", "--seq-len", "64"}
	deltas := map[string][]float32{}
	for _, dt := range []string{"f32", "bf16"} {
		out := t.TempDir()
		code, _, stderr := runPaca(append(args, "--out", out, "--dtype", dt)...)
		require.Equal(t, 0, code, stderr)
		f, err := safetensors.Open(filepath.Join(out, paca.AdapterWeightsFile))
		require.NoError(t, err)
		d, err := f.Float32("base_model.model.model.layers.0.mlp.down_proj.paca_delta")
		require.NoError(t, err)
		f.Close()
		deltas[dt] = d
	}
	var num, den float64
	for i, w := range deltas["f32"] {
		num += math.Pow(float64(deltas["bf16"][i]-w), 2)
		den += float64(w) * float64(w)
	}
	rel := math.Sqrt(num / den)
	require.Greater(t, rel, 0.0, "bf16 weights must change the result")
	require.Less(t, rel, 0.05)

	code, _, stderr := runPaca(append(args, "--out", t.TempDir(), "--method", "full", "--dtype", "bf16")...)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--dtype bf16 stores frozen weights, and full fine-tuning has none")
	code, _, stderr = runPaca(append(args, "--out", t.TempDir(), "--dtype", "int8")...)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, `unknown dtype "int8"`)
}
