package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/tensor"
)

var cachedGoldenModels = []string{"llama_gqa", "qwen2_bias", "llama_tied"}

func loadGolden(t *testing.T, name string) *Model {
	t.Helper()
	m, err := Load(filepath.Join(goldenDir(name), "model"))
	require.NoError(t, err)
	return m
}

func randomIDs(seed uint64, n, vocab int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(rng.IntN(vocab))
	}
	return ids
}

// rowsRelErr is ‖got − want[rows]‖ / ‖want[rows]‖ where got holds, for
// each of B sequences, the rows t0…t0+n−1 of want (B·T rows of V).
func rowsRelErr(got, want []float32, B, T, t0, n, V int) float64 {
	var num, den float64
	for b := 0; b < B; b++ {
		for t := 0; t < n; t++ {
			g := got[(b*n+t)*V:][:V]
			w := want[(b*T+t0+t)*V:][:V]
			for i := range w {
				d := float64(g[i]) - float64(w[i])
				num += d * d
				den += float64(w[i]) * float64(w[i])
			}
		}
	}
	return math.Sqrt(num / den)
}

// checkCached runs ids (B·T) through m in the given chunks with a KV cache
// and compares every chunk's logits with the full Forward's.
func checkCached(t *testing.T, m *Model, ids []int32, B, T int, chunks []int) {
	t.Helper()
	V := m.Config.VocabSize
	full := m.Forward(nil, ids, B, T)
	defer full.Release()
	cache := m.NewKVCache(B, T)
	defer cache.Release()
	start := 0
	for _, n := range chunks {
		part := make([]int32, 0, B*n)
		for b := 0; b < B; b++ {
			part = append(part, ids[b*T+start:b*T+start+n]...)
		}
		require.Equal(t, start, cache.Len())
		logits := m.ForwardCached(part, B, n, cache)
		require.Equal(t, []int{B * n, V}, logits.Shape())
		err := rowsRelErr(logits.Data(), full.Data(), B, T, start, n, V)
		require.LessOrEqual(t, err, 1e-5, "positions %d…%d (chunks %v)", start, start+n-1, chunks)
		logits.Release()
		start += n
	}
	require.Equal(t, T, cache.Len())
}

func TestForwardCachedMatchesForward(t *testing.T) {
	for _, name := range cachedGoldenModels {
		t.Run(name, func(t *testing.T) {
			m := loadGolden(t, name)
			defer m.Release()
			const B, T = 2, 11
			ids := randomIDs(3, B*T, m.Config.VocabSize)
			for _, k := range []int{1, 4, T - 1, T} {
				chunks := []int{k}
				for i := k; i < T; i++ {
					chunks = append(chunks, 1)
				}
				t.Run(fmt.Sprintf("prefill %d", k), func(t *testing.T) { checkCached(t, m, ids, B, T, chunks) })
			}
			t.Run("chunks", func(t *testing.T) { checkCached(t, m, ids, B, T, []int{3, 4, 1, 3}) })
		})
	}
}

// sumLayer is a stand-in for a fine-tuning method: it adds a second
// linear's output to the base projection's.
type sumLayer struct{ base, extra Layer }

func (l sumLayer) Forward(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	a, b := l.base.Forward(tp, x), l.extra.Forward(tp, x)
	y := tp.Add(a, b)
	a.Release()
	b.Release()
	return y
}

