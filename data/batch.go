package data

// Pad lays records out as one B×T batch, row by row, where T is the longest
// record. Shorter records are padded on the right with token 0 and label
// -100; under causal attention, right padding cannot change the scores of
// the real tokens before it.
func Pad(recs []Record) (ids, labels []int32, B, T int) {
	B = len(recs)
	for _, r := range recs {
		T = max(T, len(r.InputIDs))
	}
	ids, labels = make([]int32, B*T), make([]int32, B*T)
	for b, r := range recs {
		row, lab := ids[b*T:(b+1)*T], labels[b*T:(b+1)*T]
		copy(row, r.InputIDs)
		copy(lab, r.Labels)
		for t := len(r.InputIDs); t < T; t++ {
			lab[t] = IgnoreIndex
		}
	}
	return ids, labels, B, T
}
