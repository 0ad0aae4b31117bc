package nn

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampler chooses the next token from a row of logits, with HF's warpers
// applied in HF's order:
//
//   - Temperature 0: greedy, the first index of the largest logit (the
//     other settings do not matter);
//   - otherwise softmax(logits / Temperature), then
//   - TopK > 0: keep the TopK largest logits (and any tied with the last);
//   - 0 < TopP < 1: of those, renormalized, keep the smallest set of the
//     most probable tokens whose cumulative probability reaches TopP —
//     always at least one token. TopP of 0 or 1 turns nucleus filtering
//     off, as TopK 0 turns top-k off;
//   - draw from what is kept, in proportion to its probability, with a
//     seeded PCG: the same seed and logits give the same tokens.
//
// A Sampler reuses its buffers from call to call and is not safe for
// concurrent use.
type Sampler struct {
	Temperature float64
	TopK        int
	TopP        float64

	rng  *rand.Rand
	w    []float64 // per token: exp((z − max)/T), the unnormalized probability
	heap []float64 // the TopK largest scaled logits
	cand []int32   // the tokens still in play
}

// NewSampler returns a sampler with the given settings whose random
// stream is fixed by seed.
func NewSampler(temperature float64, topK int, topP float64, seed uint64) *Sampler {
	return &Sampler{Temperature: temperature, TopK: topK, TopP: topP, rng: rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))}
}

func (s *Sampler) check() error {
	switch {
	case !(s.Temperature >= 0) || math.IsInf(s.Temperature, 0):
		return fmt.Errorf("temperature %v must be a finite number ≥ 0", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("top-k %d must be ≥ 0", s.TopK)
	case !(s.TopP >= 0 && s.TopP <= 1):
		return fmt.Errorf("top-p %v must be in [0, 1]", s.TopP)
	}
	return nil
}

// Sample returns the next token for one row of logits (V values).
func (s *Sampler) Sample(logits []float32) int32 {
	if err := s.check(); err != nil {
		panic("nn: sampler: " + err.Error())
	}
	if len(logits) == 0 {
		panic("nn: sampler: no logits")
	}
	if s.Temperature == 0 {
		return argmax(logits)
	}
	cand, mass := s.candidates(logits)
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(0, 0x2545f4914f6cdd1d))
	}
	u := s.rng.Float64() * mass
	var acc float64
	pick := int32(-1)
	for _, i := range cand {
		if s.w[i] == 0 {
			continue
		}
		pick = i
		acc += s.w[i]
		if u < acc {
			break
		}
	}
	if pick < 0 { // nothing has weight (all logits −∞ or NaN): fall back to greedy
		return argmax(logits)
	}
	return pick
}

// argmax returns the first index of the largest value (NaNs never win).
func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] || x[best] != x[best] && v == v {
			best = i
		}
	}
	return int32(best)
}

// candidates applies temperature, top-k and top-p to logits. It returns
// the kept tokens and their total weight; s.w holds every token's weight.
// The kept tokens are in index order unless top-p sorted them by weight.
func (s *Sampler) candidates(logits []float32) ([]int32, float64) {
	V := len(logits)
	if cap(s.w) < V {
		s.w = make([]float64, V)
		s.cand = make([]int32, 0, V)
	}
	w := s.w[:V]
	inv := 1 / s.Temperature
	m := math.Inf(-1)
	for i, z := range logits {
		w[i] = float64(z) * inv // scaled logits first, weights below
		if w[i] > m {
			m = w[i]
		}
	}
	useK := s.TopK > 0 && s.TopK < V
	useP := s.TopP > 0 && s.TopP < 1
	cand := s.cand[:0]

	// Top-k on the scaled logits: HF keeps every token not below the k-th
	// largest value.
	if useK {
		kth := s.kthLargest(w, s.TopK)
		for i, z := range w {
			if z >= kth {
				cand = append(cand, int32(i))
			}
		}
	}
	var total float64
	for i, z := range w {
		w[i] = math.Exp(z - m)
		if math.IsNaN(w[i]) {
			w[i] = 0
		}
		if !useK {
			total += w[i]
		}
	}
	if useK {
		for _, i := range cand {
			total += w[i]
		}
	}
	if !useP {
		if !useK {
			cand = cand[:0]
			for i := range w {
				cand = append(cand, int32(i))
			}
		}
		s.cand = cand
		return cand, total
	}

	// Top-p: the nucleus lies within the tokens of probability ≥ t as soon
	// as those carry mass ≥ p, since every token left out comes after them
	// in sorted order. Starting with a high t spares sorting the whole
	// vocabulary; t falls until that holds (at t = 0 it is everything).
	need := s.TopP * total
	if !useK {
		for t := 1e-3; ; t /= 32 {
			if t < 1e-30 {
				t = 0
			}
			cand = cand[:0]
			var mass float64
			for i, x := range w {
				if x > 0 && x >= t*total {
					cand = append(cand, int32(i))
					mass += x
				}
			}
			if mass >= need || t == 0 {
				break
			}
		}
	}
	slices.SortFunc(cand, func(a, b int32) int {
		if c := cmp.Compare(w[b], w[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	var cum float64
	keep := len(cand)
	for j, i := range cand {
		cum += w[i]
		if cum >= need {
			keep = j + 1
			break
		}
	}
	cand = cand[:keep] // ≥ 1 token whenever any has weight
	var mass float64
	for _, i := range cand {
		mass += w[i]
	}
	s.cand = cand
	return cand, mass
}

// kthLargest returns the k-th largest value of x (1 ≤ k < len(x)) with a
// min-heap of the k largest seen so far: O(V log k), no sort of x.
func (s *Sampler) kthLargest(x []float64, k int) float64 {
	h := append(s.heap[:0], x[:k]...)
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for _, v := range x[k:] {
		if v > h[0] {
			h[0] = v
			siftDown(h, 0)
		}
	}
	s.heap = h
	return h[0]
}

// siftDown restores the min-heap property below i.
func siftDown(h []float64, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			c = r
		}
		if !(h[c] < h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