func TestForwardCachedUsesLayers(t *testing.T) {
	m := loadGolden(t, "llama_gqa")
	defer m.Release()
	const B, T = 2, 6
	ids := randomIDs(4, B*T, m.Config.VocabSize)
	plain := m.Forward(nil, ids, B, T)
	defer plain.Release()

	rng := rand.New(rand.NewPCG(5, 5))
	var extras []*tensor.Tensor
	for _, blk := range m.Blocks {
		for _, p := range []*Layer{&blk.Q, &blk.V, &blk.Down} {
			base := (*p).(*Linear)
			w := tensor.New(tensor.Frozen, base.W.Shape()...)
			for i := range w.Data() {
				w.Data()[i] = float32(rng.NormFloat64() * 0.05)
			}
			extras = append(extras, w)
			*p = sumLayer{base, &Linear{W: w}}
		}
	}
	defer func() {
		for _, w := range extras {
			w.Release()
		}
	}()
	adapted := m.Forward(nil, ids, B, T)
	defer adapted.Release()
	require.Greater(t, rowsRelErr(adapted.Data(), plain.Data(), B, T, 0, T, m.Config.VocabSize), 1e-3, "the extra layers change the logits")
	checkCached(t, m, ids, B, T, []int{2, 1, 1, 1, 1})
	for _, blk := range m.Blocks { // restore, so Release frees the model's own tensors only
		for _, p := range []*Layer{&blk.Q, &blk.V, &blk.Down} {
			*p = (*p).(sumLayer).base
		}
	}
}

func TestKVCacheMemoryAndChecks(t *testing.T) {
	m := loadGolden(t, "llama_gqa")
	defer m.Release()
	cfg := m.Config
	before := tensor.MemStats().Live[tensor.Activation]
	cache := m.NewKVCache(2, 5)
	kv := int64(2*cfg.NumLayers) * 2 * 5 * int64(cfg.NumKVHeads*cfg.HeadDim) * 4
	require.Equal(t, before+kv, tensor.MemStats().Live[tensor.Activation], "cache accounted as activations")

	ids := randomIDs(6, 2*3, cfg.VocabSize)
	m.ForwardCached(ids, 2, 3, cache).Release()
	require.Panics(t, func() { m.ForwardCached(ids, 2, 3, cache) }, "overflows the cache")
	require.Panics(t, func() { m.ForwardCached(ids[:3], 1, 3, cache) }, "wrong batch")
	require.Panics(t, func() { m.ForwardCached([]int32{0, int32(cfg.VocabSize)}, 2, 1, cache) }, "id outside the vocabulary")
	require.Equal(t, 3, cache.Len())
	cache.Reset()
	require.Equal(t, 0, cache.Len())
	m.ForwardCached(ids, 2, 3, cache).Release()
	cache.Release()
	require.Equal(t, before, tensor.MemStats().Live[tensor.Activation], "everything released")
}

// greedyReference generates n tokens by running the full Forward on the
// whole sequence for every token and taking the argmax of the last row.
func greedyReference(m *Model, prompt []int32, n int) []int32 {
	seq := append([]int32(nil), prompt...)
	V := m.Config.VocabSize
	for range n {
		logits := m.Forward(nil, seq, 1, len(seq))
		seq = append(seq, argmax(logits.Data()[(len(seq)-1)*V:]))
		logits.Release()
	}
	return seq[len(prompt):]
}

func TestGenerateGreedyMatchesForward(t *testing.T) {
	for _, name := range cachedGoldenModels {
		t.Run(name, func(t *testing.T) {
			m := loadGolden(t, name)
			defer m.Release()
			prompt := randomIDs(8, 5, m.Config.VocabSize)
			before := tensor.MemStats().Live[tensor.Activation]
			got, err := m.Generate(prompt, 12, NewSampler(0, 0, 0, 1), []int32{}, nil)
			require.NoError(t, err)
			require.Equal(t, before, tensor.MemStats().Live[tensor.Activation], "Generate releases what it allocates")
			require.Equal(t, greedyReference(m, prompt, 12), got)

			nilSampler, err := m.Generate(prompt, 12, nil, []int32{}, nil)
			require.NoError(t, err)
			require.Equal(t, got, nilSampler, "a nil sampler is greedy")
			for _, temp := range []float64{0.3, 1, 7} {
				topk1, err := m.Generate(prompt, 12, NewSampler(temp, 1, 0.9, 42), []int32{}, nil)
				require.NoError(t, err)
				require.Equal(t, got, topk1, "top-k 1 at temperature %v is greedy", temp)
			}
		})
	}
}

