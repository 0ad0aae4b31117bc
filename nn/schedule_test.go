package nn

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The schedule tables in testdata/optim/golden.safetensors come from
// make_optim_golden.py's reimplementation of HF transformers' multipliers;
// the optimizer goldens (optim_test.go) also check the step convention
// against torch's LambdaLR.
func TestScheduleGolden(t *testing.T) {
	f := openOptimGolden(t)
	var tables []struct {
		Key, Name     string
		Warmup, Total int
	}
	require.NoError(t, json.Unmarshal([]byte(f.Metadata()["schedules"]), &tables))
	require.NotEmpty(t, tables)
	seen := map[string]bool{}
	for _, tb := range tables {
		s, err := ParseSchedule(tb.Name)
		require.NoError(t, err)
		seen[s.String()] = true
		want := goldenF64(t, f, tb.Key)
		for k, w := range want {
			for _, base := range []float64{1, 3e-4} {
				require.InDelta(t, base*w, s.LR(base, k, tb.Warmup, tb.Total), 1e-12*base, "%s step %d", tb.Key, k)
			}
		}
	}
	require.Len(t, seen, 3, "every schedule has goldens")
}

func TestScheduleConvention(t *testing.T) {
	// warmup 2, total 4: the first step (index 0) has lr 0, as in HF.
	got := []float64{}
	for k := range 6 {
		got = append(got, ScheduleLinear.LR(1, k, 2, 4))
	}
	assert.Equal(t, []float64{0, 0.5, 1, 0.5, 0, 0}, got)
	assert.Equal(t, 0.5, ScheduleConstant.LR(1, 1, 2, 4))
	assert.Equal(t, 1.0, ScheduleConstant.LR(1, 100, 2, 4))
	assert.InDelta(t, 0.5, ScheduleCosine.LR(1, 3, 2, 4), 1e-15)
	assert.InDelta(t, 0, ScheduleCosine.LR(1, 4, 2, 4), 1e-15)
	assert.Equal(t, 2e-4, ScheduleConstant.LR(2e-4, 0, 0, 10), "no warmup: full rate from the first step")
}

func TestParseSchedule(t *testing.T) {
	for name, want := range map[string]Schedule{
		"constant": ScheduleConstant, "constant_with_warmup": ScheduleConstant,
		"linear": ScheduleLinear, " Cosine ": ScheduleCosine,
	} {
		got, err := ParseSchedule(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, got, name)
	}
	for _, s := range []Schedule{ScheduleConstant, ScheduleLinear, ScheduleCosine} {
		got, err := ParseSchedule(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	_, err := ParseSchedule("cosine_with_restarts")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"cosine_with_restarts"`)
	assert.Contains(t, err.Error(), "constant, linear, cosine")
}
