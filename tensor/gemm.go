package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A float32 GEMM in the style of GotoBLAS/BLIS: C is computed in
// gemmMR×gemmNR tiles by a register-blocked micro-kernel (AVX2/FMA assembly
// on amd64, portable Go elsewhere) that reads A and B from packed, cache-
// resident panels:
//
//	for jc in steps of NC over n:          op(B) column block
//	  for pc in steps of KC over k:        pack B̃ = op(B)[pc:+KC, jc:+NC]
//	    for ic in steps of MC over m:      pack Ã = op(A)[ic:+MC, pc:+KC]
//	      for jr in steps of NR:           one micro-panel of B̃ (L1)
//	        for ir in steps of MR:         one micro-panel of Ã (L2)
//	          C[ic+ir:+MR, jc+jr:+NR] (+)= Ã-panel · B̃-panel
//
// Packing is where the four transpose combinations are handled: Ã holds
// MR-row panels stored column by column (MR floats per k step) and B̃ holds
// NR-column panels stored row by row (NR floats per k step), whatever the
// layout of A and B. Edge panels are zero-padded, so the micro-kernel always
// computes a full tile; partial tiles of C go through a small buffer.
//
// The assembly kernel also accepts unpacked operands through strides, and
// the driver skips packing where a panel would be read only a few times,
// so that the copy would cost about as much as it saves: A when a column
// block of C is at most gemmADirectCols wide (the skinny n = r GEMMs of
// LoRA and PaCA), a row-major B when C has at most gemmBDirectRows rows.
// A transposed B with few rows of C is packed one micro-panel at a time,
// right before its use, so that it is still in L1 when the kernel reads it.
//
// Work is split across runtime.GOMAXPROCS goroutines by cutting C into a
// grid of blocks, each an independent GEMM with its own packing buffers,
// which the goroutines take from a shared counter: on a shared machine a
// core that is slowed down then does fewer blocks instead of holding up
// the others. The goroutines are the caller and long-lived helpers, and
// jobs, workspaces and packing buffers are recycled, so that a warm GEMM
// allocates nothing. Problems too small to pay for a second goroutine run
// on the caller alone.

const (
	gemmMR = 6  // rows of the micro-tile
	gemmNR = 16 // columns of the micro-tile (two YMM registers)
)

// Cache blocking, in elements, tuned on a Zen 4 (32 KiB L1d and 1 MiB L2
// per core, shared L3): a B micro-panel (KC·NR·4 = 16 KiB at KC = 256)
// stays in L1 while the MC/MR micro-panels of Ã (MC·KC·4 = 144 KiB) stream
// from L2 and B̃ (KC·NC·4 ≤ 3 MiB) from L3. The kernel runs within a few
// per cent of its in-L1 speed over a wide range of these (MC 72…288,
// KC 256…512), so they are not critical. Variables, not constants, so that
// tests can shrink them to exercise every loop.
var (
	gemmMC = 144  // multiple of gemmMR
	gemmKC = 256  // k is split into equal blocks of at most KC
	gemmNC = 3072 // multiple of gemmNR
)

// gemmMinWork is the smallest m·n·k given to each extra goroutine: below
// it the fork/join costs more than the second core gains.
var gemmMinWork = 1 << 18

// gemmChunks is how many blocks of C each goroutine gets on average when
// the problem is large enough; they are handed out dynamically.
var gemmChunks = 2

// gemmBDirectRows: a row-major B is read in place, not packed, when C has
// at most this many rows (each B panel is then used by few row panels).
var gemmBDirectRows = 144

// gemmADirectCols: A is read in place, not packed, when a column block of
// C is at most this wide (each A panel is then used by few column panels).
var gemmADirectCols = 6 * gemmNR

// gemmChunkMin is the smallest extent, rows or columns, of such a block.
var gemmChunkMin = 128

// microKernel computes one gemmMR×gemmNR tile of C:
// C = alpha·A·B + beta·C, or C = alpha·A·B without reading C when betaZero
// is non-zero. A(i, p) is at a + i·rsA + p·csA, B(p, j) at b + p·ldb + j and
// C(i, j) at c + i·ldc + j, strides in elements; k ≥ 1.
type microKernel func(k int, a *float32, rsA, csA int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, betaZero int)

