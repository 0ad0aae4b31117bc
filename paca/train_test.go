package paca

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/tensor"
)

// trainRecords reads the golden batch as training records.
func trainRecords(t testing.TB) []data.Record {
	recs, err := data.ReadTokenized(filepath.Join(goldenDir("llama_gqa"), "data.jsonl"))
	require.NoError(t, err)
	return recs
}

var resumeConfigs = map[string]Config{
	"paca": {Method: MethodPaCA, Rank: 4, Alpha: 8, Seed: 3},
	"lora": {Method: MethodLoRA, Rank: 4, Alpha: 8, Seed: 3, Dropout: 0.2},
}

var resumeTrain = TrainConfig{Optimizer: "adamw", LR: 1e-2, WeightDecay: 0.01, Schedule: "cosine",
	Warmup: 1, MaxGradNorm: 1, BatchSize: 1, GradAccum: 2, SeqLen: 16, Steps: 6}

// newRun adapts a fresh golden model and prepares a trainer.
func newRun(t testing.TB, method string) (*nn.Model, *Trainer) {
	m, _ := loadGolden(t, "llama_gqa")
	a, err := Apply(m, resumeConfigs[method])
	require.NoError(t, err)
	tr, err := NewTrainer(a, trainRecords(t), resumeTrain)
	require.NoError(t, err)
	return m, tr
}

// trainedValues returns a copy of every trainable tensor by name.
func trainedValues(tr *Trainer) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range tr.Adapted.Trainable() {
		out[p.Name] = append([]float32(nil), p.T.Data()...)
	}
	return out
}

// TestCheckpointHelperProcess is the training run that the kill test
// starts in a child process; it does nothing in a normal test run.
func TestCheckpointHelperProcess(t *testing.T) {
	dir := os.Getenv("PACA_CHECKPOINT_HELPER_DIR")
	if dir == "" {
		t.Skip("only runs as the child of TestCheckpointSurvivesKill")
	}
	killAt, _ := strconv.Atoi(os.Getenv("PACA_CHECKPOINT_HELPER_KILL_AT"))
	m, tr := newRun(t, os.Getenv("PACA_CHECKPOINT_HELPER_METHOD"))
	defer m.Release()
	checkpointFault = func(stage string) {
		if tr.Step == killAt && stage == "tensors" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	for !tr.Done() {
		_, err := tr.TrainStep()
		require.NoError(t, err)
		if tr.Step%2 == 0 {
			require.NoError(t, tr.SaveCheckpoint(filepath.Join(dir, "checkpoint-"+strconv.Itoa(tr.Step)), "base"))
		}
	}
}

// A run killed in the middle of writing a checkpoint leaves the previous
// checkpoint intact, and resuming from it ends bit-identical to a run that
// was never interrupted.
func TestCheckpointSurvivesKill(t *testing.T) {
	for method := range resumeConfigs {
		t.Run(method, func(t *testing.T) {
			// The uninterrupted run.
			m, tr := newRun(t, method)
			for !tr.Done() {
				_, err := tr.TrainStep()
				require.NoError(t, err)
			}
			want := trainedValues(tr)
			tr.Release()
			m.Release()

			// The killed run: SIGKILL while writing checkpoint-4.
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointHelperProcess$")
			cmd.Env = append(os.Environ(), "PACA_CHECKPOINT_HELPER_DIR="+dir,
				"PACA_CHECKPOINT_HELPER_KILL_AT=4", "PACA_CHECKPOINT_HELPER_METHOD="+method)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the child must die: %s", out)
			require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "%s", out)
			_, err = os.Stat(filepath.Join(dir, "checkpoint-4"))
			require.True(t, os.IsNotExist(err), "no half-written checkpoint-4")

			// Resume from checkpoint-2 and finish.
			m, tr = newRun(t, method)
			defer m.Release()
			defer tr.Release()
			require.NoError(t, tr.LoadCheckpoint(filepath.Join(dir, "checkpoint-2")))
			require.Equal(t, 2, tr.Step)
			for !tr.Done() {
				_, err := tr.TrainStep()
				require.NoError(t, err)
			}
			got := trainedValues(tr)
			require.Equal(t, len(want), len(got))
			for name, w := range want {
				require.Equal(t, w, got[name], "%s differs after resume", name)
			}
		})
	}
}

// A checkpoint of another configuration is refused.
func TestLoadCheckpointMismatch(t *testing.T) {
	m, tr := newRun(t, "paca")
	defer m.Release()
	defer tr.Release()
	_, err := tr.TrainStep()
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "ck")
	require.NoError(t, tr.SaveCheckpoint(dir, "base"))

	m2, tr2 := newRun(t, "lora")
	defer m2.Release()
	defer tr2.Release()
	err = tr2.LoadCheckpoint(dir)
	require.ErrorContains(t, err, "the checkpoint is paca with rank 4")

	// Same method, weights in another dtype: the run would not continue
	// the same curve.
	m3, _ := loadGolden(t, "llama_gqa")
	defer m3.Release()
	m3.ConvertWeights(tensor.BFloat16)
	a3, err := Apply(m3, resumeConfigs["paca"])
	require.NoError(t, err)
	tr3, err := NewTrainer(a3, trainRecords(t), resumeTrain)
	require.NoError(t, err)
	defer tr3.Release()
	err = tr3.LoadCheckpoint(dir)
	require.ErrorContains(t, err, "the checkpoint was trained with f32 weights; this run has them in bf16 (use --dtype f32)")
}

// Gradient accumulation over k micro-batches of B records equals one
// batch of k·B records when they have the same length (the mean of equal-
// weight means), up to float rounding.
func TestGradAccumMatchesBigBatch(t *testing.T) {
	recs := trainRecords(t)
	recs = []data.Record{recs[0], recs[0], recs[0], recs[0]}
	deltas := map[int][]float32{}
	for _, accum := range []int{1, 2} {
		m, _ := loadGolden(t, "llama_gqa")
		a, err := Apply(m, Config{Method: MethodPaCA, Rank: 4, Alpha: 8, Seed: 3})
		require.NoError(t, err)
		tc := TrainConfig{Optimizer: "sgd", LR: 0.1, Schedule: "constant", BatchSize: 4 / accum, GradAccum: accum, SeqLen: 16, Steps: 1}
		tr, err := NewTrainer(a, recs, tc)
		require.NoError(t, err)
		_, err = tr.TrainStep()
		require.NoError(t, err)
		deltas[accum] = append([]float32(nil), a.Modules[0].Layer.(*PaCA).Delta.Data()...)
		tr.Release()
		m.Release()
	}
	require.InDeltaSlice(t, deltas[1], deltas[2], 1e-6)
	require.NotZero(t, deltas[1][0])
}
