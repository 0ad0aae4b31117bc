package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/gopaca/paca/nn"
	"github.com/gopaca/paca/paca"
)

func runMerge(args []string, stdout, stderr io.Writer) error {
	return withAdapter("merge", `Merge folds a PaCA, LoRA or DoRA adapter into its base model and writes an
HF checkpoint (config.json + model.safetensors) in the base's dtype that any
HF tool loads without PEFT.`, args, stderr, func(m *nn.Model, a *paca.Adapted, base, out string) error {
		a.Unapply()
		if err := m.Save(out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "merged into %s: wrote %s\n", base, out)
		return nil
	})
}

func runExportLoRA(args []string, stdout, stderr io.Writer) error {
	return withAdapter("export-lora", `Export-lora writes a PaCA adapter as the exactly equivalent LoRA adapter
(A selects the adapted columns, B = Δ, same alpha and r), which every
LoRA-serving tool loads. The base model gives the layers' input sizes.`, args, stderr, func(m *nn.Model, a *paca.Adapted, base, out string) error {
		abs, _ := filepath.Abs(base)
		if err := paca.ExportLoRA(out, a, abs); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote LoRA adapter %s\n", out)
		return nil
	})
}

// withAdapter parses --model, --adapter and --out, loads the model with
// the adapter applied, and hands them to do.
func withAdapter(name, about string, args []string, stderr io.Writer, do func(m *nn.Model, a *paca.Adapted, base, out string) error) error {
	fs := newFlagSet(name, "--model DIR --adapter DIR --out DIR", about, stderr)
	modelDir := fs.String("model", "", "base HF model `directory`")
	adapterDir := fs.String("adapter", "", "PEFT adapter `directory`")
	out := fs.String("out", "", "output `directory`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := required(fs, "model", "adapter", "out"); err != nil {
		return err
	}
	m, err := nn.Load(*modelDir)
	if err != nil {
		return err
	}
	defer m.Release()
	a, err := paca.LoadAdapter(*adapterDir, m, false)
	if err != nil {
		return err
	}
	return do(m, a, *modelDir, *out)
}
