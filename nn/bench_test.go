package nn

import (
	"path/filepath"
	"testing"

	"github.com/gopaca/paca/tensor"
)

// BenchmarkGoldenStep times one forward+backward pass of full fine-tuning
// on the llama_gqa golden model and batch, and reports the peak accounted
// memory per category.
func BenchmarkGoldenStep(b *testing.B) {
	m, err := Load(filepath.Join(goldenDir("llama_gqa"), "model"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	recs := goldenRecords(b, "llama_gqa")
	m.SetTrainable(true)
	tensor.ResetPeak()
	b.ResetTimer()
	for range b.N {
		tp := tensor.NewTape()
		loss, _ := m.Loss(tp, recs.ids, recs.labels, recs.B, recs.T)
		tp.Backward(loss, 1)
		loss.Release()
		m.ZeroGrad()
	}
	b.StopTimer()
	s := tensor.MemStats()
	for _, c := range tensor.Categories() {
		if s.Peak[c] > 0 {
			b.ReportMetric(float64(s.Peak[c]), "peak-"+c.String()+"-B")
		}
	}
	b.ReportMetric(float64(s.PeakTotal), "peak-total-B")
}
