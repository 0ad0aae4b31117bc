// Command paca fine-tunes HuggingFace LLaMA-family models with Partial
// Connection Adaptation (PaCA) and evaluates them.
//
// Usage:
//
//	paca <command> [arguments]
//
// The commands are:
//
//	demo         pre-train a small model, then compare PaCA, LoRA and full fine-tuning
//	train        fine-tune a model with PaCA, LoRA, DoRA, their 4-bit variants, or fully
//	eval         loss and perplexity, or multiple-choice accuracy, of a model on JSONL
//	generate     continue a prompt or a chat turn, with or without an adapter
//	merge        fold an adapter into its base model and write an HF checkpoint
//	export-lora  write a PaCA adapter as the equivalent LoRA adapter
//	inspect      describe a checkpoint, an adapter or a safetensors file
//	tokenize     print the token ids of the text on stdin as a JSON array
//	bench        measure step time and memory of PaCA, LoRA, full fine-tuning and their variants
//
// Use "paca <command> -h" for more about a command.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	accel "github.com/gopaca/paca"
)

// command is one subcommand of the tool.
type command struct {
	name  string
	short string
	run   func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"demo", "pre-train a small model, then compare PaCA, LoRA and full fine-tuning", runDemo},
	{"train", "fine-tune a model with PaCA, LoRA, DoRA, their 4-bit variants, or fully", runTrain},
	{"eval", "loss and perplexity, or multiple-choice accuracy, of a model on JSONL", runEval},
	{"generate", "continue a prompt or a chat turn, with or without an adapter", runGenerate},
	{"merge", "fold an adapter into its base model and write an HF checkpoint", runMerge},
	{"export-lora", "write a PaCA adapter as the equivalent LoRA adapter", runExportLoRA},
	{"inspect", "describe a checkpoint, an adapter or a safetensors file", runInspect},
	{"tokenize", "print the token ids of the text on stdin as a JSON array", runTokenize},
	{"bench", "measure step time and memory of PaCA, LoRA, full fine-tuning and their variants", runBench},
}

// stdin is where commands read text from; tests replace it.
var stdin io.Reader = os.Stdin

// errUsage marks a command-line mistake: the flag package has already
// printed what was wrong, and the exit status is 2.
var errUsage = errors.New("usage")

func main() {
	initBackend(os.Stderr)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// initBackend puts tensors on the GPU in a build with -tags cuda, or says
// once why it cannot (bench's worker processes stay quiet: their parent
// said it).
func initBackend(stderr io.Writer) {
	if _, err := accel.Init(); err != nil && os.Getenv(benchChildEnv) != "1" {
		fmt.Fprintf(stderr, "paca: no usable CUDA GPU (%v); running on the CPU\n", err)
	}
}

// run executes the tool and returns its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			default:
				fmt.Fprintf(stderr, "paca %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "paca: unknown command %q\nRun 'paca help' for usage.\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Paca fine-tunes HuggingFace LLaMA-family models with Partial Connection Adaptation.\n\n")
	fmt.Fprintf(w, "Usage:\n\n\tpaca <command> [arguments]\n\nThe commands are:\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-12s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nUse \"paca <command> -h\" for more about a command.\n")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints usage text in the style of the go tool.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("paca "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: paca %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, mapping flag errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// required reports a missing required flag as a usage error.
func required(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range names {
		if !set[n] {
			fmt.Fprintf(fs.Output(), "missing required flag -%s\n", n)
			fs.Usage()
			return errUsage
		}
	}
	return nil
}