// gemmImpl is a micro-kernel and what it accepts.
type gemmImpl struct {
	name   string
	kernel microKernel
	// strided kernels accept unpacked A (any strides) and B (any ldb);
	// others only packed panels (rsA = 1, csA = MR, ldb = NR).
	strided bool
	// Optional fast packing of full panels (nil: Go loops), ld being the
	// row stride of the source: packA6N packs 6 rows of a row-major A
	// over 8·n k steps; packB16N 16 columns of a row-major B over n k
	// steps; packB16T 16 rows of a transposed B over 8·n k steps; packA6T
	// n consecutive 6-column panels of a transposed A over kc k steps.
	packA6N, packB16N, packB16T func(dst, src *float32, ld, n int)
	packA6T                     func(dst, src *float32, lda, kc, n int)
	// The same two B packers for a 16-bit B, by its DType (nil entries:
	// Go loops), widening each value.
	packB16NHalf, packB16THalf [3]func(dst *float32, src *uint16, ld, n int)
}

var (
	// gemmPortable is the reference and fallback: pure Go, packed only.
	gemmPortable = &gemmImpl{name: "go", kernel: sgemmKernelGo}
	// gemmAVX2 is set at init on amd64 processors with AVX2 and FMA.
	gemmAVX2 *gemmImpl
	// gemmDefault is what sgemm uses.
	gemmDefault = gemmPortable
)

// gemmArgs is one GEMM: C (m×n, row stride ldc) = alpha·op(A)·op(B) + beta·C
// where op(A) is m×k and op(B) is k×n. A is stored m×k (or k×m when
// transA) with row stride lda; B is stored k×n (or n×k when transB) with
// row stride ldb.
type gemmArgs struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	bh             []uint16 // B in 16 bits (bdt) instead of b, widened when packed
	bdt            DType
	c              []float32
	ldc            int
}

// sgemm computes C = alpha·op(A)·op(B) + beta·C with BLAS semantics
// (row-major): when beta is 0, C is not read; when alpha is 0 or k is 0,
// A and B are not read.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmDefault.gemm(runtime.GOMAXPROCS(0), gemmArgs{
		transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
	})
}

// sgemmHalfB is sgemm with B stored as bf16 or f16 values (dt): each
// value is widened to float32 as B is packed, so the float32 copy of B
// never exists beyond the packing buffers. That is how a linear layer with
// a 16-bit frozen weight computes.
func sgemmHalfB(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, dt DType, ldb int, beta float32, c []float32, ldc int) {
	gemmDefault.gemm(runtime.GOMAXPROCS(0), gemmArgs{
		transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: a, lda: lda, bh: b, bdt: dt, ldb: ldb, c: c, ldc: ldc,
	})
}

// gemm runs p on at most threads goroutines.
func (g *gemmImpl) gemm(threads int, p gemmArgs) {
	if p.m <= 0 || p.n <= 0 {
		return
	}
	if p.k <= 0 || p.alpha == 0 {
		if p.beta != 1 {
			for i := 0; i < p.m; i++ {
				scale(p.c[i*p.ldc:i*p.ldc+p.n], p.beta)
			}
		}
		return
	}
	work := p.m * p.n * p.k
	if w := work / gemmMinWork; w < threads {
		threads = max(w, 1)
	}
	if threads <= 1 {
		ws := gemmWorkspaces.get()
		g.serial(&p, ws)
		gemmWorkspaces.put(ws)
		return
	}
	// Cut C into blocks on tile boundaries, as evenly as the tiles allow,
	// gemmChunks per goroutine where the work allows, and let the
	// goroutines take blocks as they finish: a core slowed down by
	// something else then does fewer blocks instead of holding up the rest.
	tm, tn := gemmGrid(threads, p.m, p.n)
	if c := threads * gemmChunks; c > threads && work/c >= gemmMinWork*4 {
		// Smaller blocks repack more of the other operand (each block
		// packs its own rows of A and columns of B): only cut finer while
		// blocks stay at least gemmChunkMin tall or wide.
		tm2, tn2 := gemmGrid(c, p.m, p.n)
		if tm2*tn2 == c && (tm2 == 1 || p.m/tm2 >= gemmChunkMin) && (tn2 == 1 || p.n/tn2 >= gemmChunkMin) {
			tm, tn = tm2, tn2
		}
	}
	j := gemmJobs.get()
	j.g, j.p, j.tm, j.tn = g, p, tm, tn
	j.next.Store(0)
	helpers := min(threads, tm*tn) - 1
	gemmStartHelpers(helpers)
	j.wg.Add(helpers)
	for range helpers {
		gemmSubmit(j)
	}
	j.Range(0, 1)
	j.wg.Wait()
	*j = gemmJob{}
	gemmJobs.put(j)
}

