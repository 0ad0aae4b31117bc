package demo

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/paca"
)

// PaCA fine-tuning teaches the pre-trained model a task it could not do:
// held-out accuracy rises well above the pre-trained model's.
func TestPaCALearnsNewTask(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for several seconds")
	}
	o := Options{Seed: 1, PretrainSteps: 400, FinetuneSteps: 100, BatchSize: 32, Rank: 8,
		Methods: []string{paca.MethodPaCA}, Eval: 50}
	rep, err := Run(o)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rep.CopyAcc, 0.5, "pre-training learned copy and reverse")
	r := rep.Results[0]
	t.Logf("PaCA: held-out accuracy %.0f%% before, %.0f%% after fine-tuning", 100*r.Before, 100*r.After)
	require.LessOrEqual(t, r.Before, 0.1)
	require.GreaterOrEqual(t, r.After, r.Before+0.5)
}

// The same seed gives the same run, loss for loss.
func TestDemoDeterministic(t *testing.T) {
	o := Options{Seed: 7, PretrainSteps: 8, FinetuneSteps: 6, BatchSize: 4, Rank: 4,
		Methods: []string{paca.MethodPaCA, paca.MethodLoRA}, Eval: 5}
	a, err := Run(o)
	require.NoError(t, err)
	b, err := Run(o)
	require.NoError(t, err)
	require.Equal(t, a.Pretrain, b.Pretrain)
	for i := range a.Results {
		require.Equal(t, a.Results[i].Losses, b.Results[i].Losses)
		require.Equal(t, a.Results[i].After, b.Results[i].After)
	}
}

// Every held-out record's answer is the permutation of its input.
func TestTaskRecords(t *testing.T) {
	task := NewTask(16, 2, 6, 3)
	for i, s := range task.perm {
		require.NotEqual(t, int32(i), s, "π has no fixed point")
	}
	for _, r := range task.Mapping(20, 1) {
		require.Equal(t, int32(tokBOS), r.InputIDs[0])
		require.Equal(t, int32(tokMap), r.InputIDs[1])
		sep := 2
		for r.InputIDs[sep] != tokSEP {
			sep++
		}
		n := sep - 2
		require.Len(t, r.InputIDs, 2*n+4)
		for j := 0; j < n; j++ {
			x := r.InputIDs[2+j] - firstSymbol
			require.Equal(t, firstSymbol+task.perm[x], r.InputIDs[sep+1+j])
			require.Equal(t, int32(-100), r.Labels[2+j], "prompt not learned")
		}
		require.Equal(t, int32(tokEOS), r.Labels[len(r.Labels)-1])
	}
}
