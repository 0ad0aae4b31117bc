package data

// Pad lays records out as one B×T batch, row by row, where T is the longest
// record. Shorter records are padded on the right with token 0 and label
// -100; under causal attention, right padding cannot change the scores of
// the real tokens before it.
func Pad(recs []Record) (ids, labels []int32, B, T int) {
	return PadInto(nil, nil, recs)
}

// PadInto is Pad writing into ids and labels, which it grows only when
// they are too short: a training loop reuses its buffers from step to step.
func PadInto(ids, labels []int32, recs []Record) ([]int32, []int32, int, int) {
	B, T := len(recs), 0
	for _, r := range recs {
		T = max(T, len(r.InputIDs))
	}
	ids, labels = grow(ids, B*T), grow(labels, B*T)
	for b, r := range recs {
		row, lab := ids[b*T:(b+1)*T], labels[b*T:(b+1)*T]
		clear(row[copy(row, r.InputIDs):])
		clear(lab[copy(lab, r.Labels):])
		for t := len(r.InputIDs); t < T; t++ {
			lab[t] = IgnoreIndex
		}
	}
	return ids, labels, B, T
}

// grow returns s resized to n values, reusing its array when it is big
// enough.
func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}
