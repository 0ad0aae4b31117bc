// Package demo is the self-contained demonstration behind "paca demo": a
// small LLaMA is pre-trained on synthetic sequence tasks generated in
// code, then copies of it are fine-tuned with PaCA, LoRA and full
// fine-tuning on a task it has never seen, and compared.
package demo

import (
	"math/rand/v2"
	"slices"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
)

// The vocabulary: four control tokens, three task markers, then the
// symbols the tasks work on.
const (
	tokBOS = iota
	tokSEP
	tokEOS
	tokPad
	tokCopy    // pre-training: repeat the symbols
	tokReverse // pre-training: repeat them backwards
	tokMap     // fine-tuning: replace each symbol by its image under a fixed permutation
	firstSymbol
)

// Task generates the synthetic data. A record is
//
//	BOS task x₁ … xₙ SEP y₁ … yₙ EOS
//
// where y is x (copy), x reversed (reverse) or π(x₁) … π(xₙ) (map), π a
// fixed permutation without fixed points. The model sees copy and reverse
// in pre-training, and map only in fine-tuning: it can already align
// positions, but must learn π.
type Task struct {
	Symbols int     // number of symbols
	MinLen  int     // shortest x
	MaxLen  int     // longest x
	perm    []int32 // π over symbol indices
}

// NewTask draws π from seed.
func NewTask(symbols, minLen, maxLen int, seed uint64) *Task {
	rng := rand.New(rand.NewPCG(seed, 0xda7a))
	perm := make([]int32, symbols)
	for { // a derangement: π(s) ≠ s, so copying scores nothing
		for i, j := range rng.Perm(symbols) {
			perm[i] = int32(j)
		}
		fixed := false
		for i, j := range perm {
			fixed = fixed || int(j) == i
		}
		if !fixed {
			break
		}
	}
	return &Task{Symbols: symbols, MinLen: minLen, MaxLen: maxLen, perm: perm}
}

// Vocab is the vocabulary size the task needs.
func (t *Task) Vocab() int { return firstSymbol + t.Symbols }

// MaxSeq is the longest record.
func (t *Task) MaxSeq() int { return 2*t.MaxLen + 4 }

// example returns one record's prompt (up to and including SEP) and
// answer (the y tokens, then EOS) for a task marker.
func (t *Task) example(rng *rand.Rand, marker int32) (prompt, answer []int32) {
	n := t.MinLen + rng.IntN(t.MaxLen-t.MinLen+1)
	x := make([]int32, n)
	for i := range x {
		x[i] = int32(rng.IntN(t.Symbols))
	}
	prompt = []int32{tokBOS, marker}
	for _, s := range x {
		prompt = append(prompt, firstSymbol+s)
	}
	prompt = append(prompt, tokSEP)
	for i := range x {
		var y int32
		switch marker {
		case tokCopy:
			y = x[i]
		case tokReverse:
			y = x[n-1-i]
		case tokMap:
			y = t.perm[x[i]]
		}
		answer = append(answer, firstSymbol+y)
	}
	return prompt, append(answer, tokEOS)
}

// record joins prompt and answer; the prompt's labels are -100, so that
// only the answer is learned (the symbols of x are random: there is
// nothing to learn in them).
func record(prompt, answer []int32) data.Record {
	ids := append(append([]int32(nil), prompt...), answer...)
	labels := append([]int32(nil), ids...)
	for i := range prompt {
		labels[i] = nn.IgnoreIndex
	}
	return data.Record{InputIDs: ids, Labels: labels}
}

// Pretraining returns n copy and reverse records, answers learned.
func (t *Task) Pretraining(n int, seed uint64) []data.Record {
	return t.records(n, seed, tokCopy, tokReverse)
}

// Mapping returns n records of the fine-tuning task, answers learned.
func (t *Task) Mapping(n int, seed uint64) []data.Record {
	return t.records(n, seed, tokMap)
}

// records draws n records, each of a task picked uniformly from markers.
func (t *Task) records(n int, seed uint64, markers ...int32) []data.Record {
	rng := rand.New(rand.NewPCG(seed, uint64(markers[0])))
	recs := make([]data.Record, n)
	for i := range recs {
		p, a := t.example(rng, markers[rng.IntN(len(markers))])
		recs[i] = record(p, a)
	}
	return recs
}

// Accuracy is the fraction of records whose answer the model generates
// exactly, greedily, from the prompt.
func Accuracy(m *nn.Model, recs []data.Record) (float64, error) {
	right := 0
	for _, r := range recs {
		split := 0
		for split < len(r.Labels) && r.Labels[split] == nn.IgnoreIndex {
			split++
		}
		prompt, answer := r.InputIDs[:split], r.InputIDs[split:]
		got, err := m.Generate(prompt, len(answer), nil, []int32{tokEOS}, nil)
		if err != nil {
			return 0, err
		}
		if slices.Equal(got, answer) {
			right++
		}
	}
	return float64(right) / float64(len(recs)), nil
}
