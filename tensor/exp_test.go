package tensor

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// expImpl is one implementation of the exp kernels, for tests that run
// every implementation the machine has.
type expImpl struct {
	name    string
	expSub  func(dst, src []float32, m float32) float32
	sigmoid func(dst, src []float32)
	max     func(x []float32) float32
}

func expImpls() []expImpl {
	impls := []expImpl{{"go", expSubGo, sigmoidGo, maxGo}}
	if expAVX2 {
		impls = append(impls, expImpl{"avx2", expSubBlock, sigmoidBlock, maxBlock})
	}
	return impls
}

// ulpErr is |got − want| in units of the float32 ulp at want (≥ 0), with
// +Inf counted as 2¹²⁸ and the subnormal ulp 2⁻¹⁴⁹ below 2⁻¹²⁶.
func ulpErr(got float32, want float64) float64 {
	if math.IsNaN(want) || math.IsNaN(float64(got)) {
		if math.IsNaN(want) && math.IsNaN(float64(got)) {
			return 0
		}
		return math.Inf(1)
	}
	g := float64(got)
	if math.IsInf(g, 1) {
		g = 0x1p128
	}
	want = min(want, 0x1p128)
	ulp := 0x1p-149
	if want >= 0x1p-126 {
		_, e := math.Frexp(want)
		ulp = math.Ldexp(1, e-24)
	}
	return math.Abs(g-want) / ulp
}

// expChecker runs batches of inputs through an implementation's expSub
// (m = 0) and sigmoid and keeps the worst errors against float64.
type expChecker struct {
	impl               expImpl
	src, dst           []float32
	expWorst, sigWorst float64
	expAt, sigAt       float32
}

func newExpChecker(impl expImpl) *expChecker {
	return &expChecker{impl: impl, src: make([]float32, 0, 4096), dst: make([]float32, 4096)}
}

func (c *expChecker) add(x float32) {
	c.src = append(c.src, x)
	if len(c.src) == cap(c.src) {
		c.flush()
	}
}

func (c *expChecker) flush() {
	dst := c.dst[:len(c.src)]
	c.impl.expSub(dst, c.src, 0)
	for i, x := range c.src {
		if e := ulpErr(dst[i], math.Exp(float64(x))); e > c.expWorst || math.IsNaN(e) {
			c.expWorst, c.expAt = e, x
		}
	}
	c.impl.sigmoid(dst, c.src)
	for i, x := range c.src {
		if e := ulpErr(dst[i], 1/(1+math.Exp(-float64(x)))); e > c.sigWorst {
			c.sigWorst, c.sigAt = e, x
		}
	}
	c.src = c.src[:0]
}

// Accuracy targets: e^x within 2 ulp of float64 math.Exp everywhere
// (measured over every float32 in [−104, 89]: 1.02), σ within 3 ulp (2.4).
const (
	expMaxULP     = 2
	sigmoidMaxULP = 3
)

func (c *expChecker) check(t *testing.T) {
	t.Helper()
	c.flush()
	t.Logf("%s: exp worst %.3f ulp at %g, sigmoid worst %.3f ulp at %g", c.impl.name, c.expWorst, c.expAt, c.sigWorst, c.sigAt)
	if c.expWorst > expMaxULP {
		t.Errorf("%s: exp(%g) off by %.3f ulp", c.impl.name, c.expAt, c.expWorst)
	}
	if c.sigWorst > sigmoidMaxULP {
		t.Errorf("%s: sigmoid(%g) off by %.3f ulp", c.impl.name, c.sigAt, c.sigWorst)
	}
}

// expSweep feeds add every stride-th float32 (by bit pattern) of
// [−104, 89], a linear grid of n points over it, and the values around
// the edges of the range.
func expSweep(stride uint32, n int, add func(float32)) {
	for b := uint32(0); b <= math.Float32bits(89); b += stride {
		add(math.Float32frombits(b))
	}
	for b := uint32(1 << 31); b <= math.Float32bits(-104); b += stride {
		add(math.Float32frombits(b))
	}
	for i := 0; i <= n; i++ {
		add(float32(-104 + 193*float64(i)/float64(n)))
	}
	for _, edge := range []float64{
		math.Log(math.MaxFloat32), // overflow
		math.Log(0x1p-126),        // smallest normal result
		math.Log(0x1p-149),        // smallest subnormal result
		math.Log(0x1p-150),        // rounds to 0 or 2⁻¹⁴⁹
		-math.Ln2 / 2, math.Ln2 / 2, -104, 89, 0,
	} {
		x := float32(edge)
		for range 2000 {
			x = math.Nextafter32(x, float32(math.Inf(-1)))
		}
		for range 4000 {
			add(x)
			x = math.Nextafter32(x, float32(math.Inf(1)))
		}
	}
}

