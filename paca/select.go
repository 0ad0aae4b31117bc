package paca

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gopaca/paca/tensor"
)

// A Selector chooses the r input columns that PaCA trains in one layer.
// path is the module's HF path, w its frozen weight (out, in). The result
// is sorted and distinct.
type Selector interface {
	Select(path string, w *tensor.Tensor, r int) []int
}

// Selection strategies by name, for the command line.
const (
	SelectRandom     = "random"      // uniformly random (the paper)
	SelectWeightNorm = "weight-norm" // largest column L2 norm of W
	SelectGradient   = "gradient"    // largest column norm of a calibration gradient
)

// RandomSelector draws r distinct columns uniformly at random. Each layer
// gets its own stream, seeded from the run seed and the module path, so a
// layer's choice does not depend on which other layers are adapted.
type RandomSelector struct{ Seed uint64 }

// Select implements Selector.
func (s RandomSelector) Select(path string, w *tensor.Tensor, r int) []int {
	rng := rand.New(rand.NewPCG(s.Seed, pathHash(path)))
	in := w.Dim(1)
	perm := make([]int, in)
	for i := range perm {
		perm[i] = i
	}
	for i := 0; i < r; i++ { // partial Fisher–Yates: the first r are a uniform draw
		j := i + rng.IntN(in-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	idx := perm[:r:r]
	slices.Sort(idx)
	return idx
}

// WeightNormSelector picks the r columns of W with the largest L2 norm.
type WeightNormSelector struct{}

// Select implements Selector.
func (WeightNormSelector) Select(_ string, w *tensor.Tensor, r int) []int {
	return topColumns(columnNormsSquared(w), r)
}

// GradientSelector picks the r columns with the largest norm of a full
// gradient dL/dW accumulated over calibration batches (see
// CalibrationNorms). The choice is then frozen for training.
type GradientSelector struct {
	// Norms maps a module path to the squared column norms of its
	// accumulated gradient (length in).
	Norms map[string][]float64
}

// Select implements Selector.
func (g GradientSelector) Select(path string, w *tensor.Tensor, r int) []int {
	norms, ok := g.Norms[path]
	if !ok || len(norms) != w.Dim(1) {
		panic(fmt.Sprintf("paca: no calibration gradient for %s", path))
	}
	return topColumns(norms, r)
}

// topColumns returns the indices of the r largest scores, sorted; ties go
// to the lower index. NaN scores rank last.
func topColumns(scores []float64, r int) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	key := func(i int) float64 {
		if math.IsNaN(scores[i]) {
			return math.Inf(-1)
		}
		return scores[i]
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(key(b), key(a)) })
	idx := order[:r:r]
	slices.Sort(idx)
	return idx
}

// columnNormsSquared returns Σ_o g[o, i]² for each column i of g (out, in).
func columnNormsSquared(g *tensor.Tensor) []float64 {
	out, in := g.Dim(0), g.Dim(1)
	norms := make([]float64, in)
	g = g.AsFloat32(tensor.Scratch)
	defer g.Release()
	d := g.Data()
	for o := 0; o < out; o++ {
		for i, v := range d[o*in : (o+1)*in] {
			norms[i] += float64(v) * float64(v)
		}
	}
	return norms
}

// pathHash is the FNV-1a hash of a module path, which makes per-module
// random streams independent of each other.
func pathHash(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()
}
