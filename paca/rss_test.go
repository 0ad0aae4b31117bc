//go:build linux && !race

package paca

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopaca/paca/tensor"
)

// procStatusKB returns a kB field (VmRSS, VmHWM) of /proc/self/status in
// bytes.
func procStatusKB(t testing.TB, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			f := strings.Fields(val)
			n, err := strconv.ParseInt(f[0], 10, 64)
			require.NoError(t, err)
			return n * 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// rssReport is what the child of TestPeakRSSTracksAccountedMemory measures.
type rssReport struct {
	BaselineRSS   int64 // VmRSS before any tensor exists: binary and runtime
	PeakRSS       int64 // VmHWM at the end
	PeakAccounted int64
	Reserved      int64 // storage pool at the end
	Cached        int64
	HeapSys       int64 // Go heap obtained from the OS
	GoSys         int64 // everything the Go runtime obtained from the OS
	Procs         int
}

// TestPeakRSSHelper trains in a child process and reports its memory; it
// does nothing in a normal test run.
func TestPeakRSSHelper(t *testing.T) {
	method := os.Getenv("PACA_RSS_HELPER_METHOD")
	if method == "" {
		t.Skip("only runs as the child of TestPeakRSSTracksAccountedMemory")
	}
	var rep rssReport
	rep.BaselineRSS = procStatusKB(t, "VmRSS")
	m, recs := randomModel(256, 688, 4, 8192, 256, 4)
	a, err := Apply(m, Config{Method: method, Rank: 16, Alpha: 32, Seed: 3})
	require.NoError(t, err)
	tr, err := NewTrainer(a, recs, TrainConfig{Optimizer: "adamw", LR: 1e-3, Schedule: "constant",
		MaxGradNorm: 1, BatchSize: 2, SeqLen: 256, Steps: 100})
	require.NoError(t, err)
	for range 3 {
		_, err := tr.TrainStep()
		require.NoError(t, err)
	}
	st := tensor.MemStats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.PeakRSS = procStatusKB(t, "VmHWM")
	rep.PeakAccounted, rep.Reserved, rep.Cached = st.PeakTotal, st.Reserved, st.Cached
	rep.HeapSys, rep.GoSys, rep.Procs = int64(ms.HeapSys), int64(ms.Sys), runtime.GOMAXPROCS(0)
	require.NoError(t, json.NewEncoder(os.Stdout).Encode(rep))
}

// rssOverhead is the resident memory a training process needs beyond its
// binary and runtime (measured in the child before any tensor exists) and
// its tensors: the Go heap, which holds the GEMM's packing buffers (about
// 3.3 MiB per thread, two threads here, kept in a sync.Pool) with the
// collector's headroom, the model's and the tape's small structures and
// the records. The child measures about 16 MiB of Go heap.
const rssOverhead = 24 << 20

// Tensor storage lives outside the Go heap, so the collector does not
// double it, and the pool keeps what it caches near the high-water mark of
// what is in use: a child process that trains a ~30 MB model for a few
// steps peaks at most 15 % above its peak accounted tensor memory, plus its
// baseline and rssOverhead. (With storage on the Go heap the same run
// peaks about 75 % above the accounted peak, and fails.)
func TestPeakRSSTracksAccountedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	if os.Getenv("PACA_TENSOR_CHECK") == "1" {
		t.Skip("PACA_TENSOR_CHECK=1 never reuses memory")
	}
	for _, method := range []string{MethodPaCA, MethodLoRA, MethodFull} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PACA_RSS_HELPER_METHOD="+method, "GOMAXPROCS=2")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		var rep rssReport
		line, _, _ := bytes.Cut(out, []byte("\n"))
		require.NoError(t, json.Unmarshal(line, &rep), "%s", out)
		mib := func(n int64) float64 { return float64(n) / (1 << 20) }
		t.Logf("%s: peak RSS %.1f MiB, baseline %.1f MiB, peak accounted %.1f MiB: RSS − baseline = %.2f × accounted; pool %.1f MiB mapped (%.1f cached), Go heap %.1f MiB",
			method, mib(rep.PeakRSS), mib(rep.BaselineRSS), mib(rep.PeakAccounted), float64(rep.PeakRSS-rep.BaselineRSS)/float64(rep.PeakAccounted),
			mib(rep.Reserved), mib(rep.Cached), mib(rep.HeapSys))
		limit := int64(1.15*float64(rep.PeakAccounted)) + rep.BaselineRSS + rssOverhead
		require.LessOrEqual(t, rep.PeakRSS, limit, "%s: peak RSS %.1f MiB over %.1f MiB", method, mib(rep.PeakRSS), mib(limit))
	}
}