// gemmJob is one multi-goroutine GEMM: the blocks of C, handed out by next.
// Its Range method runs on each goroutine taking part and computes blocks
// until none are left, whatever range it is given.
type gemmJob struct {
	g      *gemmImpl
	p      gemmArgs
	tm, tn int // the grid of blocks
	next   atomic.Int32
	wg     sync.WaitGroup // the helpers taking part
}

func (j *gemmJob) Range(lo, hi int) {
	p := &j.p
	nb := j.tm * j.tn
	mt, nt := ceilDiv(p.m, gemmMR), ceilDiv(p.n, gemmNR)
	ws := gemmWorkspaces.get()
	for {
		t := int(j.next.Add(1) - 1)
		if t >= nb {
			break
		}
		bi, bj := t/j.tn, t%j.tn
		i0, i1 := bi*mt/j.tm*gemmMR, min((bi+1)*mt/j.tm*gemmMR, p.m)
		j0, j1 := bj*nt/j.tn*gemmNR, min((bj+1)*nt/j.tn*gemmNR, p.n)
		sub := p.block(i0, i1, j0, j1)
		j.g.serial(&sub, ws)
	}
	gemmWorkspaces.put(ws)
}

// The helpers are long-lived goroutines, started as needed (one per extra
// goroutine a GEMM has asked for, at most), so that a GEMM allocates nothing
// once warm. They never block inside a job, so a job waiting for its
// helpers always ends.
var (
	gemmHelperQueue = make(chan *gemmJob, 64)
	gemmHelpers     atomic.Int32
)

// gemmStartHelpers makes sure that at least n helpers exist.
func gemmStartHelpers(n int) {
	for {
		c := gemmHelpers.Load()
		if int(c) >= n {
			return
		}
		if gemmHelpers.CompareAndSwap(c, c+1) {
			go gemmHelper()
		}
	}
}

// gemmSubmit hands j to a helper. If the queue is full the caller does the
// blocks itself and the helper's share is simply not needed.
func gemmSubmit(j *gemmJob) {
	select {
	case gemmHelperQueue <- j:
	default:
		j.wg.Done()
	}
}

func gemmHelper() {
	for j := range gemmHelperQueue {
		j.Range(0, 1)
		j.wg.Done()
	}
}

// The GEMM's job descriptors and packing workspaces are recycled through
// free lists (Jobs, parallel.go), which unlike a sync.Pool keep them across
// garbage collections, so that warm GEMMs reuse their packing buffers.
var (
	gemmJobs       Jobs[gemmJob]
	gemmWorkspaces Jobs[gemmWorkspace]
)

// block returns the sub-GEMM that computes C[i0:i1, j0:j1].
func (p *gemmArgs) block(i0, i1, j0, j1 int) gemmArgs {
	s := *p
	s.m, s.n = i1-i0, j1-j0
	if p.transA {
		s.a = p.a[i0:]
	} else {
		s.a = p.a[i0*p.lda:]
	}
	switch {
	case p.bh != nil && p.transB:
		s.bh = p.bh[j0*p.ldb:]
	case p.bh != nil:
		s.bh = p.bh[j0:]
	case p.transB:
		s.b = p.b[j0*p.ldb:]
	default:
		s.b = p.b[j0:]
	}
	s.c = p.c[i0*p.ldc+j0:]
	return s
}

