package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/gopaca/paca/tensor"
)

// RSSNote explains the RSS columns; the table and the Markdown print it.
const RSSNote = `Peak RSS is the process's resident-set high-water mark (VmHWM) while the method ran: model
build, adaptation and training. "train RSS" is the same mark reset once the model, adapters and
optimizer state were in place (/proc/self/clear_refs), i.e. the peak over the training steps.
Quantized methods build the float32 model before quantizing it: their peak RSS includes it where it
exceeds the training peak; their train RSS never does. RSS above the accounted peak is what the
process holds beyond live tensors: the runtime and binary, freed buffers kept for reuse, rounding.`

func mib(n int64) string {
	if n == 0 {
		return "–"
	}
	return tensor.FormatBytes(n)
}

// stepCells formats the step time and tokens/s, "–" without timed steps.
func stepCells(m *Result) (string, string) {
	if m.StepMS == 0 {
		return "–", "–"
	}
	return fmt.Sprintf("%.1f ms", m.StepMS), fmt.Sprintf("%.1f", m.TokensPerS)
}

// interleaved is the line on the steps timed with the methods taking
// turns, or "" without them.
func (r *Report) interleaved() string {
	if r.Interleave == 0 {
		return ""
	}
	var parts []string
	for _, name := range r.Order {
		p := fmt.Sprintf("%s %.1f ms", name, r.Methods[name].InterleavedStepMS)
		if q, ok := r.Ratios[name]; ok && q.Interleaved > 0 {
			p += fmt.Sprintf(" (%s)", ratio(q.Interleaved))
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("methods taking turns step by step in one process, median of %d steps each (ratio to LoRA): %s",
		r.Interleave, strings.Join(parts, ", "))
}

// cpuCell formats the CPU time per step, "–" where there is none.
func cpuCell(m *Result) string {
	if m.StepCPUMS == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", m.StepCPUMS)
}

func ratio(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

// header lines shared by the table and the Markdown.
func (r *Report) describe() []string {
	lines := []string{r.Note}
	lines = append(lines, fmt.Sprintf("%d base parameters, frozen weight matrices %s (full fine-tuning: f32); batch %d × seq %d, rank %d (alpha %g) on %s; AdamW lr %g, clip 1.0, random tokens; %d warm-up + %d timed steps (median)",
		r.Params, r.DType, r.BatchSize, r.SeqLen, r.Rank, r.Alpha, strings.Join(r.Targets, ","), r.LR, r.Warmup, r.Steps))
	lines = append(lines, fmt.Sprintf("%s; %d CPUs, GOMAXPROCS %d; %s; %s", orDash(r.CPU), r.NumCPU, r.GOMAXPROCS, r.GoVersion, r.Date))
	if r.Backend != "" && r.Backend != "cpu" {
		lines = append(lines, "backend: "+r.Backend)
	}
	if r.MemoryBudget > 0 {
		lines = append(lines, fmt.Sprintf("max seq len: longest multiple of %d up to %d whose peak accounted memory (one forward+backward, optimizer state allocated) fits %s",
			r.SeqStep, r.SeqLimit, mib(r.MemoryBudget)))
	}
	return lines
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func (r *Report) maxSeq(m *Result) string {
	if r.MemoryBudget == 0 {
		return "–"
	}
	s := fmt.Sprint(m.MaxSeqLen)
	if m.MaxSeqAtLimit {
		s = "≥" + s
	}
	return s
}

// WriteTable prints the results as aligned text: one row per method,
// the per-category peaks, then the ratios to LoRA.
func (r *Report) WriteTable(w io.Writer) {
	for _, l := range r.describe() {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\ttrainable\tstep (median)\tCPU/step\ttokens/s\tpeak memory\tsaved acts\tpeak RSS\ttrain RSS\tmax seq\t")
	for _, name := range r.Order {
		m := r.Methods[name]
		step, tps := stepCells(m)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, m.Trainable, step, cpuCell(m), tps,
			mib(m.PeakBytes), mib(m.PeakByCategory["saved"]), mib(m.PeakRSSBytes), mib(m.TrainPeakRSSBytes), r.maxSeq(m))
	}
	tw.Flush()

	fmt.Fprintf(w, "\npeak accounted memory by category (each category's own peak):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "method\t")
	for _, c := range tensor.Categories() {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprintln(tw, "total\t")
	for _, name := range r.Order {
		m := r.Methods[name]
		fmt.Fprintf(tw, "%s\t", name)
		for _, c := range tensor.Categories() {
			fmt.Fprintf(tw, "%s\t", mib(m.PeakByCategory[c.String()]))
		}
		fmt.Fprintf(tw, "%s\t\n", mib(m.PeakBytes))
	}
	tw.Flush()

	if r.Ratios != nil {
		fmt.Fprintf(w, "\nratios to LoRA (below 1: less time or memory than LoRA):\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "method\tstep time\tCPU time\ttokens/s\tpeak memory\tsaved acts\tpeak RSS\ttrain RSS\tmax seq\t")
		for _, name := range r.Order {
			q := r.Ratios[name]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, ratio(q.StepTime), ratio(q.StepCPU), ratio(q.TokensPerS), ratio(q.PeakBytes),
				ratio(q.PeakSaved), ratio(q.PeakRSS), ratio(q.TrainRSS), ratio(q.MaxSeqLen))
		}
		tw.Flush()
	}
	if l := r.interleaved(); l != "" {
		fmt.Fprintf(w, "\n%s\n", l)
	}
	fmt.Fprintf(w, "\n%s\nRSS measured: %s\n", RSSNote, r.rssMode())
}

func (r *Report) rssMode() string {
	for _, name := range r.Order {
		return r.Methods[name].RSSMode
	}
	return "–"
}

// WriteMarkdown writes the same tables in Markdown.
func (r *Report) WriteMarkdown(w io.Writer) {
	title := r.Shape
	if r.Model != "" {
		title = r.Model
	}
	fmt.Fprintf(w, "### paca bench: %s, batch %d, seq %d, r %d\n\n", title, r.BatchSize, r.SeqLen, r.Rank)
	for _, l := range r.describe() {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| method | trainable | step (median) | CPU/step | tokens/s | peak memory | saved acts | peak RSS | train RSS | max seq |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, name := range r.Order {
		m := r.Methods[name]
		step, tps := stepCells(m)
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, m.Trainable, step, cpuCell(m), tps,
			mib(m.PeakBytes), mib(m.PeakByCategory["saved"]), mib(m.PeakRSSBytes), mib(m.TrainPeakRSSBytes), r.maxSeq(m))
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "| method |")
	for _, c := range tensor.Categories() {
		fmt.Fprintf(w, " %s |", c)
	}
	fmt.Fprint(w, " total |\n|---|")
	for range tensor.Categories() {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w, "--:|")
	for _, name := range r.Order {
		m := r.Methods[name]
		fmt.Fprintf(w, "| %s |", name)
		for _, c := range tensor.Categories() {
			fmt.Fprintf(w, " %s |", mib(m.PeakByCategory[c.String()]))
		}
		fmt.Fprintf(w, " %s |\n", mib(m.PeakBytes))
	}
	if r.Ratios != nil {
		fmt.Fprintln(w, "\nRatios to LoRA:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| method | step time | CPU time | tokens/s | peak memory | saved acts | peak RSS | train RSS | max seq |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, name := range r.Order {
			q := r.Ratios[name]
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, ratio(q.StepTime), ratio(q.StepCPU), ratio(q.TokensPerS), ratio(q.PeakBytes),
				ratio(q.PeakSaved), ratio(q.PeakRSS), ratio(q.TrainRSS), ratio(q.MaxSeqLen))
		}
	}
	if l := r.interleaved(); l != "" {
		fmt.Fprintf(w, "\n%s\n", l)
	}
	fmt.Fprintf(w, "\n%s RSS measured: %s.\n", strings.ReplaceAll(RSSNote, "\n", " "), r.rssMode())
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// SaveJSON, SaveMarkdown write the report to a file.
func (r *Report) SaveJSON(path string) error {
	return writeFile(path, func(w io.Writer) error { return r.WriteJSON(w) })
}

// SaveMarkdown writes the Markdown tables to path.
func (r *Report) SaveMarkdown(path string) error {
	return writeFile(path, func(w io.Writer) error { r.WriteMarkdown(w); return nil })
}

func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SavePNG draws two bar charts side by side: median step time per method,
// and peak accounted memory next to peak RSS per method.
func (r *Report) SavePNG(path string) error {
	n := len(r.Order)
	if n == 0 {
		return fmt.Errorf("no results to plot")
	}
	names := r.Order
	times := make(plotter.Values, n)
	acc := make(plotter.Values, n)
	rss := make(plotter.Values, n)
	tmax, mmax := 0.0, 0.0
	for i, name := range names {
		m := r.Methods[name]
		times[i] = m.StepMS / 1000
		acc[i] = float64(m.PeakBytes) / (1 << 30)
		rss[i] = float64(m.PeakRSSBytes) / (1 << 30)
		tmax, mmax = max(tmax, times[i]), max(mmax, acc[i], rss[i])
	}
	tunit := "seconds"
	if tmax < 1 {
		tunit = "milliseconds"
		for i := range times {
			times[i] *= 1000
		}
	}
	title := r.Shape
	if r.Model != "" {
		title = r.Model
	}
	sub := fmt.Sprintf("%s, batch %d × seq %d, r %d", title, r.BatchSize, r.SeqLen, r.Rank)

	width := vg.Points(18)
	pt := plot.New()
	pt.Title.Text = "median step time\n" + sub
	pt.Y.Label.Text = tunit
	pt.Add(plotter.NewGrid())
	bt, err := plotter.NewBarChart(times, width)
	if err != nil {
		return err
	}
	bt.Color = color.RGBA{R: 38, G: 139, B: 210, A: 255}
	pt.Add(bt)
	pt.NominalX(names...)

	pm := plot.New()
	pm.Title.Text = "peak memory\n" + sub
	pm.Y.Label.Text = "GiB"
	pm.Add(plotter.NewGrid())
	ba, err := plotter.NewBarChart(acc, width)
	if err != nil {
		return err
	}
	ba.Color = color.RGBA{R: 133, G: 153, B: 0, A: 255}
	ba.Offset = -width / 2
	br, err := plotter.NewBarChart(rss, width)
	if err != nil {
		return err
	}
	br.Color = color.RGBA{R: 220, G: 50, B: 47, A: 255}
	br.Offset = width / 2
	pm.Add(ba, br)
	pm.Legend.Add("accounted", ba)
	pm.Legend.Add("RSS", br)
	pm.Legend.Top = true
	pm.Y.Min, pm.Y.Max = 0, mmax*1.2 // room for the legend
	pm.NominalX(names...)

	const w, h = 10 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(12), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{pt, pm}}, tiles, dc)
	pt.Draw(canvases[0][0])
	pm.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
