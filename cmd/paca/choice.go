package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/gopaca/paca/data"
	"github.com/gopaca/paca/nn"
)

// choicePrompt renders a k-shot multiple-choice prompt in the MMLU style:
// the shots with their answers, then the question, ending in "Answer:".
func choicePrompt(shots []data.Question, q data.Question) string {
	var b strings.Builder
	b.WriteString("The following are multiple choice questions (with answers)")
	if q.Subject != "" {
		fmt.Fprintf(&b, " about %s", strings.ReplaceAll(q.Subject, "_", " "))
	}
	b.WriteString(".\n\n")
	for _, s := range shots {
		writeQuestion(&b, s)
		fmt.Fprintf(&b, " %c\n\n", 'A'+s.Answer)
	}
	writeQuestion(&b, q)
	return b.String()
}

func writeQuestion(b *strings.Builder, q data.Question) {
	b.WriteString(strings.TrimSpace(q.Question))
	for i, c := range q.Choices {
		fmt.Fprintf(b, "\n%c. %s", 'A'+i, strings.TrimSpace(c))
	}
	b.WriteString("\nAnswer:")
}

// encoder is the part of a tokenizer multiple-choice scoring needs.
type encoder interface {
	Encode(text string, addSpecial bool) []int32
}

// multipleChoice returns the fraction of questions whose right choice's
// letter (" A", " B", …) is the most likely continuation of the k-shot
// prompt. The first shots questions serve as examples and are not scored.
func multipleChoice(m *nn.Model, tok encoder, qs []data.Question, shots int) (acc float64, n int, err error) {
	if shots >= len(qs) {
		return 0, 0, fmt.Errorf("--shots %d leaves none of the %d questions to score", shots, len(qs))
	}
	right := 0
	for _, q := range qs[shots:] {
		prompt := tok.Encode(choicePrompt(qs[:shots], q), true)
		best, bestLL := -1, math.Inf(-1)
		for i := range q.Choices {
			cont := tok.Encode(fmt.Sprintf(" %c", 'A'+i), false)
			if len(prompt)+len(cont) > m.Config.MaxPositions {
				return 0, 0, fmt.Errorf("line %d: the %d-shot prompt has %d tokens, more than max_position_embeddings %d", q.Line, shots, len(prompt)+len(cont), m.Config.MaxPositions)
			}
			if ll := logLikelihood(m, prompt, cont); ll > bestLL {
				best, bestLL = i, ll
			}
		}
		if best == q.Answer {
			right++
		}
	}
	n = len(qs) - shots
	return float64(right) / float64(n), n, nil
}

// logLikelihood is log p(cont | prompt) under the model.
func logLikelihood(m *nn.Model, prompt, cont []int32) float64 {
	ids := append(append([]int32(nil), prompt...), cont...)
	logits := m.Forward(nil, ids, 1, len(ids))
	defer logits.Release()
	v := logits.Cols()
	z := logits.Data()
	var ll float64
	for j, target := range cont {
		row := z[(len(prompt)+j-1)*v : (len(prompt)+j)*v] // the position that predicts cont[j]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, float64(x))
		}
		var sum float64
		for _, x := range row {
			sum += math.Exp(float64(x) - mx)
		}
		ll += float64(row[target]) - mx - math.Log(sum)
	}
	return ll
}
