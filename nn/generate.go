package nn

import (
	"fmt"
	"slices"

	"github.com/gopaca/paca/tensor"
)

// KVCache holds what a decoder needs to run new positions without redoing
// the earlier ones: for every layer, the keys (after RoPE) and values of B
// sequences, up to Cap positions each. The B sequences advance together:
// each ForwardCached call adds the same number of positions to all of them.
//
// The cache's memory, and the scratch its forward passes reuse from call to
// call, is accounted as Activation until Release.
type KVCache struct {
	b, capacity, n int
	kvCols         int
	k, v           []*tensor.Tensor // per layer, (B·Cap, KV·D)

	sc   decodeScratch // per-position buffers, kept while the row count repeats
	head headScratch   // last-position logits for Generate
}

// decodeScratch is the model's own per-position state in a cached pass:
// the residual stream x, the normed input h, rstd, the attention output and
// the SwiGLU product, for rows = B·T.
type decodeScratch struct {
	rows                    int
	x, h, rstd, attn, gated *tensor.Tensor
}

func (s *decodeScratch) release() {
	for _, t := range []*tensor.Tensor{s.x, s.h, s.rstd, s.attn, s.gated} {
		t.Release()
	}
	*s = decodeScratch{}
}

// headScratch holds the final norm and the logits of the last position of
// each sequence, (B, C) and (B, V).
type headScratch struct {
	last           []int32
	x, h, rstd, lg *tensor.Tensor
}

func (s *headScratch) release() {
	for _, t := range []*tensor.Tensor{s.x, s.h, s.rstd, s.lg} {
		t.Release()
	}
	*s = headScratch{}
}

// NewKVCache returns an empty cache for B sequences of up to maxLen
// positions each. It does not check maxLen against max_position_embeddings:
// Generate does.
func (m *Model) NewKVCache(B, maxLen int) *KVCache {
	if B <= 0 || maxLen <= 0 {
		panic(fmt.Sprintf("nn: KV cache for %d sequences of %d positions", B, maxLen))
	}
	cfg := m.Config
	c := &KVCache{b: B, capacity: maxLen, kvCols: cfg.NumKVHeads * cfg.HeadDim}
	for range m.Blocks {
		c.k = append(c.k, tensor.New(tensor.Activation, B*maxLen, c.kvCols))
		c.v = append(c.v, tensor.New(tensor.Activation, B*maxLen, c.kvCols))
	}
	return c
}

// Len is the number of positions of each sequence already in the cache.
func (c *KVCache) Len() int { return c.n }

// Cap is the most positions a sequence can hold.
func (c *KVCache) Cap() int { return c.capacity }

// Batch is the number of sequences, B.
func (c *KVCache) Batch() int { return c.b }

// Reset empties the cache for new sequences, keeping its memory.
func (c *KVCache) Reset() { c.n = 0 }

// Release frees the cache's memory. The cache cannot be used afterwards.
func (c *KVCache) Release() {
	if c == nil {
		return
	}
	for i := range c.k {
		c.k[i].Release()
		c.v[i].Release()
	}
	c.k, c.v = nil, nil
	c.sc.release()
	c.head.release()
	c.n, c.capacity = 0, 0
}

// ForwardCached runs T new positions of B sequences — ids laid out row by
// row, B·T of them, at positions cache.Len()…cache.Len()+T−1 — through the
// decoder, appends their keys and values to the cache and returns the
// logits (B·T, V), which the caller releases. It records no tape. The
// projections are the model's Layers, so fine-tuning methods apply. A
// prefill followed by one-token steps gives the logits Forward gives on
// the whole sequence.
func (m *Model) ForwardCached(ids []int32, B, T int, cache *KVCache) *tensor.Tensor {
	x := m.decode(ids, B, T, cache)
	sc := &cache.sc
	be := tensor.CurrentBackend()
	be.RMSNorm(sc.h, sc.rstd, x, m.Norm, float32(m.Config.RMSNormEps))
	logits := tensor.New(tensor.Activation, B*T, m.Config.VocabSize)
	be.Gemm(false, true, 1, sc.h, m.LMHead, 0, logits)
	return logits
}

