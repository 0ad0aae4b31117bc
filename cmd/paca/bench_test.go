package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMain lets "paca bench" re-execute this test binary as the tool: a
// worker process finds benchChildEnv set and runs the command line it was
// given instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type benchJSON struct {
	Order   []string `json:"order"`
	Methods map[string]struct {
		StepMS         float64          `json:"step_ms"`
		TokensPerS     float64          `json:"tokens_per_s"`
		PeakBytes      int64            `json:"peak_bytes"`
		PeakRSSBytes   int64            `json:"peak_rss_bytes"`
		MaxSeqLen      int              `json:"max_seq_len"`
		PeakByCategory map[string]int64 `json:"peak_by_category"`
		RSSMode        string           `json:"rss_mode"`
	} `json:"methods"`
	Ratios map[string]map[string]float64 `json:"ratios_to_lora"`
}

// Each method runs in a worker process of its own; the JSON, Markdown and
// PNG files are written and the table is printed.
func TestBenchChildProcesses(t *testing.T) {
	dir := t.TempDir()
	js, md, png := filepath.Join(dir, "b.json"), filepath.Join(dir, "b.md"), filepath.Join(dir, "b.png")
	code, out, errOut := runPaca("bench", "--shape", "tiny", "--seq-len", "32", "--batch-size", "2", "--rank", "4",
		"--methods", "paca,lora,qpaca", "--steps", "2", "--warmup", "1",
		"--max-seq-len", "--memory-budget", "3MiB", "--seq-step", "16", "--seq-limit", "256",
		"--json", js, "--markdown", md, "--png", png)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ratios to LoRA")
	var rep benchJSON
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Equal(t, []string{"paca", "lora", "qpaca"}, rep.Order)
	for _, name := range rep.Order {
		m := rep.Methods[name]
		require.Greater(t, m.StepMS, 0.0)
		require.Greater(t, m.TokensPerS, 0.0)
		require.Greater(t, m.PeakBytes, int64(0))
		require.Greater(t, m.PeakRSSBytes, int64(0))
		require.Greater(t, m.MaxSeqLen, 0)
		require.Contains(t, m.PeakByCategory, "saved")
		require.Contains(t, m.RSSMode, "child process")
	}
	require.InDelta(t, rep.Methods["paca"].StepMS/rep.Methods["lora"].StepMS, rep.Ratios["paca"]["step_time"], 1e-9)
	for _, p := range []string{md, png} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Greater(t, st.Size(), int64(100))
	}
}

func TestBenchInProcess(t *testing.T) {
	code, out, errOut := runPaca("bench", "--shape", "tiny", "--seq-len", "16", "--rank", "2",
		"--methods", "full,lora", "--steps", "1", "--warmup", "0", "--in-process")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "clear_refs")
	require.NotContains(t, out, "child process")
}

func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--shape", "gpt-5"},
		{"--shape", "tiny", "--methods", "paca,ia3"},
		{"--shape", "tiny", "--targets", "x_proj"},
		{"--shape", "tiny", "--max-seq-len", "--memory-budget", "lots"},
		{"--shape", "tiny", "--steps", "0"},
		{"--model", "/nonexistent"},
	} {
		code, _, errOut := runPaca(append([]string{"bench"}, args...)...)
		require.Equal(t, 1, code, "%v: %s", args, errOut)
		require.Contains(t, errOut, "paca bench:")
	}
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"4GiB": 4 << 30, "4 GiB": 4 << 30, "1.5MiB": 3 << 19, "1000": 1000, "2GB": 2e9, "7B": 7} {
		got, err := parseBytes(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "-1", "GiB", "4TiB?", "0"} {
		_, err := parseBytes(s)
		require.Error(t, err, s)
	}
}
