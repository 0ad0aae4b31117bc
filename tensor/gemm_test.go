package tensor

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// refGemm is C = alpha·op(A)·op(B) + beta·C in float64 with plain loops,
// returning the result and, per element, Σ|alpha·a·b| + |beta·c| (the
// scale that float32 rounding error is relative to). beta = 0 ignores C.
func refGemm(p *gemmArgs) (want, mag []float64) {
	want = make([]float64, p.m*p.n)
	mag = make([]float64, p.m*p.n)
	at := func(i, q int) float64 {
		if p.transA {
			return float64(p.a[q*p.lda+i])
		}
		return float64(p.a[i*p.lda+q])
	}
	bt := func(q, j int) float64 {
		if p.transB {
			return float64(p.b[j*p.ldb+q])
		}
		return float64(p.b[q*p.ldb+j])
	}
	alpha, beta := float64(p.alpha), float64(p.beta)
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.n; j++ {
			s, g := 0.0, 0.0
			if alpha != 0 {
				for q := 0; q < p.k; q++ {
					s += at(i, q) * bt(q, j)
					g += math.Abs(at(i, q) * bt(q, j))
				}
			}
			s, g = alpha*s, math.Abs(alpha)*g
			if beta != 0 {
				cv := float64(p.c[i*p.ldc+j])
				s += beta * cv
				g += math.Abs(beta * cv)
			}
			want[i*p.n+j], mag[i*p.n+j] = s, g
		}
	}
	return want, mag
}

// gemmCase builds a GEMM with random operands. pad adds that many unused
// columns to every stored row, so that strides differ from widths.
func gemmCase(rng *rand.Rand, transA, transB bool, m, n, k, pad int, alpha, beta float32) gemmArgs {
	p := gemmArgs{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	p.lda, p.ldb, p.ldc = ac+pad, bc+pad, n+pad
	fill := func(rows, ld int) []float32 {
		x := make([]float32, rows*ld)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	p.a, p.b, p.c = fill(ar, p.lda), fill(br, p.ldb), fill(m, p.ldc)
	if beta == 0 {
		for i := range p.c {
			p.c[i] = float32(math.NaN()) // must never be read
		}
	}
	if alpha == 0 {
		for i := range p.a {
			p.a[i] = float32(math.NaN()) // must never be read either
		}
	}
	return p
}

// checkGemm runs p with impl on threads goroutines and compares with the
// float64 reference. It also checks that C's padding is untouched.
func checkGemm(t *testing.T, impl *gemmImpl, threads int, p gemmArgs) {
	t.Helper()
	want, mag := refGemm(&p)
	c0 := append([]float32(nil), p.c...)
	impl.gemm(threads, p)
	const eps = 1.0 / (1 << 23)
	bad := 0
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.ldc; j++ {
			got := p.c[i*p.ldc+j]
			if j >= p.n {
				if math.Float32bits(got) != math.Float32bits(c0[i*p.ldc+j]) {
					t.Fatalf("%s: C padding (%d,%d) changed: %v → %v", impl.name, i, j, c0[i*p.ldc+j], got)
				}
				continue
			}
			w, g := want[i*p.n+j], mag[i*p.n+j]
			tol := 2*float64(p.k+4)*eps*g + 1e-30
			if d := math.Abs(float64(got) - w); !(d <= tol) {
				if bad++; bad <= 5 {
					t.Errorf("%s threads=%d tA=%v tB=%v m=%d n=%d k=%d α=%v β=%v: C[%d,%d] = %v, want %v (tol %.3g)",
						impl.name, threads, p.transA, p.transB, p.m, p.n, p.k, p.alpha, p.beta, i, j, got, w, tol)
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d wrong elements", bad)
	}
}

// gemmImpls are the kernels this machine can run.
func gemmImpls() []*gemmImpl {
	if gemmAVX2 != nil {
		return []*gemmImpl{gemmPortable, gemmAVX2}
	}
	return []*gemmImpl{gemmPortable}
}

// withBlocking runs fn with the cache-blocking parameters set to mc, kc,
// nc and the goroutine threshold to minWork, restoring them afterwards.
func withBlocking(mc, kc, nc, minWork int, fn func()) {
	omc, okc, onc, ow := gemmMC, gemmKC, gemmNC, gemmMinWork
	gemmMC, gemmKC, gemmNC, gemmMinWork = mc, kc, nc, minWork
	defer func() { gemmMC, gemmKC, gemmNC, gemmMinWork = omc, okc, onc, ow }()
	fn()
}

var gemmDims = []int{1, 2, 5, 6, 7, 13, 16, 17, 31, 33, 48, 70}

func TestGemmShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.25}, {0, 0}, {0, 2}, {1.5, -1}}
	for _, impl := range gemmImpls() {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, m := range gemmDims {
					for _, n := range gemmDims {
						k := gemmDims[rng.IntN(len(gemmDims))]
						s := scalars[rng.IntN(len(scalars))]
						pad := rng.IntN(2) * 3
						p := gemmCase(rng, tA, tB, m, n, k, pad, s[0], s[1])
						checkGemm(t, impl, 1, p)
					}
				}
			}
		}
	}
}

