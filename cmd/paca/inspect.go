package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/nn/safetensors"
	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
)

func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", "[--tensors] PATH",
		`Inspect describes a model checkpoint directory, an adapter directory or a
single .safetensors file: its configuration, and its tensors grouped by
dtype with parameter counts. --tensors lists every tensor.`, stderr)
	all := fs.Bool("tensors", false, "list every tensor with its dtype and shape")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	path := fs.Arg(0)
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	var files []string
	switch {
	case !st.IsDir():
		files = []string{path}
	case exists(filepath.Join(path, paca.AdapterConfigFile)):
		b, err := os.ReadFile(filepath.Join(path, paca.AdapterConfigFile))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "adapter %s\n%s\n", path, strings.TrimSpace(string(b)))
		files = []string{filepath.Join(path, paca.AdapterWeightsFile)}
	default:
		cfg, err := nn.LoadConfig(filepath.Join(path, "config.json"))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "model %s: %s, %d layers, hidden %d, %d heads (%d KV, head dim %d), intermediate %d, vocab %d, RoPE %s θ=%g, tied embeddings %v\n",
			path, orLlama(cfg.ModelType), cfg.NumLayers, cfg.HiddenSize, cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim,
			cfg.IntermediateSize, cfg.VocabSize, cfg.RoPE.Type, cfg.RoPE.Theta, cfg.TieEmbeddings)
		files, err = filepath.Glob(filepath.Join(path, "*.safetensors"))
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("%s: no .safetensors files", path)
		}
	}
	return describeTensors(stdout, files, *all)
}

// describeTensors prints per-dtype counts (and with all, every tensor) of
// the files.
func describeTensors(w io.Writer, files []string, all bool) error {
	type group struct {
		tensors int
		params  int64
		bytes   int64
	}
	groups := map[safetensors.DType]*group{}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var total int64
	for _, path := range files {
		f, err := safetensors.Open(path)
		if err != nil {
			return err
		}
		for _, name := range f.Names() {
			info, _ := f.Info(name)
			g := groups[info.DType]
			if g == nil {
				g = &group{}
				groups[info.DType] = g
			}
			n := int64(info.NumElements())
			g.tensors++
			g.params += n
			g.bytes += info.End - info.Begin
			total += n
			if all {
				fmt.Fprintf(tw, "%s\t%s\t%v\t\n", name, info.DType, info.Shape)
			}
		}
		f.Close()
	}
	tw.Flush()
	dts := make([]string, 0, len(groups))
	for dt := range groups {
		dts = append(dts, string(dt))
	}
	sort.Strings(dts)
	for _, dt := range dts {
		g := groups[safetensors.DType(dt)]
		fmt.Fprintf(w, "%-5s %6d tensors  %14s values  %s\n", dt, g.tensors, commas(g.params), tensor.FormatBytes(g.bytes))
	}
	fmt.Fprintf(w, "total %s values in %d file(s)\n", commas(total), len(files))
	return nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func orLlama(s string) string {
	if s == "" {
		return "llama"
	}
	return s
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
