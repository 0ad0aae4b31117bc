package tokenizer

// postProcessor adds the special tokens around an encoded sequence.
type postProcessor interface {
	// process returns ids with the special tokens added when addSpecial;
	// it may reuse ids' storage.
	process(ids []int32, addSpecial bool) []int32
}

// templatePost is HF's TemplateProcessing for a single sequence (also
// Roberta's and Bert's, which are fixed templates): the ids of the special
// tokens before and after the sequence. A template may repeat the sequence
// ($A $A); parts holds the special ids between the copies.
type templatePost struct {
	parts [][]int32 // parts[0] before the first copy, parts[len-1] after the last
}

func (t templatePost) process(ids []int32, addSpecial bool) []int32 {
	copies := len(t.parts) - 1
	if !addSpecial {
		if copies == 1 {
			return ids
		}
		out := make([]int32, 0, copies*len(ids))
		for range copies {
			out = append(out, ids...)
		}
		return out
	}
	n := copies * len(ids)
	for _, p := range t.parts {
		n += len(p)
	}
	out := make([]int32, 0, n)
	for i, p := range t.parts {
		out = append(out, p...)
		if i < copies {
			out = append(out, ids...)
		}
	}
	return out
}

// sequencePost runs post-processors one after the other.
type sequencePost []postProcessor

func (q sequencePost) process(ids []int32, addSpecial bool) []int32 {
	for _, p := range q {
		ids = p.process(ids, addSpecial)
	}
	return ids
}

// nopPost is the ByteLevel post-processor, which only trims offsets.
type nopPost struct{}

func (nopPost) process(ids []int32, _ bool) []int32 { return ids }
