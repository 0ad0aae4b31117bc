package tensor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The cached-inference kernels are checked against the training kernels,
// which the gradient checks verify: running a sequence in chunks against a
// cache must give what one pass over the whole sequence gives.

// decodeRows copies rows [t0, t0+n) of each of B sequences of T rows.
func decodeRows(x *Tensor, B, T, t0, n int) *Tensor {
	c := x.Cols()
	out := New(Activation, B*n, c)
	for b := 0; b < B; b++ {
		copy(out.Data()[b*n*c:(b+1)*n*c], x.Data()[(b*T+t0)*c:(b*T+t0+n)*c])
	}
	return out
}

func requireClose(t *testing.T, got, want []float32, tol float64, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		require.InDelta(t, want[i], got[i], tol, "%s: element %d", msg, i)
	}
}

func TestRoPEAtMatchesRoPE(t *testing.T) {
	rng := gcRNG(1)
	const B, L, heads, D = 2, 9, 3, 8
	cos, sin := gcTensor(rng, Frozen, 0, 1, L, D/2), gcTensor(rng, Frozen, 0, 1, L, D/2)
	x := gcTensor(rng, Activation, 0, 1, B*L, heads*D)
	want := New(Activation, x.Shape()...)
	backend.RoPE(want, x, cos, sin, L, D, false)
	for _, chunk := range [][2]int{{0, L}, {0, 4}, {4, 1}, {5, 4}, {8, 1}} {
		part := decodeRows(x, B, L, chunk[0], chunk[1])
		RoPEAt(part, cos, sin, chunk[0], chunk[1], D)
		ref := decodeRows(want, B, L, chunk[0], chunk[1])
		requireClose(t, part.Data(), ref.Data(), 0, "RoPEAt")
		gcRelease(part, ref)
	}
	require.Panics(t, func() { RoPEAt(x, cos, sin, 1, L, D) }, "tables too short")
	gcRelease(cos, sin, x, want)
}

func TestAttentionCachedMatchesAttention(t *testing.T) {
	for _, tc := range []struct {
		name      string
		H, KV     int
		chunks    []int
		L, D, Cap int
	}{
		{"one pass", 4, 2, []int{7}, 7, 8, 10},
		{"prefill then steps", 4, 2, []int{3, 1, 1, 1, 1}, 7, 8, 10},
		{"chunks MHA", 3, 3, []int{2, 4, 1}, 7, 8, 10},
		{"steps MQA", 4, 1, []int{1, 1, 1, 1, 1, 1, 1}, 7, 8, 10},
		// Long enough rows and heads for whole GEMM panels, and an odd D.
		{"long GQA", 6, 2, []int{33, 1, 1, 5}, 40, 64, 48},
		{"odd head size", 2, 1, []int{19, 1, 2}, 22, 20, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := gcRNG(2)
			const B = 2
			L, D, Cap := tc.L, tc.D, tc.Cap
			s := AttnShape{B: B, T: L, H: tc.H, KV: tc.KV, D: D}
			q := gcTensor(rng, Activation, 0, 1, B*L, tc.H*D)
			k := gcTensor(rng, Activation, 0, 1, B*L, tc.KV*D)
			v := gcTensor(rng, Activation, 0, 1, B*L, tc.KV*D)
			want, lse := New(Activation, q.Shape()...), New(Activation, B, tc.H, L)
			backend.Attention(want, lse, q, k, v, s)

			kc, vc := New(Activation, B*Cap, tc.KV*D), New(Activation, B*Cap, tc.KV*D)
			// Garbage beyond the valid rows must not be read.
			for i := range kc.Data() {
				kc.Data()[i], vc.Data()[i] = 1e6, 1e6
			}
			start := 0
			for _, n := range tc.chunks {
				cs := CacheShape{B: B, T: n, Start: start, Cap: Cap, H: tc.H, KV: tc.KV, D: D}
				kp, vp, qp := decodeRows(k, B, L, start, n), decodeRows(v, B, L, start, n), decodeRows(q, B, L, start, n)
				CacheWrite(kc, kp, cs)
				CacheWrite(vc, vp, cs)
				out := New(Activation, qp.Shape()...)
				AttentionCached(out, qp, kc, vc, cs)
				ref := decodeRows(want, B, L, start, n)
				requireClose(t, out.Data(), ref.Data(), 1e-6, "AttentionCached")
				gcRelease(kp, vp, qp, out, ref)
				start += n
			}
			require.Equal(t, L, start)
			gcRelease(q, k, v, want, lse, kc, vc)
		})
	}
}

func TestCacheShapeChecks(t *testing.T) {
	q, out := New(Activation, 2, 8), New(Activation, 2, 8)
	kc, vc := New(Activation, 2*4, 8), New(Activation, 2*4, 8)
	x := New(Activation, 2, 8)
	ok := CacheShape{B: 2, T: 1, Start: 3, Cap: 4, H: 1, KV: 1, D: 8}
	require.NotPanics(t, func() { CacheWrite(kc, x, ok); AttentionCached(out, q, kc, vc, ok) })
	over := ok
	over.Start = 4
	require.Panics(t, func() { CacheWrite(kc, x, over) }, "past the cache's capacity")
	require.Panics(t, func() { AttentionCached(out, q, kc, vc, over) })
	bad := ok
	bad.Cap = 5
	require.Panics(t, func() { CacheWrite(kc, x, bad) }, "cache of the wrong size")
	gcRelease(q, out, kc, vc, x)
}
