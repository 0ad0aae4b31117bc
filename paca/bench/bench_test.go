package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/paca"
)

func tinyOptions() Options {
	return Options{Shape: ShapeTiny, SeqLen: 32, BatchSize: 2, Rank: 4, Methods: paca.Methods,
		Steps: 2, Warmup: 1, Seed: 3}
}

// Every method runs on the tiny shape; the report carries every figure,
// the JSON has the documented fields, and the ratios are to LoRA.
func TestRunEveryMethod(t *testing.T) {
	o := tinyOptions()
	rep, err := Run(o, nil)
	require.NoError(t, err)
	require.Equal(t, paca.Methods, rep.Order)
	for _, name := range paca.Methods {
		m := rep.Methods[name]
		require.NotNil(t, m, name)
		require.Len(t, m.StepMSAll, o.Steps, name)
		require.Greater(t, m.StepMS, 0.0, name)
		if runtime.GOOS == "linux" {
			require.Greater(t, m.StepCPUMS, 0.0, name)
		}
		require.Greater(t, m.TokensPerS, 0.0, name)
		require.Greater(t, m.Trainable, 0, name)
		require.Greater(t, m.PeakBytes, int64(0), name)
		require.Greater(t, m.PeakByCategory["saved"], int64(0), name)
		require.Greater(t, m.PeakByCategory["optimizer"], int64(0), name)
		require.Greater(t, m.PeakRSSBytes, int64(0), name)
		require.GreaterOrEqual(t, m.PeakRSSBytes, m.TrainPeakRSSBytes, name)
		require.InDelta(t, 5.5, m.Loss, 0.5, "%s: random tokens over 256 ids: loss ≈ ln 256", name)
	}
	// PaCA saves x[..., I]; LoRA the whole input: less saved, fewer params.
	p, l := rep.Methods[paca.MethodPaCA], rep.Methods[paca.MethodLoRA]
	require.Less(t, p.PeakByCategory["saved"], l.PeakByCategory["saved"])
	require.Less(t, p.Trainable, l.Trainable)

	require.Contains(t, rep.Ratios, paca.MethodPaCA)
	q := rep.Ratios[paca.MethodPaCA]
	require.InDelta(t, p.StepMS/l.StepMS, q.StepTime, 1e-12)
	require.InDelta(t, float64(p.PeakBytes)/float64(l.PeakBytes), q.PeakBytes, 1e-12)
	require.InDelta(t, float64(p.PeakRSSBytes)/float64(l.PeakRSSBytes), q.PeakRSS, 1e-12)
	require.Equal(t, 1.0, rep.Ratios[paca.MethodLoRA].StepTime)

	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	var js struct {
		Methods map[string]map[string]any `json:"methods"`
		Ratios  map[string]map[string]any `json:"ratios_to_lora"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &js))
	for _, name := range paca.Methods {
		for _, f := range []string{"step_ms", "tokens_per_s", "peak_bytes", "peak_rss_bytes", "peak_by_category", "train_peak_rss_bytes"} {
			require.Contains(t, js.Methods[name], f, "%s.%s", name, f)
		}
		require.Contains(t, js.Ratios[name], "step_time")
	}

	var tab, md bytes.Buffer
	rep.WriteTable(&tab)
	rep.WriteMarkdown(&md)
	for _, name := range paca.Methods {
		require.Contains(t, tab.String(), name)
		require.Contains(t, md.String(), "| "+name+" |")
	}
	require.Contains(t, tab.String(), "ratios to LoRA")
	png := filepath.Join(t.TempDir(), "bench.png")
	require.NoError(t, rep.SavePNG(png))
	b, err := os.ReadFile(png)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("\x89PNG")))
}

// Without LoRA among the methods there is nothing to divide by.
func TestNoLoRANoRatios(t *testing.T) {
	o := tinyOptions()
	o.Methods, o.Steps, o.Warmup = []string{paca.MethodPaCA}, 1, 0
	rep, err := Run(o, nil)
	require.NoError(t, err)
	require.Nil(t, rep.Ratios)
	var tab bytes.Buffer
	rep.WriteTable(&tab)
	require.NotContains(t, tab.String(), "ratios to LoRA")
}

// The search finds the longest length within the budget: re-measured, it
// fits and one step more does not; a larger budget never finds less, and
// PaCA (which saves less) fits at least as long a sequence as LoRA.
func TestMaxSeqLen(t *testing.T) {
	o := tinyOptions()
	o.Methods = []string{paca.MethodPaCA, paca.MethodLoRA}
	o.Steps, o.MaxSeqLen, o.SeqStep, o.SeqLimit, o.BatchSize = 0, true, 8, 384, 1

	// A budget between the base and the peak at the limit.
	o.MemoryBudget = 1 << 40
	rep, err := Run(o, nil)
	require.NoError(t, err)
	for _, name := range o.Methods {
		m := rep.Methods[name]
		require.Equal(t, 384, m.MaxSeqLen, "%s: everything fits a huge budget", name)
		require.True(t, m.MaxSeqAtLimit)
	}
	lora := rep.Methods[paca.MethodLoRA].Probes
	o.MemoryBudget = lora[len(lora)-1].PeakBytes * 2 / 3

	prev := map[string]int{}
	for _, budget := range []int64{o.MemoryBudget, o.MemoryBudget * 5 / 4, o.MemoryBudget * 3 / 2} {
		o.MemoryBudget = budget
		rep, err := Run(o, nil)
		require.NoError(t, err)
		for _, name := range o.Methods {
			m := rep.Methods[name]
			require.Greater(t, m.MaxSeqLen, 0, name)
			require.Zero(t, m.MaxSeqLen%o.SeqStep)
			require.GreaterOrEqual(t, m.MaxSeqLen, prev[name], "%s: a larger budget found less", name)
			prev[name] = m.MaxSeqLen
			var fitAt, overAbove bool
			for _, p := range m.Probes {
				require.Equal(t, p.PeakBytes <= budget, p.Fits)
				if p.SeqLen == m.MaxSeqLen {
					fitAt = p.Fits
				}
				if p.SeqLen == m.MaxSeqLen+o.SeqStep {
					overAbove = !p.Fits
				}
				// Monotone: longer never fits where shorter did not.
				for _, q := range m.Probes {
					if q.SeqLen > p.SeqLen && !p.Fits {
						require.False(t, q.Fits, "%s: %d fits but %d does not", name, q.SeqLen, p.SeqLen)
					}
				}
			}
			require.True(t, fitAt, "%s: the answer %d was probed and fits", name, m.MaxSeqLen)
			if m.MaxSeqLen < 384 {
				require.True(t, overAbove, "%s: one step more than %d was probed and does not fit", name, m.MaxSeqLen)
			}
			require.LessOrEqual(t, len(m.Probes), 12, "%s: the search should need few probes", name)
		}
		require.GreaterOrEqual(t, rep.Methods[paca.MethodPaCA].MaxSeqLen, rep.Methods[paca.MethodLoRA].MaxSeqLen)
		require.Greater(t, rep.Ratios[paca.MethodPaCA].MaxSeqLen, 0.0)
	}
}

// The search on synthetic peaks: exact answers for linear, quadratic and
// step-shaped memory curves, and the edge cases.
func TestSearchMaxSeqLen(t *testing.T) {
	curves := map[string]func(T int) int64{
		"linear":    func(T int) int64 { return 1000 + 7*int64(T) },
		"quadratic": func(T int) int64 { return 1000 + int64(T) + int64(T)*int64(T)/50 },
		"steps":     func(T int) int64 { return 1000 + 5000*int64(T/300) },
		"flat":      func(T int) int64 { return 1000 },
	}
	for name, f := range curves {
		for _, budget := range []int64{1000, 5000, 20000, 100000} {
			want := 0
			for T := 8; T <= 4096; T += 8 {
				if f(T) <= budget {
					want = T
				}
			}
			for _, first := range []int{0, 8, 500, 4096} {
				got, probes, err := SearchMaxSeqLen(8, 4096, first, budget, 1000, func(T int) (int64, error) { return f(T), nil }, nil)
				require.NoError(t, err)
				require.Equal(t, want, got, "%s, budget %d, first %d", name, budget, first)
				require.LessOrEqual(t, len(probes), 30, "%s, budget %d", name, budget)
				if name == "linear" && first > 0 {
					require.LessOrEqual(t, len(probes), 3, "linear memory: the first guess is right, budget %d, first %d", budget, first)
				}
			}
		}
	}
	_, _, err := SearchMaxSeqLen(64, 32, 0, 1, 0, nil, nil)
	require.Error(t, err)
	got, probes, err := SearchMaxSeqLen(64, 1000, 0, 10, 0, func(T int) (int64, error) { return 100, nil }, nil)
	require.NoError(t, err)
	require.Zero(t, got, "not even the shortest fits")
	require.Len(t, probes, 1)
}

func TestOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Options)
		msg  string
	}{
		{func(o *Options) { o.Shape = "gpt-5" }, "unknown shape"},
		{func(o *Options) { o.Methods = []string{"ia3"} }, "unknown method"},
		{func(o *Options) { o.Methods = []string{"paca", "paca"} }, "twice"},
		{func(o *Options) { o.Steps = 0 }, "nothing to do"},
		{func(o *Options) { o.MaxSeqLen = true }, "memory-budget"},
		{func(o *Options) { o.Rank = 0 }, "rank"},
		{func(o *Options) { o.SeqLen = 4096 }, "max_position_embeddings"},
	} {
		o := tinyOptions()
		tc.edit(&o)
		_, err := Run(o, nil)
		require.Error(t, err)
		require.Contains(t, err.Error(), tc.msg)
	}
	for _, s := range Shapes {
		cfg, note, err := ShapeConfig(s)
		require.NoError(t, err)
		require.NotEmpty(t, note)
		js, err := cfg.JSON()
		require.NoError(t, err)
		_, err = nn.ParseConfig(js)
		require.NoError(t, err, s)
	}
	cfg, _, _ := ShapeConfig(ShapeSmolLM2)
	require.InDelta(t, 134.5e6, float64(paramCount(cfg)), 0.5e6, "SmolLM2-135M has 134.5M parameters")
	require.True(t, strings.Contains(tinyOptions().Shape, "tiny"))
}

// --interleave times more steps with the methods taking turns, and the
// report and its ratios carry them.
func TestRunInterleaved(t *testing.T) {
	o := tinyOptions()
	o.Methods = []string{paca.MethodPaCA, paca.MethodLoRA}
	o.Interleave = 3
	rep, err := Run(o, nil)
	require.NoError(t, err)
	require.Equal(t, 3, rep.Interleave)
	for _, name := range o.Methods {
		require.Greater(t, rep.Methods[name].InterleavedStepMS, 0.0, name)
	}
	p, l := rep.Methods[paca.MethodPaCA], rep.Methods[paca.MethodLoRA]
	require.InDelta(t, p.InterleavedStepMS/l.InterleavedStepMS, rep.Ratios[paca.MethodPaCA].Interleaved, 1e-12)
	var b strings.Builder
	rep.WriteTable(&b)
	require.Contains(t, b.String(), "methods taking turns step by step in one process, median of 3 steps each")

	o.Interleave = -1
	_, err = Run(o, nil)
	require.EqualError(t, err, "interleaved steps must not be negative, got -1")
}