// gemmGrid chooses how to cut an m×n C among at most threads goroutines:
// tm·tn blocks, each at least one tile each way. Among the grids that use
// the most goroutines it picks the one with the least packing per block
// (rows + columns of the block: each block packs its rows of A and its
// columns of B).
func gemmGrid(threads, m, n int) (tm, tn int) {
	mt, nt := ceilDiv(m, gemmMR), ceilDiv(n, gemmNR)
	for t := threads; t > 1; t-- {
		best := -1
		for a := 1; a <= t; a++ {
			b := t / a
			if a*b != t || a > mt || b > nt {
				continue
			}
			cost := ceilDiv(mt, a)*gemmMR + ceilDiv(nt, b)*gemmNR
			if best < 0 || cost < best {
				best, tm, tn = cost, a, b
			}
		}
		if best >= 0 {
			return tm, tn
		}
	}
	return 1, 1
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// gemmWorkspace holds one goroutine's packing buffers.
type gemmWorkspace struct {
	a, b  []float32 // Ã (MC×KC) and B̃ (KC×NC), 64-byte aligned
	aTail []float32 // one packed A panel (MR×KC), for edges of unpacked A
	bTail []float32 // one packed B panel (KC×NR), for edges of unpacked B
	tmp   []float32 // an MR×NR tile, for edges of C
}

// alignedFloats returns a slice of n float32 starting on a 64-byte
// boundary, reusing buf when it is large enough. A new buffer gets room for
// grow elements if that is more, so that a workspace reaches its largest
// size at once instead of growing shape after shape.
func alignedFloats(buf []float32, n, grow int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	size := max(n, grow)
	raw := make([]float32, size+16)
	off := int((64 - uintptr(unsafe.Pointer(&raw[0]))&63) & 63 / 4)
	return raw[off : off+n : off+size]
}

// serial computes p on the calling goroutine.
func (g *gemmImpl) serial(p *gemmArgs, ws *gemmWorkspace) {
	const mr, nr = gemmMR, gemmNR
	m, n, k := p.m, p.n, p.k
	mc, nc := gemmMC, gemmNC
	kcb := ceilDiv(k, ceilDiv(k, gemmKC)) // equal k blocks of at most KC

	ws.tmp = alignedFloats(ws.tmp, mr*nr, 0)
	ws.aTail = alignedFloats(ws.aTail, mr*kcb, mr*gemmKC)
	ws.bTail = alignedFloats(ws.bTail, kcb*nr, gemmKC*nr)

	// A row-major B is used in place when packing would not pay: each B
	// panel is read once per row panel of C, so with few row panels the
	// copy costs about what it saves (measured: in-place is as fast up to
	// m = 144 and faster below); and a row-major B exactly NR wide is
	// already one packed panel.
	bDirect := g.strided && !p.transB && p.bh == nil && (m <= gemmBDirectRows || (n == nr && p.ldb == nr))
	// With a single block of rows each B panel is used by one sweep of
	// the row panels only: pack it right before that sweep, into a buffer
	// that stays in L1, instead of packing all of B̃ first.
	bJIT := !bDirect && m <= mc

	for jc := 0; jc < n; jc += nc {
		ncur := min(nc, n-jc)
		// Likewise A, when the block has few column panels (measured: up
		// to 6 panels in-place is as fast or faster, by up to 15% at n = 32).
		aDirect := g.strided && ncur <= gemmADirectCols
		if !aDirect {
			ws.a = alignedFloats(ws.a, min(mc, ceilDiv(m, mr)*mr)*kcb, mc*gemmKC)
		}
		if !bDirect && !bJIT {
			ws.b = alignedFloats(ws.b, ceilDiv(ncur, nr)*nr*kcb, nc*gemmKC)
		}
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			beta, betaZero := p.beta, 0
			if pc > 0 {
				beta = 1 // later k blocks accumulate
			} else if beta == 0 {
				betaZero = 1
			}

			tailJ := -1 // jr of a partial panel packed into bTail
			if bDirect {
				if rem := ncur % nr; rem != 0 {
					tailJ = ncur - rem
					g.packBPanel(ws.bTail, p, pc, kc, jc+tailJ, rem)
				}
			} else if !bJIT {
				g.packB(ws.b, p, pc, kc, jc, ncur)
			}

			for ic := 0; ic < m; ic += mc {
				mcur := min(mc, m-ic)
				if !aDirect {
					g.packA(ws.a, p, ic, mcur, pc, kc)
				}
				for jr := 0; jr < ncur; jr += nr {
					nrCur := min(nr, ncur-jr)
					var bp *float32
					ldb := nr
					switch {
					case bJIT:
						g.packBPanel(ws.bTail, p, pc, kc, jc+jr, nrCur)
						bp = &ws.bTail[0]
					case !bDirect:
						bp = &ws.b[jr*kc]
					case jr == tailJ:
						bp = &ws.bTail[0]
					default:
						bp = &p.b[pc*p.ldb+jc+jr]
						ldb = p.ldb
					}
					for ir := 0; ir < mcur; ir += mr {
						mrCur := min(mr, mcur-ir)
						var ap *float32
						rs, cs := 1, mr
						switch {
						case !aDirect:
							ap = &ws.a[ir*kc]
						case mrCur < mr:
							g.packAPanel(ws.aTail, p, ic+ir, mrCur, pc, kc)
							ap = &ws.aTail[0]
						case p.transA:
							ap = &p.a[pc*p.lda+ic+ir]
							rs, cs = 1, p.lda
						default:
							ap = &p.a[(ic+ir)*p.lda+pc]
							rs, cs = p.lda, 1
						}
						ci := (ic+ir)*p.ldc + jc + jr
						if mrCur == mr && nrCur == nr {
							g.kernel(kc, ap, rs, cs, bp, ldb, &p.c[ci], p.ldc, p.alpha, beta, betaZero)
							continue
						}
						g.kernel(kc, ap, rs, cs, bp, ldb, &ws.tmp[0], nr, p.alpha, 0, 1)
						for i := 0; i < mrCur; i++ {
							row := p.c[ci+i*p.ldc : ci+i*p.ldc+nrCur]
							t := ws.tmp[i*nr : i*nr+nrCur]
							if betaZero != 0 {
								copy(row, t)
								continue
							}
							for j := range row {
								row[j] = t[j] + beta*row[j]
							}
						}
					}
				}
			}
		}
	}
}

