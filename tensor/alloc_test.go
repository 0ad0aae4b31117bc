package tensor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The allocator is process-wide: these tests measure deltas, never absolute
// values, and must not run in parallel.

func TestAllocLivePerCategory(t *testing.T) {
	for _, c := range Categories() {
		t.Run(c.String(), func(t *testing.T) {
			before := MemStats()
			x := New(c, 3, 5)
			mid := MemStats()
			for _, d := range Categories() {
				want := int64(0)
				if d == c {
					want = 60
				}
				assert.Equal(t, want, mid.Live[d]-before.Live[d], "live %s", d)
			}
			assert.Equal(t, int64(60), mid.LiveTotal-before.LiveTotal)
			assert.Equal(t, c, x.Category())
			x.Release()
			assert.Equal(t, before.Live, MemStats().Live)
			assert.Equal(t, before.LiveTotal, MemStats().LiveTotal)
		})
	}
}

func TestAllocFromSliceAndClone(t *testing.T) {
	before := MemStats()
	data := []float32{1, 2, 3, 4, 5, 6}
	x := FromSlice(Trainable, data, 2, 3)
	assert.Equal(t, int64(24), MemStats().Live[Trainable]-before.Live[Trainable])
	data[0] = 9
	assert.Equal(t, float32(9), x.Data()[0], "FromSlice must not copy")

	y := x.Clone(Optimizer)
	assert.Equal(t, int64(24), MemStats().Live[Optimizer]-before.Live[Optimizer])
	assert.Equal(t, []int{2, 3}, y.Shape())
	assert.Equal(t, x.Data(), y.Data())
	y.Data()[1] = -1
	assert.Equal(t, float32(2), x.Data()[1], "Clone must copy")

	x.Release()
	y.Release()
	assert.Equal(t, before.Live, MemStats().Live)
	assert.Panics(t, func() { FromSlice(Scratch, make([]float32, 5), 2, 3) })
	assert.Panics(t, func() { New(Scratch, 2, -1) })
}

func TestAllocZeroSizedAndScalar(t *testing.T) {
	before := MemStats()
	e := New(Scratch, 0, 7)
	s := New(Scratch)
	assert.Equal(t, 0, e.Len())
	assert.Equal(t, 1, s.Len())
	assert.Equal(t, int64(4), MemStats().Live[Scratch]-before.Live[Scratch])
	e.Release()
	s.Release()
	assert.Equal(t, before.Live, MemStats().Live)
}

func TestAllocPeak(t *testing.T) {
	ResetPeak()
	base := MemStats()
	assert.Equal(t, base.Live, base.Peak, "ResetPeak sets peak to live")
	assert.Equal(t, base.LiveTotal, base.PeakTotal)

	big := New(Scratch, 100)    // +400 scratch
	other := New(Optimizer, 50) // +200 optimizer: total peak +600
	big.Release()
	small := New(Scratch, 10) // +40 scratch
	s := MemStats()
	assert.Equal(t, base.Peak[Scratch]+400, s.Peak[Scratch])
	assert.Equal(t, base.Peak[Optimizer]+200, s.Peak[Optimizer])
	assert.Equal(t, base.PeakTotal+600, s.PeakTotal)
	assert.Equal(t, base.Live[Scratch]+40, s.Live[Scratch])
	assert.Equal(t, base.LiveTotal+240, s.LiveTotal)

	ResetPeak()
	r := MemStats()
	assert.Equal(t, r.Live, r.Peak)
	assert.Equal(t, base.PeakTotal+240, r.PeakTotal)
	other.Release()
	small.Release()
	r = MemStats()
	assert.Equal(t, base.PeakTotal+240, r.PeakTotal, "peak does not fall with live")
	assert.Equal(t, base.LiveTotal, r.LiveTotal)
}

func TestAllocReleaseTwicePanics(t *testing.T) {
	before := MemStats()
	x := New(Activation, 4)
	x.Release()
	assert.Panics(t, func() { x.Release() })
	assert.Panics(t, func() { x.Retain() })
	assert.Equal(t, before.Live, MemStats().Live, "a panicking Release must not account")
	var nilT *Tensor
	assert.NotPanics(t, func() { nilT.Release() })
}