// forwardLast is ForwardCached that computes the logits of the last new
// position of each sequence only, (B, V), into the cache's scratch: the
// tensor stays the cache's and is overwritten by the next call.
func (m *Model) forwardLast(ids []int32, B, T int, cache *KVCache) *tensor.Tensor {
	x := m.decode(ids, B, T, cache)
	cfg := m.Config
	hs := &cache.head
	if hs.lg == nil {
		hs.x = tensor.New(tensor.Activation, B, cfg.HiddenSize)
		hs.h = tensor.New(tensor.Activation, B, cfg.HiddenSize)
		hs.rstd = tensor.New(tensor.Activation, B)
		hs.lg = tensor.New(tensor.Activation, B, cfg.VocabSize)
		hs.last = make([]int32, B)
	}
	be := tensor.CurrentBackend()
	last := x
	if T > 1 {
		for b := range hs.last {
			hs.last[b] = int32(b*T + T - 1)
		}
		be.GatherRows(hs.x, x, hs.last)
		last = hs.x
	}
	be.RMSNorm(hs.h, hs.rstd, last, m.Norm, float32(cfg.RMSNormEps))
	be.Gemm(false, true, 1, hs.h, m.LMHead, 0, hs.lg)
	return hs.lg
}

// decode runs the decoder layers on the new positions and returns the
// residual stream after the last layer, (B·T, C), a cache-owned scratch.
func (m *Model) decode(ids []int32, B, T int, c *KVCache) *tensor.Tensor {
	cfg := m.Config
	if len(ids) != B*T || T <= 0 {
		panic(fmt.Sprintf("nn: %d ids for batch %d×%d", len(ids), B, T))
	}
	if c == nil || c.k == nil {
		panic("nn: ForwardCached needs a live KV cache")
	}
	if B != c.b || len(c.k) != len(m.Blocks) || c.kvCols != cfg.NumKVHeads*cfg.HeadDim {
		panic(fmt.Sprintf("nn: KV cache for %d sequences, %d layers, %d KV columns used with batch %d of a model with %d layers, %d KV columns",
			c.b, len(c.k), c.kvCols, B, len(m.Blocks), cfg.NumKVHeads*cfg.HeadDim))
	}
	if c.n+T > c.capacity {
		panic(fmt.Sprintf("nn: %d new positions after %d overflow a KV cache of %d", T, c.n, c.capacity))
	}
	for i, id := range ids {
		if id < 0 || int(id) >= cfg.VocabSize {
			panic(fmt.Sprintf("nn: id %d at %d outside vocabulary of %d", id, i, cfg.VocabSize))
		}
	}
	N, D := B*T, cfg.HeadDim
	sc := &c.sc
	if sc.rows != N {
		sc.release()
		sc.rows = N
		sc.x = tensor.New(tensor.Activation, N, cfg.HiddenSize)
		sc.h = tensor.New(tensor.Activation, N, cfg.HiddenSize)
		sc.rstd = tensor.New(tensor.Activation, N)
		sc.attn = tensor.New(tensor.Activation, N, cfg.NumHeads*D)
		sc.gated = tensor.New(tensor.Activation, N, cfg.IntermediateSize)
	}
	eps := float32(cfg.RMSNormEps)
	s := tensor.CacheShape{B: B, T: T, Start: c.n, Cap: c.capacity, H: cfg.NumHeads, KV: cfg.NumKVHeads, D: D}
	cos, sin := m.rope(c.capacity) // computed once per capacity, not per step
	be := tensor.CurrentBackend()

	be.GatherRows(sc.x, m.Embed, ids)
	for l, blk := range m.Blocks {
		// Attention: the new keys and values join the cache first, so the
		// new queries see them (causally) with the earlier ones.
		be.RMSNorm(sc.h, sc.rstd, sc.x, blk.AttnNorm, eps)
		q := blk.Q.Forward(nil, sc.h)
		k := blk.K.Forward(nil, sc.h)
		v := blk.V.Forward(nil, sc.h)
		tensor.RoPEAt(q, cos, sin, c.n, T, D)
		tensor.RoPEAt(k, cos, sin, c.n, T, D)
		tensor.CacheWrite(c.k[l], k, s)
		tensor.CacheWrite(c.v[l], v, s)
		if c.n == 0 {
			// The prompt, with nothing cached before it: plain causal
			// attention over the new rows, by the tiled training kernel.
			lse := tensor.New(tensor.Scratch, B, cfg.NumHeads, T)
			be.Attention(sc.attn, lse, q, k, v, tensor.AttnShape{B: B, T: T, H: cfg.NumHeads, KV: cfg.NumKVHeads, D: D})
			lse.Release()
		} else {
			tensor.AttentionCached(sc.attn, q, c.k[l], c.v[l], s)
		}
		k.Release()
		v.Release()
		q.Release()
		o := blk.O.Forward(nil, sc.attn)
		be.AddScaled(sc.x, 1, o)
		o.Release()

		// MLP.
		be.RMSNorm(sc.h, sc.rstd, sc.x, blk.MLPNorm, eps)
		g := blk.Gate.Forward(nil, sc.h)
		u := blk.Up.Forward(nil, sc.h)
		be.SwiGLU(sc.gated, g, u)
		g.Release()
		u.Release()
		d := blk.Down.Forward(nil, sc.gated)
		be.AddScaled(sc.x, 1, d)
		d.Release()
	}
	c.n += T
	return sc.x
}