// packA packs op(A)[ic:ic+mcur, pc:pc+kc] into dst as MR-row panels, each
// stored k step by k step (MR floats per step), the last one zero-padded.
func (g *gemmImpl) packA(dst []float32, p *gemmArgs, ic, mcur, pc, kc int) {
	const mr = gemmMR
	ir := 0
	if p.transA {
		// Row q of the stored A holds k step q of every panel: walk it
		// once, so that each cache line is fetched once, not once per
		// panel.
		full := mcur / mr * mr
		if full > 0 && g.packA6T != nil {
			_ = p.a[(pc+kc-1)*p.lda+ic+full-1]
			g.packA6T(&dst[0], &p.a[pc*p.lda+ic], p.lda, kc, full/mr)
		}
		for q := 0; q < kc && full > 0 && g.packA6T == nil; q++ {
			src := p.a[(pc+q)*p.lda+ic : (pc+q)*p.lda+ic+full]
			for i := 0; i < full; i += mr {
				s := src[i : i+mr : i+mr]
				d := dst[i*kc+q*mr : i*kc+q*mr+mr : i*kc+q*mr+mr]
				d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
			}
		}
		ir = full
	}
	for ; ir < mcur; ir += mr {
		g.packAPanel(dst[ir*kc:], p, ic+ir, min(mr, mcur-ir), pc, kc)
	}
}