// TestGemmBlocking shrinks MC, KC and NC so that small problems cross
// every block boundary, and forces goroutines on them.
func TestGemmBlocking(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{{37, 41, 29}, {12, 96, 40}, {65, 17, 100}, {1, 50, 33}, {50, 1, 33}, {7, 33, 1}, {96, 96, 96}}
	for i, bl := range [][3]int{{12, 8, 32}, {6, 5, 16}, {18, 13, 48}, {12, 8, 32}} {
		if i == 3 {
			// Again with packing forced everywhere: the small shapes
			// otherwise mostly read A or B in place.
			ob, oa := gemmBDirectRows, gemmADirectCols
			gemmBDirectRows, gemmADirectCols = 0, 0
			defer func() { gemmBDirectRows, gemmADirectCols = ob, oa }()
		}
		withBlocking(bl[0], bl[1], bl[2], 1, func() {
			for _, impl := range gemmImpls() {
				for _, threads := range []int{1, 2, 3, 4} {
					for _, sh := range shapes {
						for tr := 0; tr < 4; tr++ {
							beta := []float32{0, 1, 0.5}[rng.IntN(3)]
							p := gemmCase(rng, tr&1 != 0, tr&2 != 0, sh[0], sh[1], sh[2], rng.IntN(2)*2, 0.75, beta)
							checkGemm(t, impl, threads, p)
						}
					}
				}
			}
		})
	}
}

// TestGemmSkinny covers the LoRA/PaCA shapes: one dimension r = 8…64.
func TestGemmSkinny(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, r := range []int{8, 16, 17, 32, 64} {
		shapes := [][3]int{
			{130, r, 97},  // x·Aᵀ: (n, in)·(in, r)
			{97, r, 130},  // dΔ = dyᵀ·x_I: (out, n)·(n, r)
			{130, 97, r},  // h·Bᵀ: (n, r)·(r, out)
			{r, 97, 130},  // dA = dhᵀ·x: (r, n)·(n, in)
			{301, r, 257}, // over one MC block
		}
		for _, impl := range gemmImpls() {
			for _, threads := range []int{1, 2} {
				for _, sh := range shapes {
					for tr := 0; tr < 4; tr++ {
						p := gemmCase(rng, tr&1 != 0, tr&2 != 0, sh[0], sh[1], sh[2], 0, 1, []float32{0, 1}[rng.IntN(2)])
						withBlocking(gemmMC, gemmKC, gemmNC, 1, func() { checkGemm(t, impl, threads, p) })
					}
				}
			}
		}
	}
}

// TestGemmEmpty: zero dimensions. m or n = 0 touches nothing; k = 0 or
// alpha = 0 scales C by beta (beta = 0 clears it, NaN included).
func TestGemmEmpty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, impl := range gemmImpls() {
		for _, sh := range [][3]int{{0, 5, 3}, {5, 0, 3}, {0, 0, 0}, {4, 5, 0}, {1, 1, 0}} {
			for _, beta := range []float32{0, 1, -2} {
				p := gemmCase(rng, false, false, sh[0], sh[1], sh[2], 1, 1, beta)
				checkGemm(t, impl, 2, p)
			}
		}
	}
}