// Generate continues prompt (one sequence) and returns the new ids, without
// the prompt. Each new token is chosen by s (greedy when s is nil) from the
// logits of the last position, computed with a KV cache: the prompt runs
// once, then one position per token.
//
// Generation stops after maxNew tokens, after a token in stop (nil means
// the config's eos_token_id; pass an empty slice to never stop early), or
// when onToken, called with every new token as it is chosen, returns
// false. The token that stops generation is part of the result, as in HF's
// generate. It is an error for the prompt to be empty, to hold ids outside
// the vocabulary, or for prompt and new tokens together to exceed
// max_position_embeddings.
func (m *Model) Generate(prompt []int32, maxNew int, s *Sampler, stop []int32, onToken func(int32) bool) ([]int32, error) {
	cfg := m.Config
	switch {
	case len(prompt) == 0:
		return nil, fmt.Errorf("generate: empty prompt")
	case maxNew < 0:
		return nil, fmt.Errorf("generate: %d new tokens requested", maxNew)
	case len(prompt)+maxNew > cfg.MaxPositions:
		return nil, fmt.Errorf("generate: a prompt of %d tokens and %d new ones exceed max_position_embeddings %d", len(prompt), maxNew, cfg.MaxPositions)
	}
	for i, id := range prompt {
		if id < 0 || int(id) >= cfg.VocabSize {
			return nil, fmt.Errorf("generate: prompt id %d at %d is outside the vocabulary of %d", id, i, cfg.VocabSize)
		}
	}
	if s == nil {
		s = NewSampler(0, 0, 0, 0)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if stop == nil {
		for _, id := range cfg.EOSTokenIDs {
			stop = append(stop, int32(id))
		}
	}
	out := make([]int32, 0, min(maxNew, 256))
	if maxNew == 0 {
		return out, nil
	}
	// The last new token is never fed back, so it needs no cache row.
	cache := m.NewKVCache(1, len(prompt)+maxNew-1)
	defer cache.Release()
	logits := m.forwardLast(prompt, 1, len(prompt), cache)
	step := []int32{0}
	for {
		tok := s.Sample(logits.Data())
		out = append(out, tok)
		if onToken != nil && !onToken(tok) || slices.Contains(stop, tok) || len(out) == maxNew {
			return out, nil
		}
		step[0] = tok
		logits = m.forwardLast(step, 1, 1, cache)
	}
}