// packAPanel packs rows i0..i0+rows-1 (rows ≤ MR) of op(A), columns
// pc..pc+kc-1, into one panel, zero-padding missing rows.
func (g *gemmImpl) packAPanel(dst []float32, p *gemmArgs, i0, rows, pc, kc int) {
	const mr = gemmMR
	d := dst[:kc*mr]
	lda := p.lda
	if p.transA {
		// op(A)[i, q] = a[q·lda + i]: each k step is a contiguous run.
		if rows == mr && g.packA6T != nil {
			_ = p.a[(pc+kc-1)*lda+i0+mr-1]
			g.packA6T(&d[0], &p.a[pc*lda+i0], lda, kc, 1)
			return
		}
		for q := 0; q < kc; q++ {
			src := p.a[(pc+q)*lda+i0 : (pc+q)*lda+i0+rows]
			dq := d[q*mr : q*mr+mr]
			copy(dq, src)
			clear(dq[rows:])
		}
		return
	}
	// op(A)[i, q] = a[i·lda + q]: gather MR rows into each k step.
	if rows == mr {
		base := i0*lda + pc
		q0 := 0
		if g.packA6N != nil && kc >= 8 {
			_ = p.a[base+(mr-1)*lda+kc-1]
			g.packA6N(&d[0], &p.a[base], lda, kc/8)
			q0 = kc / 8 * 8
		}
		r0 := p.a[base : base+kc]
		r1 := p.a[base+lda : base+lda+kc]
		r2 := p.a[base+2*lda : base+2*lda+kc]
		r3 := p.a[base+3*lda : base+3*lda+kc]
		r4 := p.a[base+4*lda : base+4*lda+kc]
		r5 := p.a[base+5*lda : base+5*lda+kc]
		for q := q0; q < len(r0); q++ {
			dq := d[q*mr : q*mr+mr : q*mr+mr]
			dq[0], dq[1], dq[2] = r0[q], r1[q], r2[q]
			dq[3], dq[4], dq[5] = r3[q], r4[q], r5[q]
		}
		return
	}
	clear(d)
	for i := 0; i < rows; i++ {
		src := p.a[(i0+i)*lda+pc : (i0+i)*lda+pc+kc]
		for q, v := range src {
			d[q*mr+i] = v
		}
	}
}

// packB packs op(B)[pc:pc+kc, jc:jc+ncur] into dst as NR-column panels,
// each stored k step by k step (NR floats per step), the last zero-padded.
func (g *gemmImpl) packB(dst []float32, p *gemmArgs, pc, kc, jc, ncur int) {
	const nr = gemmNR
	for jr := 0; jr < ncur; jr += nr {
		g.packBPanel(dst[jr*kc:], p, pc, kc, jc+jr, min(nr, ncur-jr))
	}
}

// packBPanel packs columns j0..j0+cols-1 (cols ≤ NR) of op(B), rows
// pc..pc+kc-1, into one panel, zero-padding missing columns.
func (g *gemmImpl) packBPanel(dst []float32, p *gemmArgs, pc, kc, j0, cols int) {
	const nr = gemmNR
	d := dst[:kc*nr]
	ldb := p.ldb
	if p.bh != nil {
		g.packBPanelHalf(d, p, pc, kc, j0, cols)
		return
	}
	if !p.transB {
		// op(B)[q, j] = b[q·ldb + j]: each k step is a contiguous run.
		if cols == nr && g.packB16N != nil {
			_ = p.b[(pc+kc-1)*ldb+j0+nr-1]
			g.packB16N(&d[0], &p.b[pc*ldb+j0], ldb, kc)
			return
		}
		for q := 0; q < kc; q++ {
			src := p.b[(pc+q)*ldb+j0 : (pc+q)*ldb+j0+cols]
			dq := d[q*nr : q*nr+nr]
			copy(dq, src)
			clear(dq[cols:])
		}
		return
	}
	// op(B)[q, j] = b[j·ldb + q]: scatter each row of B into a column.
	q0 := 0
	if cols == nr && g.packB16T != nil && kc >= 8 {
		_ = p.b[(j0+nr-1)*ldb+pc+kc-1]
		g.packB16T(&d[0], &p.b[j0*ldb+pc], ldb, kc/8)
		q0 = kc / 8 * 8
	} else if cols < nr {
		clear(d)
	}
	for j := 0; j < cols; j++ {
		src := p.b[(j0+j)*ldb+pc : (j0+j)*ldb+pc+kc]
		for q := q0; q < len(src); q++ {
			d[q*nr+j] = src[q]
		}
	}
}