func TestGenerateSeeded(t *testing.T) {
	m := loadGolden(t, "llama_gqa")
	defer m.Release()
	prompt := randomIDs(9, 4, m.Config.VocabSize)
	gen := func(seed uint64) []int32 {
		out, err := m.Generate(prompt, 20, NewSampler(1.5, 0, 0.95, seed), []int32{}, nil)
		require.NoError(t, err)
		require.Len(t, out, 20)
		return out
	}
	a := gen(11)
	require.Equal(t, a, gen(11), "same seed, same tokens")
	differ := false
	for seed := uint64(12); seed < 16; seed++ {
		differ = differ || fmt.Sprint(gen(seed)) != fmt.Sprint(a)
	}
	require.True(t, differ, "other seeds give other tokens")
}

func TestGenerateStops(t *testing.T) {
	m := loadGolden(t, "llama_tied")
	defer m.Release()
	prompt := randomIDs(10, 3, m.Config.VocabSize)
	all, err := m.Generate(prompt, 15, nil, []int32{}, nil)
	require.NoError(t, err)
	require.Len(t, all, 15)
	// The first token that did not occur before it, after the first.
	at := -1
	for i := 1; i < len(all) && at < 0; i++ {
		if !containsID(all[:i], all[i]) {
			at = i
		}
	}
	require.Positive(t, at, "greedy output %v has a fresh token", all)
	eos := all[at]

	out, err := m.Generate(prompt, 15, nil, []int32{eos}, nil)
	require.NoError(t, err)
	require.Equal(t, all[:at+1], out, "stops at a stop id, which is returned")

	m.Config.EOSTokenIDs = []int{int(eos) + 1000, int(eos)}
	out, err = m.Generate(prompt, 15, nil, nil, nil)
	require.NoError(t, err)
	require.Equal(t, all[:at+1], out, "nil stop means the config's EOS ids")

	var seen []int32
	out, err = m.Generate(prompt, 15, nil, []int32{}, func(id int32) bool {
		seen = append(seen, id)
		return len(seen) < 4
	})
	require.NoError(t, err)
	require.Equal(t, all[:4], out, "stops when onToken says so")
	require.Equal(t, out, seen)

	out, err = m.Generate(prompt, 0, nil, nil, nil)
	require.NoError(t, err)
	require.Empty(t, out)
	out, err = m.Generate(prompt, 1, nil, []int32{}, nil)
	require.NoError(t, err)
	require.Equal(t, all[:1], out)
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func TestGenerateErrors(t *testing.T) {
	m := loadGolden(t, "qwen2_bias")
	defer m.Release()
	maxPos := m.Config.MaxPositions
	prompt := randomIDs(11, 6, m.Config.VocabSize)
	_, err := m.Generate(prompt, maxPos-6+1, nil, nil, nil)
	require.ErrorContains(t, err, "max_position_embeddings")
	_, err = m.Generate(nil, 3, nil, nil, nil)
	require.ErrorContains(t, err, "empty prompt")
	_, err = m.Generate([]int32{int32(m.Config.VocabSize)}, 3, nil, nil, nil)
	require.ErrorContains(t, err, "vocabulary")
	_, err = m.Generate(prompt, 3, NewSampler(-1, 0, 0, 0), nil, nil)
	require.ErrorContains(t, err, "temperature")
	_, err = m.Generate(prompt, 3, NewSampler(1, 0, 1.5, 0), nil, nil)
	require.ErrorContains(t, err, "top-p")

	// Exactly max_position_embeddings positions is fine.
	out, err := m.Generate(prompt, maxPos-6, nil, []int32{}, nil)
	require.NoError(t, err)
	require.Len(t, out, maxPos-6)
}
