package tokenizer

import "unicode/utf8"

// bpe is HF's BPE model: the vocabulary, the merges by rank, and the
// unknown-character rules (byte fallback, unk, fuse_unk).
type bpe struct {
	vocab   map[string]int32
	idToTok map[int32]string
	// merges maps a pair of ids (a<<32 | b) to its rank and result.
	merges       map[uint64]merge
	unk          int32 // -1: none
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	// byteTok holds the ids of the byte-fallback tokens <0x00>…<0xFF>
	// (-1 where absent).
	byteTok [256]int32
	cache   cache
}

type merge struct{ rank, id int32 }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func (m *bpe) idToToken(id int32) (string, bool) {
	s, ok := m.idToTok[id]
	return s, ok
}

// tokenize appends the ids of one pre-token to ids.
func (m *bpe) tokenize(w string, ids []int32) []int32 {
	if w == "" {
		return ids
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[w]; ok {
			return append(ids, id)
		}
	}
	if cached, ok := m.cache.get(w); ok {
		return append(ids, cached...)
	}
	word := m.mergeWord(w)
	m.cache.put(w, word)
	return append(ids, word...)
}

// symbol is one token of a word being merged, in a doubly linked list over
// the symbols slice; merged-away symbols have n == 0.
type symbol struct {
	id         int32
	prev, next int32
	n          int32 // bytes of the word it covers
}

// mergeWord splits w into characters (or their byte-fallback tokens, or
// unk) and applies the merges, lowest rank first and leftmost first among
// equal ranks, as HF's BPE does.
func (m *bpe) mergeWord(w string) []int32 {
	syms := make([]symbol, 0, len(w))
	add := func(id int32, n int) {
		p := int32(len(syms)) - 1
		if p >= 0 {
			syms[p].next = int32(len(syms))
		}
		syms = append(syms, symbol{id: id, prev: p, next: -1, n: int32(n)})
	}
	pendingUnk, unkLen := false, 0
	for i := 0; i < len(w); {
		_, size := utf8.DecodeRuneInString(w[i:])
		c := w[i : i+size]
		i += size
		if id, ok := m.vocab[c]; ok {
			if pendingUnk {
				add(m.unk, unkLen)
				pendingUnk = false
			}
			add(id, size)
			continue
		}
		if m.byteFallback {
			all := true
			for j := 0; j < len(c); j++ {
				if m.byteTok[c[j]] < 0 {
					all = false
					break
				}
			}
			if all {
				// HF adds the byte tokens without flushing a pending unk
				// first; so do we.
				for j := 0; j < len(c); j++ {
					add(m.byteTok[c[j]], 1)
				}
				continue
			}
		}
		if m.unk < 0 {
			continue // dropped, as HF does without an unk token
		}
		switch {
		case pendingUnk && m.fuseUnk:
			unkLen += size
		case pendingUnk:
			add(m.unk, unkLen)
			unkLen = size
		default:
			pendingUnk, unkLen = true, size
		}
	}
	if pendingUnk {
		add(m.unk, unkLen)
	}

	if len(syms) > 1 && len(m.merges) > 0 {
		m.mergeAll(syms)
	}
	out := make([]int32, 0, len(syms))
	for _, s := range syms {
		if s.n != 0 {
			out = append(out, s.id)
		}
	}
	return out
}

// candidate is a possible merge of the symbol at pos with its successor.
type candidate struct {
	rank, pos, id int32
}

func (a candidate) less(b candidate) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.pos < b.pos
}

// mergeAll runs the merges with a binary heap of candidates: O(n log n) in
// the word's length, independent of the vocabulary size.
func (m *bpe) mergeAll(syms []symbol) {
	var h []candidate
	push := func(c candidate) {
		h = append(h, c)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !h[i].less(h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
	}
	pop := func() candidate {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for i := 0; ; {
			l, r, s := 2*i+1, 2*i+2, i
			if l < len(h) && h[l].less(h[s]) {
				s = l
			}
			if r < len(h) && h[r].less(h[s]) {
				s = r
			}
			if s == i {
				break
			}
			h[i], h[s] = h[s], h[i]
			i = s
		}
		return top
	}
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			push(candidate{mg.rank, int32(i), mg.id})
		}
	}
	for len(h) > 0 {
		top := pop()
		cur := &syms[top.pos]
		if cur.n == 0 || cur.next < 0 {
			continue
		}
		next := cur.next
		right := syms[next]
		// The candidate is stale if the pair at pos has changed since.
		if mg, ok := m.merges[pairKey(cur.id, right.id)]; !ok || mg.id != top.id {
			continue
		}
		cur.id = top.id
		cur.n += right.n
		cur.next = right.next
		syms[next].n = 0
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mg, ok := m.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				push(candidate{mg.rank, cur.prev, mg.id})
			}
		}
		if cur.next >= 0 {
			if mg, ok := m.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				push(candidate{mg.rank, top.pos, mg.id})
			}
		}
	}
}