// packBPanelHalf is packBPanel for a 16-bit B: the same layout, each value
// widened on the way (bf16 by a shift, f16 through a table).
func (g *gemmImpl) packBPanelHalf(d []float32, p *gemmArgs, pc, kc, j0, cols int) {
	const nr = gemmNR
	ldb := p.ldb
	q0 := 0 // k steps already packed by the assembly
	if f := g.packB16NHalf[p.bdt]; f != nil && !p.transB && cols == nr {
		_ = p.bh[(pc+kc-1)*ldb+j0+nr-1]
		f(&d[0], &p.bh[pc*ldb+j0], ldb, kc)
		return
	}
	if f := g.packB16THalf[p.bdt]; f != nil && p.transB && cols == nr && kc >= 8 {
		_ = p.bh[(j0+nr-1)*ldb+pc+kc-1]
		f(&d[0], &p.bh[j0*ldb+pc], ldb, kc/8)
		q0 = kc / 8 * 8
	}
	if cols < nr {
		clear(d)
	}
	var f16 *[1 << 16]float32
	if p.bdt == Float16 {
		f16 = f16Table()
	}
	if !p.transB {
		// op(B)[q, j] = b[q·ldb + j]
		for q := 0; q < kc; q++ {
			src := p.bh[(pc+q)*ldb+j0 : (pc+q)*ldb+j0+cols]
			dq := d[q*nr : q*nr+cols]
			if f16 != nil {
				for j, h := range src {
					dq[j] = f16[h]
				}
				continue
			}
			for j, h := range src {
				dq[j] = bf16Bits(h)
			}
		}
		return
	}
	// op(B)[q, j] = b[j·ldb + q]
	for j := 0; j < cols; j++ {
		src := p.bh[(j0+j)*ldb+pc : (j0+j)*ldb+pc+kc]
		if f16 != nil {
			for q := q0; q < kc; q++ {
				d[q*nr+j] = f16[src[q]]
			}
			continue
		}
		for q := q0; q < kc; q++ {
			d[q*nr+j] = bf16Bits(src[q])
		}
	}
}

// sgemmKernelGo is the portable micro-kernel. It takes packed panels only
// (rsA = 1, csA = MR, ldb = NR) and walks the 6×16 tile in 2×4 blocks whose
// 8 accumulators stay in registers. The panels are walked with unsafe
// pointer steps: with slices, bounds checks and the spills they cause made
// it about 1.5 times slower. The driver guarantees k·MR floats at a and
// k·NR at b.
func sgemmKernelGo(k int, a *float32, rsA, csA int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, betaZero int) {
	const mr, nr = gemmMR, gemmNR
	if rsA != 1 || csA != mr || ldb != nr || k < 1 {
		panic("tensor: portable GEMM kernel needs packed panels")
	}
	cp := unsafe.Slice(c, (mr-1)*ldc+nr)
	for r := 0; r < mr; r += 2 {
		for j := 0; j < nr; j += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13 float32
			ap := unsafe.Add(unsafe.Pointer(a), r*4)
			bp := unsafe.Add(unsafe.Pointer(b), j*4)
			for q := 0; q < k; q++ {
				// Addresses from the base each step: a pointer stepped past
				// the last one would point outside the panel (checkptr).
				av := (*[2]float32)(unsafe.Add(ap, q*mr*4))
				bv := (*[4]float32)(unsafe.Add(bp, q*nr*4))
				a0, a1 := av[0], av[1]
				b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
				c00 += a0 * b0
				c01 += a0 * b1
				c02 += a0 * b2
				c03 += a0 * b3
				c10 += a1 * b0
				c11 += a1 * b1
				c12 += a1 * b2
				c13 += a1 * b3
			}
			r0 := cp[r*ldc+j : r*ldc+j+4 : r*ldc+j+4]
			r1 := cp[(r+1)*ldc+j : (r+1)*ldc+j+4 : (r+1)*ldc+j+4]
			if betaZero != 0 {
				r0[0], r0[1], r0[2], r0[3] = alpha*c00, alpha*c01, alpha*c02, alpha*c03
				r1[0], r1[1], r1[2], r1[3] = alpha*c10, alpha*c11, alpha*c12, alpha*c13
				continue
			}
			r0[0] = alpha*c00 + beta*r0[0]
			r0[1] = alpha*c01 + beta*r0[1]
			r0[2] = alpha*c02 + beta*r0[2]
			r0[3] = alpha*c03 + beta*r0[3]
			r1[0] = alpha*c10 + beta*r1[0]
			r1[1] = alpha*c11 + beta*r1[1]
			r1[2] = alpha*c12 + beta*r1[2]
			r1[3] = alpha*c13 + beta*r1[3]
		}
	}
}