// TestGemmAsmMatchesPortable compares the assembly kernel with the
// portable one on larger shapes, including the default blocking.
func TestGemmAsmMatchesPortable(t *testing.T) {
	if gemmAVX2 == nil {
		t.Skip("no AVX2/FMA on this machine")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, sh := range [][3]int{{300, 290, 310}, {145, 600, 40}, {17, 700, 16}, {513, 31, 16}} {
		for tr := 0; tr < 4; tr++ {
			p := gemmCase(rng, tr&1 != 0, tr&2 != 0, sh[0], sh[1], sh[2], 0, 1.25, 0.5)
			q := p
			q.c = append([]float32(nil), p.c...)
			gemmPortable.gemm(1, p)
			gemmAVX2.gemm(2, q)
			for i := range p.c {
				d := math.Abs(float64(p.c[i] - q.c[i]))
				if d > 1e-4*(1+math.Abs(float64(p.c[i]))) {
					t.Fatalf("%v tr=%d: element %d: portable %v, avx2 %v", sh, tr, i, p.c[i], q.c[i])
				}
			}
		}
	}
}

// TestGemmBackend goes through cpuBackend.Gemm with tensors, whose
// leading dimensions flatten into rows.
func TestGemmBackend(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x := New(Scratch, 2, 3, 7) // (6, 7)
	w := New(Scratch, 5, 7)
	y := New(Scratch, 2, 3, 5)
	defer func() { x.Release(); w.Release(); y.Release() }()
	for _, tt := range []*Tensor{x, w} {
		for i := range tt.Data() {
			tt.Data()[i] = float32(rng.NormFloat64())
		}
	}
	cpuBackend{}.Gemm(false, true, 2, x, w, 0, y)
	p := gemmArgs{transB: true, m: 6, n: 5, k: 7, alpha: 2, a: x.Data(), lda: 7, b: w.Data(), ldb: 7, c: y.Data(), ldc: 5}
	want, _ := refGemm(&p)
	for i, v := range y.Data() {
		if math.Abs(float64(v)-want[i]) > 1e-5*(1+math.Abs(want[i])) {
			t.Fatalf("y[%d] = %v, want %v", i, v, want[i])
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("mismatched shapes did not panic")
		}
	}()
	cpuBackend{}.Gemm(false, false, 1, x, w, 0, y)
}

func TestGemmGrid(t *testing.T) {
	for _, tc := range []struct{ threads, m, n, tm, tn int }{
		{1, 512, 576, 1, 1},
		{2, 512, 576, 1, 2},
		{2, 576, 16, 2, 1},
		{2, 6, 16, 1, 1},
		{4, 512, 576, 2, 2},
		{3, 6, 48, 1, 3},
		{2, 49152, 576, 2, 1},
	} {
		tm, tn := gemmGrid(tc.threads, tc.m, tc.n)
		if tm != tc.tm || tn != tc.tn {
			t.Errorf("gemmGrid(%d, %d, %d) = %d×%d, want %d×%d", tc.threads, tc.m, tc.n, tm, tn, tc.tm, tc.tn)
		}
	}
}

// TestGemmAllocs: once warm, a GEMM allocates nothing on the Go heap, on
// one goroutine or several (the helpers are long-lived, the packing
// buffers recycled).
func TestGemmAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	p := gemmCase(rng, false, true, 200, 150, 300, 0, 1, 0)
	for _, threads := range []int{1, 2, 3} {
		run := func() { gemmDefault.gemm(threads, p) }
		for range 3 {
			run() // warm up
		}
		// How many goroutines hold a packing workspace at once depends on
		// when the helpers get a core, so the pool may still grow by one
		// after the warm-up (most often with the slower portable kernel):
		// the cleanest of three rounds counts, and a GEMM that allocated
		// every time would show in all three.
		const calls = 20
		least := uint64(math.MaxUint64)
		for range 3 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range calls {
				run()
			}
			runtime.ReadMemStats(&after)
			least = min(least, after.Mallocs-before.Mallocs)
		}
		if least > 0 {
			t.Errorf("threads=%d: %d allocations in %d GEMMs", threads, least, calls)
		}
	}
}