func TestExpAccuracy(t *testing.T) {
	stride := uint32(97)
	if testing.Short() {
		stride = 9973
	}
	if os.Getenv("PACA_EXP_EXHAUSTIVE") != "" {
		stride = 1 // every float32 in range: about a minute
	}
	for _, impl := range expImpls() {
		t.Run(impl.name, func(t *testing.T) {
			c := newExpChecker(impl)
			expSweep(stride, 1_000_000, c.add)
			rng := rand.New(rand.NewPCG(1, 2))
			for range 1_000_000 {
				c.add(math.Float32frombits(rng.Uint32())) // anything, NaNs and infinities included
			}
			c.check(t)
		})
	}
}

func TestExpSpecialValues(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	cases := []struct{ x, exp, sig float32 }{
		{0, 1, 0.5},
		{float32(math.Copysign(0, -1)), 1, 0.5},
		{inf, inf, 1},
		{-inf, 0, 0},
		{1e30, inf, 1},
		{-1e30, 0, 0},
		{math.MaxFloat32, inf, 1},
		{-math.MaxFloat32, 0, 0},
		{89, inf, 1},
		{-104, 0, 0},
		{-110, 0, 0},
		{100, inf, 1},
		{math.SmallestNonzeroFloat32, 1, 0.5},
	}
	for _, impl := range expImpls() {
		for _, c := range cases {
			var e, s [1]float32
			impl.expSub(e[:], []float32{c.x}, 0)
			impl.sigmoid(s[:], []float32{c.x})
			if e[0] != c.exp {
				t.Errorf("%s: exp(%g) = %g, want %g", impl.name, c.x, e[0], c.exp)
			}
			if s[0] != c.sig {
				t.Errorf("%s: sigmoid(%g) = %g, want %g", impl.name, c.x, s[0], c.sig)
			}
		}
		var e, s [1]float32
		impl.expSub(e[:], []float32{nan}, 0)
		impl.sigmoid(s[:], []float32{nan})
		if !math.IsNaN(float64(e[0])) || !math.IsNaN(float64(s[0])) {
			t.Errorf("%s: exp(NaN) = %g, sigmoid(NaN) = %g, want NaN", impl.name, e[0], s[0])
		}
		// e^(x−m) with x = m = ±Inf is e^NaN.
		if sum := impl.expSub(e[:], []float32{inf}, inf); !math.IsNaN(float64(sum)) || !math.IsNaN(float64(e[0])) {
			t.Errorf("%s: exp(Inf−Inf) = %g, sum %g, want NaN", impl.name, e[0], sum)
		}
	}
}

// TestExpSubLengths checks every length around the vector width: each
// element must come out as it does inside a full vector, the sum must be
// the sum of the outputs, and nothing past len(src) may be written.
func TestExpSubLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, impl := range expImpls() {
		for n := 0; n <= 70; n++ {
			src := make([]float32, n)
			for i := range src {
				src[i] = float32(rng.NormFloat64() * 10)
			}
			const m = 1.5
			want := make([]float32, n+8) // padded: every element in a full vector
			impl.expSub(want, append(src[:n:n], make([]float32, 8)...), m)
			dst := make([]float32, n+9)
			for i := range dst {
				dst[i] = -7
			}
			sum := impl.expSub(dst[:n], src, m)
			var wantSum float64
			for i := range n {
				if dst[i] != want[i] {
					t.Fatalf("%s n=%d: exp(%g−m) = %g, %g in a full vector", impl.name, n, src[i], dst[i], want[i])
				}
				wantSum += float64(dst[i])
			}
			if math.Abs(float64(sum)-wantSum) > 1e-6*wantSum {
				t.Errorf("%s n=%d: sum %g, want %g", impl.name, n, sum, wantSum)
			}
			for i := n; i < len(dst); i++ {
				if dst[i] != -7 {
					t.Fatalf("%s n=%d: wrote dst[%d]", impl.name, n, i)
				}
			}

			sig := make([]float32, n+9)
			sig[n] = -7
			impl.sigmoid(sig[:n], src)
			for i, x := range src {
				if e := ulpErr(sig[i], 1/(1+math.Exp(-float64(x)))); e > sigmoidMaxULP {
					t.Fatalf("%s n=%d: sigmoid(%g) = %g, %.1f ulp off", impl.name, n, x, sig[i], e)
				}
			}
			if sig[n] != -7 {
				t.Fatalf("%s n=%d: sigmoid wrote past the end", impl.name, n)
			}
		}
	}
}

func TestMaxOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, impl := range expImpls() {
		if got := impl.max(nil); got != -inf {
			t.Errorf("%s: max of nothing = %g", impl.name, got)
		}
		if got := impl.max([]float32{nan, nan}); got != -inf {
			t.Errorf("%s: max of NaNs = %g", impl.name, got)
		}
		for n := 1; n <= 100; n++ {
			x := make([]float32, n+1)
			for i := range x {
				x[i] = float32(rng.NormFloat64()) - 50
			}
			x[n] = 1000 // past the end: must not be read
			for _, at := range []int{0, n / 2, n - 1} {
				x[at] += 20
				want := float32(math.Inf(-1))
				for _, v := range x[:n] {
					want = max(want, v)
				}
				y := append([]float32(nil), x[:n]...)
				y[rng.IntN(n)] = nan
				wantY := float32(math.Inf(-1))
				for _, v := range y {
					if v > wantY {
						wantY = v
					}
				}
				if got := impl.max(y); got != wantY {
					t.Fatalf("%s n=%d: max with a NaN = %g, want %g", impl.name, n, got, wantY)
				}
				if got := impl.max(x[:n]); got != want {
					t.Fatalf("%s n=%d: max = %g, want %g", impl.name, n, got, want)
				}
				x[at] -= 20
			}
		}
	}
}

// TestExpSubLongSum checks expSub's float64 total over a vocabulary-sized
// row against a float64 sum of float64 exps.
func TestExpSubLongSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	src := make([]float32, 49152)
	for i := range src {
		src[i] = float32(rng.NormFloat64() * 3)
	}
	m := rowMax(src)
	var want float64
	for _, x := range src {
		want += math.Exp(float64(x - m))
	}
	got := expSub(make([]float32, len(src)), src, m)
	if rel := math.Abs(got-want) / want; rel > 1e-6 {
		t.Errorf("sum of %d exps: %g, want %g (%.2g relative)", len(src), got, want, rel)
	}
}

func FuzzExp(f *testing.F) {
	for _, x := range []float32{0, 1, -1, 88.7, 89, -87.3, -103.9, -104, 1e30, -1e30, float32(math.Inf(1)), float32(math.NaN())} {
		f.Add(x, float32(0))
		f.Add(x, float32(3.5))
	}
	impls := expImpls()
	f.Fuzz(func(t *testing.T, x, m float32) {
		want := math.Exp(float64(x - m))
		wantSig := 1 / (1 + math.Exp(-float64(x)))
		var got []float32
		for _, impl := range impls {
			var e, s [1]float32
			impl.expSub(e[:], []float32{x}, m)
			impl.sigmoid(s[:], []float32{x})
			if d := ulpErr(e[0], want); d > expMaxULP {
				t.Errorf("%s: exp(%g − %g) = %g, want %g (%.2f ulp)", impl.name, x, m, e[0], want, d)
			}
			if d := ulpErr(s[0], wantSig); d > sigmoidMaxULP {
				t.Errorf("%s: sigmoid(%g) = %g, want %g (%.2f ulp)", impl.name, x, s[0], wantSig, d)
			}
			got = append(got, e[0])
		}
		for _, g := range got[1:] {
			if d := ulpErr(g, float64(got[0])); d > expMaxULP {
				t.Errorf("exp(%g − %g): %s gives %g, %s %g", x, m, impls[0].name, got[0], impls[len(got)-1].name, g)
			}
		}
	})
}

func BenchmarkExpSub(b *testing.B) {
	src := make([]float32, 4096)
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range src {
		src[i] = float32(rng.NormFloat64() * 5)
	}
	dst := make([]float32, len(src))
	for _, impl := range expImpls() {
		b.Run(impl.name, func(b *testing.B) {
			for b.Loop() {
				impl.expSub(dst, src, 3)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/elem")
		})
	}
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			for i, x := range src {
				dst[i] = float32(math.Exp(float64(x - 3)))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/elem")
	})
}
