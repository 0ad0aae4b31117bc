package nn

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// logitsOf returns log p as float32 logits.
func logitsOf(p []float64) []float32 {
	z := make([]float32, len(p))
	for i, v := range p {
		z[i] = float32(math.Log(v))
	}
	return z
}

func kept(s *Sampler, logits []float32) []int32 {
	cand, _ := s.candidates(logits)
	out := slices.Clone(cand)
	slices.Sort(out)
	return out
}

func TestSamplerTopPHandMade(t *testing.T) {
	// Sorted: 1 (0.40), 3 (0.25), 2 (0.20), 0 (0.10), 4 (0.05).
	logits := logitsOf([]float64{0.10, 0.40, 0.20, 0.25, 0.05})
	for _, tc := range []struct {
		k    int
		p    float64
		want []int32
	}{
		{0, 0.3, []int32{1}},              // 0.40 ≥ 0.3
		{0, 0.5, []int32{1, 3}},           // 0.40 < 0.5 ≤ 0.65
		{0, 0.7, []int32{1, 2, 3}},        // 0.85
		{0, 0.9, []int32{0, 1, 2, 3}},     // 0.95
		{0, 0.99, []int32{0, 1, 2, 3, 4}}, // 1
		{0, 1e-9, []int32{1}},             // always at least one
		{0, 0, []int32{0, 1, 2, 3, 4}},    // off
		{0, 1, []int32{0, 1, 2, 3, 4}},    // off
		{2, 0, []int32{1, 3}},             // top-k alone
		{2, 0.9, []int32{1, 3}},
		// top-p after top-k works on the renormalized distribution:
		// 0.40/0.85 = 0.47 ≥ 0.45, where 0.40 alone would not be.
		{3, 0.45, []int32{1}},
		{0, 0.45, []int32{1, 3}},
		{3, 0.6, []int32{1, 3}}, // 0.47 < 0.6 ≤ 0.76
		{5, 0, []int32{0, 1, 2, 3, 4}},
		{9, 0, []int32{0, 1, 2, 3, 4}},
	} {
		s := NewSampler(1, tc.k, tc.p, 1)
		require.Equal(t, tc.want, kept(s, logits), "top-k %d, top-p %v", tc.k, tc.p)
	}

	// Temperature flattens before top-p: at T = 100 the five are nearly
	// uniform, so reaching 0.5 takes three.
	require.Equal(t, []int32{1, 2, 3}, kept(NewSampler(100, 0, 0.5, 1), logits))
	// Ties at the k-th value are kept, as HF's top-k does.
	require.Equal(t, []int32{0, 1, 2}, kept(NewSampler(1, 2, 0, 1), []float32{1, 2, 1, 0}))
}

func TestSamplerFrequencies(t *testing.T) {
	logits := logitsOf([]float64{0.10, 0.40, 0.20, 0.25, 0.05})
	s := NewSampler(1, 0, 0.7, 3)
	counts := make([]int, 5)
	const n = 40000
	for range n {
		counts[s.Sample(logits)]++
	}
	require.Zero(t, counts[0]+counts[4], "outside the nucleus")
	for i, p := range map[int]float64{1: 0.40 / 0.85, 3: 0.25 / 0.85, 2: 0.20 / 0.85} {
		require.InDelta(t, p, float64(counts[i])/n, 0.01, "token %d", i)
	}

	// No filter at all: the softmax itself.
	s = NewSampler(1, 0, 0, 4)
	clear(counts)
	for range n {
		counts[s.Sample(logits)]++
	}
	for i, p := range []float64{0.10, 0.40, 0.20, 0.25, 0.05} {
		require.InDelta(t, p, float64(counts[i])/n, 0.01, "token %d", i)
	}
}

// The nucleus search that avoids sorting the vocabulary must find what a
// full sort finds.
func TestSamplerTopPLargeVocabulary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const V = 5000
	logits := make([]float32, V)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	logits[17] = logits[18] // a tie
	for _, temp := range []float64{0.5, 1, 4} {
		for _, p := range []float64{0.01, 0.3, 0.9, 0.999, 0.999999} {
			// Reference: softmax in float64, full sort, smallest prefix ≥ p.
			w := make([]float64, V)
			m := math.Inf(-1)
			for _, z := range logits {
				m = max(m, float64(z)/temp)
			}
			var total float64
			for i, z := range logits {
				w[i] = math.Exp(float64(z)/temp - m)
				total += w[i]
			}
			idx := make([]int32, V)
			for i := range idx {
				idx[i] = int32(i)
			}
			slices.SortFunc(idx, func(a, b int32) int {
				if c := cmp.Compare(w[b], w[a]); c != 0 {
					return c
				}
				return cmp.Compare(a, b)
			})
			var cum float64
			n := 0
			for n < V {
				cum += w[idx[n]]
				n++
				if cum >= p*total {
					break
				}
			}
			want := slices.Clone(idx[:n])
			slices.Sort(want)
			require.Equal(t, want, kept(NewSampler(temp, 0, p, 1), logits), "temperature %v, top-p %v", temp, p)
		}
	}
}

func TestSamplerGreedyAndDeterminism(t *testing.T) {
	logits := []float32{0.5, 3, float32(math.NaN()), 3, -1}
	require.Equal(t, int32(1), NewSampler(0, 0, 0, 1).Sample(logits), "first of the largest, NaN ignored")
	require.Equal(t, int32(1), NewSampler(0, 3, 0.5, 9).Sample(logits), "temperature 0 ignores the filters")
	require.Equal(t, int32(1), argmax([]float32{float32(math.NaN()), 2, 1}))
	for _, temp := range []float64{0.1, 1, 50} {
		s := NewSampler(temp, 1, 0, 5)
		for range 100 {
			require.Equal(t, int32(3), s.Sample([]float32{0.5, 2.9, 1, 3, -1}), "top-k 1 is greedy")
		}
	}

	z := make([]float32, 50)
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	draw := func(seed uint64) []int32 {
		s := NewSampler(1, 10, 0.9, seed)
		out := make([]int32, 64)
		for i := range out {
			out[i] = s.Sample(z)
		}
		return out
	}
	require.Equal(t, draw(7), draw(7))
	require.NotEqual(t, draw(7), draw(8))

	require.Panics(t, func() { NewSampler(-1, 0, 0, 0).Sample(z) })
	require.Panics(t, func() { NewSampler(1, 0, 0, 0).Sample(nil) })
	// All −∞: nothing to draw from, greedy fallback.
	inf := float32(math.Inf(-1))
	require.Equal(t, int32(0), NewSampler(1, 0, 0.5, 1).Sample([]float32{inf, inf}))
}
