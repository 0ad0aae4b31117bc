package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/gopaca/paca/paca"
	"github.com/gopaca/paca/tensor"
)

// progress reports a training run: a bar redrawn in place on a terminal,
// plain log lines otherwise, and every event as a JSON line in the output
// directory's train_log.jsonl.
type progress struct {
	w       io.Writer
	tty     bool
	total   int
	start   time.Time
	first   int // step the run (or resume) started from
	tokens  int
	jsonl   *os.File
	losses  plotter.XYs
	evals   plotter.XYs
	lastLen int
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newProgress(w io.Writer, logPath string, first, total int) (*progress, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &progress{w: w, tty: isTerminal(w), total: total, start: time.Now(), first: first, jsonl: f}, nil
}

func (p *progress) event(v any) {
	b, _ := json.Marshal(v)
	p.jsonl.Write(append(b, '\n'))
}

// step records one optimizer step.
func (p *progress) step(s paca.StepLog) {
	p.tokens += s.Tokens
	el := time.Since(p.start).Seconds()
	done := s.Step - p.first
	eta := time.Duration(el / float64(done) * float64(p.total-s.Step) * float64(time.Second)).Round(time.Second)
	mem := tensor.MemStats()
	p.losses = append(p.losses, plotter.XY{X: float64(s.Step), Y: s.Loss})
	p.event(map[string]any{"step": s.Step, "loss": s.Loss, "lr": s.LR, "grad_norm": s.GradNorm,
		"tokens": s.Tokens, "tokens_per_s": float64(p.tokens) / el, "elapsed_s": el, "live_bytes": mem.LiveTotal, "peak_bytes": mem.PeakTotal})
	line := fmt.Sprintf("step %d/%d  loss %.4f  lr %.3g  grad-norm %.3g  tokens/s %.0f  eta %s  mem %s",
		s.Step, p.total, s.Loss, s.LR, s.GradNorm, float64(p.tokens)/el, eta, tensor.FormatBytes(mem.LiveTotal))
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	const width = 24
	filled := width * s.Step / p.total
	bar := "[" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + "] "
	line = bar + line
	pad := max(0, p.lastLen-len(line))
	p.lastLen = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// note prints a message on its own line (ending a terminal bar's line).
func (p *progress) note(format string, args ...any) {
	if p.tty && p.lastLen > 0 {
		fmt.Fprintln(p.w)
		p.lastLen = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// eval records an evaluation.
func (p *progress) eval(step int, loss float64, tokens int) {
	p.evals = append(p.evals, plotter.XY{X: float64(step), Y: loss})
	p.event(map[string]any{"step": step, "eval_loss": loss, "eval_tokens": tokens})
	p.note("eval at step %d: loss %.4f over %d tokens", step, loss, tokens)
}

// close ends the log and draws the loss curves into path (PNG).
func (p *progress) close(path string) error {
	if p.tty && p.lastLen > 0 {
		fmt.Fprintln(p.w)
	}
	p.jsonl.Close()
	if len(p.losses) == 0 {
		return nil
	}
	return plotLoss(path, p.losses, p.evals)
}

// plotLoss draws training (and, if any, evaluation) loss against step.
func plotLoss(path string, train, eval plotter.XYs) error {
	pl := plot.New()
	pl.Title.Text = "loss"
	pl.X.Label.Text = "step"
	pl.Y.Label.Text = "loss"
	pl.Add(plotter.NewGrid())
	l, err := plotter.NewLine(train)
	if err != nil {
		return err
	}
	pl.Add(l)
	pl.Legend.Add("train", l)
	if len(eval) > 0 {
		e, pts, err := plotter.NewLinePoints(eval)
		if err != nil {
			return err
		}
		e.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		pl.Add(e, pts)
		pl.Legend.Add("eval", e, pts)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return pl.Save(6*vg.Inch, 4*vg.Inch, path)
}