func TestAllocRetainRelease(t *testing.T) {
	before := MemStats()
	x := New(Activation, 8)
	x.Retain()
	x.Release()
	assert.Equal(t, int64(32), MemStats().Live[Activation]-before.Live[Activation], "still one reference")
	x.Release()
	assert.Equal(t, before.Live, MemStats().Live)
}

func TestReshapeSharesStorage(t *testing.T) {
	before := MemStats()
	x := New(Trainable, 2, 6).SetRequiresGrad(true)
	v := x.Reshape(3, 4)
	assert.Equal(t, int64(48), MemStats().Live[Trainable]-before.Live[Trainable], "a view allocates nothing")
	assert.Equal(t, []int{3, 4}, v.Shape())
	assert.Equal(t, []int{2, 6}, x.Shape())
	assert.True(t, v.RequiresGrad())
	assert.Equal(t, 2, x.st.refs)
	assert.Same(t, x.st, v.st)
	v.Data()[5] = 7
	assert.Equal(t, float32(7), x.Data()[5], "writes through a view are visible")
	assert.Equal(t, [3]int{3, 4, 4}, [3]int{v.Rows(), v.Cols(), v.Dim(-1)})

	x.Release()
	assert.Equal(t, int64(48), MemStats().Live[Trainable]-before.Live[Trainable], "the view keeps the storage")
	assert.Equal(t, float32(7), v.Data()[5])
	v.Release()
	assert.Equal(t, before.Live, MemStats().Live)

	y := New(Scratch, 5)
	defer y.Release()
	assert.Panics(t, func() { y.Reshape(2, 3) })
	assert.Equal(t, 1, y.st.refs, "a failed Reshape takes no reference")
}

func TestRecategorizeMovesBytes(t *testing.T) {
	before := MemStats()
	x := New(Activation, 10)
	save(x) // what the tape does to an activation it keeps
	s := MemStats()
	assert.Equal(t, Saved, x.Category())
	assert.Equal(t, int64(40), s.Live[Saved]-before.Live[Saved])
	assert.Equal(t, int64(0), s.Live[Activation]-before.Live[Activation])
	assert.Equal(t, int64(40), s.LiveTotal-before.LiveTotal)
	x.Release()
	x.Release()
	assert.Equal(t, before.Live, MemStats().Live, "bytes leave from the category they are in")

	w := New(Frozen, 3)
	save(w) // weights are not activations: they stay where they are
	assert.Equal(t, Frozen, w.Category())
	w.Release()
	w.Release()
	assert.Equal(t, before.Live, MemStats().Live)
}

func TestFormatBytes(t *testing.T) {
	cases := map[int64]string{
		0:                       "0 B",
		1:                       "1 B",
		1023:                    "1023 B",
		1024:                    "1.00 KiB",
		1536:                    "1.50 KiB",
		1<<20 - 1:               "1024.00 KiB",
		1 << 20:                 "1.00 MiB",
		5 * (1 << 20) / 2:       "2.50 MiB",
		1 << 30:                 "1.00 GiB",
		3 * (1 << 30) / 4:       "768.00 MiB",
		1 << 40:                 "1024.00 GiB",
		17*(1<<30) + 1<<29:      "17.50 GiB",
		int64(7.25 * (1 << 30)): "7.25 GiB",
	}
	for n, want := range cases {
		assert.Equal(t, want, FormatBytes(n), "FormatBytes(%d)", n)
	}
}

func TestCategoryNamesAndStatsString(t *testing.T) {
	cs := Categories()
	require.Len(t, cs, int(numCategories))
	want := []string{"frozen", "trainable", "gradients", "optimizer", "activations", "saved", "scratch"}
	for i, c := range cs {
		assert.Equal(t, Category(i), c)
		assert.Equal(t, want[i], c.String())
	}
	assert.Equal(t, "Category(99)", Category(99).String())
	assert.Equal(t, "Category(-1)", Category(-1).String())

	var s Stats
	s.Live[Saved] = 2048
	s.Peak[Saved] = 3 << 20
	s.LiveTotal, s.PeakTotal = 2048, 3<<20
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	require.Len(t, lines, int(numCategories)+2)
	assert.Equal(t, []string{"memory", "live", "peak"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"saved", "2.00", "KiB", "3.00", "MiB"}, strings.Fields(lines[1+int(Saved)]))
	assert.Equal(t, []string{"frozen", "0", "B", "0", "B"}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"total", "2.00", "KiB", "3.00", "MiB"}, strings.Fields(lines[len(lines)-1]))
}
