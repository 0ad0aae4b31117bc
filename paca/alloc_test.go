package paca

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
)

// randomModel builds a small random LLaMA (GQA) model and random training
// records of seqLen tokens.
func randomModel(hidden, inter, layers, vocab, seqLen, records int) (*nn.Model, []data.Record) {
	cfg := &nn.Config{ModelType: "llama", VocabSize: vocab, HiddenSize: hidden, IntermediateSize: inter,
		NumLayers: layers, NumHeads: 4, NumKVHeads: 2, HeadDim: hidden / 4, RMSNormEps: 1e-5,
		RoPE: nn.RoPEConfig{Type: "default", Theta: 10000}, MaxPositions: 4096, BOSTokenID: -1}
	rng := rand.New(rand.NewPCG(7, 8))
	recs := make([]data.Record, records)
	for i := range recs {
		ids := make([]int32, seqLen)
		for j := range ids {
			ids[j] = int32(rng.IntN(vocab))
		}
		recs[i] = data.Record{InputIDs: ids, Labels: ids, Line: i + 1}
	}
	return nn.NewRandom(cfg, 1), recs
}

// allocSites runs f and returns the Go heap allocations it made, by the
// allocation site (the innermost frame of this module), with the sites
// whose stack goes through a file ending in one of the allowed suffixes
// counted apart. The runtime's own bookkeeping is left out: allocations
// with no frame outside the runtime (background GC and scavenger work,
// which the measurement's runtime.GC calls provoke), and the semaphore
// waiters and OS threads that the runtime allocates the first time a
// goroutine parks on a P or a P needs a thread, and keeps for reuse.
func allocSites(f func(), allowed ...string) (sites map[string]int64, allowedCount int64) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1 // profile every allocation (takes effect at once)
	before := memProfileSnapshot()
	f()
	after := memProfileSnapshot()
	sites = map[string]int64{}
	for k, n := range after {
		if n -= before[k]; n <= 0 {
			continue
		}
		frames := runtime.CallersFrames(slices.DeleteFunc(k[:], func(pc uintptr) bool { return pc == 0 }))
		site, ok, ignore, user := "", false, false, false
		for {
			fr, more := frames.Next()
			switch fr.Function {
			case "runtime.acquireSudog", "runtime.newm":
				ignore = true
			}
			ignore = ignore || strings.HasSuffix(fr.Function, "memProfileSnapshot") // the measurement's own
			user = user || !strings.HasPrefix(fr.Function, "runtime.")
			for _, suf := range allowed {
				ok = ok || strings.HasSuffix(fr.File, suf)
			}
			if site == "" && strings.Contains(fr.Function, "gopaca/paca") {
				site = fmt.Sprintf("%s (%s:%d)", fr.Function, fr.File, fr.Line)
			}
			if !more {
				break
			}
		}
		switch {
		case ignore || !user:
		case ok:
			allowedCount += n
		default:
			if site == "" {
				site = fmt.Sprintf("outside this module (%v)", k[:3])
			}
			sites[site] += n
		}
	}
	return sites, allowedCount
}

type profileKey [32]uintptr

// memProfileSnapshot returns the allocation counts of the memory profile by
// stack.
func memProfileSnapshot() map[profileKey]int64 {
	// The profile lags up to two GC cycles behind.
	runtime.GC()
	runtime.GC()
	runtime.GC()
	n, _ := runtime.MemProfile(nil, true)
	recs := make([]runtime.MemProfileRecord, n+64)
	n, _ = runtime.MemProfile(recs, true)
	m := make(map[profileKey]int64, n)
	for _, r := range recs[:n] {
		m[r.Stack0] += r.AllocObjects
	}
	return m
}

// A warm training step allocates nothing on the Go heap: tensors and their
// headers come from the storage pool, tape nodes from the tape's reused
// node array, the kernels run on long-lived workers with recycled
// arguments, and batches are laid out in reused buffers. Each method is
// measured on one core and on four (testing.AllocsPerRun would pin
// GOMAXPROCS to 1 and never run the parallel kernels).
//
// The GEMM (tensor/gemm.go) may still grow its pool of packing workspaces
// when more goroutines than ever before take part in one product: up to
// two such allocations per step are reported, not failed.
func TestTrainStepAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a model per method")
	}
	if os.Getenv("PACA_TENSOR_CHECK") == "1" {
		t.Skip("PACA_TENSOR_CHECK=1 never reuses memory")
	}
	const gemmFile = "tensor/gemm.go"
	for _, method := range []string{MethodPaCA, MethodLoRA, MethodFull, MethodQPaCA, MethodQLoRA, MethodDoRA} {
		t.Run(method, func(t *testing.T) {
			m, recs := randomModel(64, 160, 2, 256, 64, 3)
			defer m.Release()
			cfg := Config{Method: method, Rank: 8, Alpha: 16, Seed: 3}
			if method == MethodLoRA {
				cfg.Dropout = 0.1
			}
			a, err := Apply(m, cfg)
			require.NoError(t, err)
			defer a.Unapply()
			tc := TrainConfig{Optimizer: "adamw", LR: 1e-3, WeightDecay: 0.01, Schedule: "cosine", Warmup: 2,
				MaxGradNorm: 1, BatchSize: 1, GradAccum: 2, SeqLen: 64, Steps: 1000}
			tr, err := NewTrainer(a, recs, tc)
			require.NoError(t, err)
			defer tr.Release()
			step := func() {
				_, err := tr.TrainStep()
				require.NoError(t, err)
			}
			for _, procs := range []int{1, 4} {
				old := runtime.GOMAXPROCS(procs)
				for range 3 { // warm up: every record, every shape
					step()
				}
				const steps = 5
				// The runtime itself allocates now and then (a timer, a
				// profiling bucket): a clean run among three shows that
				// the step allocates nothing.
				var sites map[string]int64
				var gemm int64
				for range 3 {
					sites, gemm = allocSites(func() {
						for range steps {
							step()
						}
					}, gemmFile)
					if len(sites) == 0 {
						break
					}
				}
				runtime.GOMAXPROCS(old)
				require.Empty(t, sites, "Go heap allocations in %d steps at GOMAXPROCS=%d", steps, procs)
				if gemm > 0 {
					t.Logf("GOMAXPROCS=%d: %.1f allocations per step in %s", procs, float64(gemm)/steps, gemmFile)
				}
				require.LessOrEqual(t, gemm, int64(2*steps), "GEMM allocations in %d steps at GOMAXPROCS=%d: more than its workspace pool growing", steps, procs)
			}
		})
	}
}
