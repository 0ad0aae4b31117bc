package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// Question is a multiple-choice record, as MMLU-style JSONL holds them:
//
//	{"question": "...", "choices": ["...", "..."], "answer": 2}
//
// where answer is the index of the right choice, or its letter ("C").
type Question struct {
	Question string
	Choices  []string
	Answer   int
	Subject  string // optional "subject" field
	Line     int
}

// IsQuestions reports whether the first record of the JSONL file at path
// is a multiple-choice question.
func IsQuestions(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var probe map[string]json.RawMessage
			if json.Unmarshal(t, &probe) != nil {
				return false, nil
			}
			_, q := probe["question"]
			_, c := probe["choices"]
			return q && c, nil
		}
		if err != nil {
			return false, nil
		}
	}
}

// ReadQuestions reads multiple-choice records. Errors name file and line.
func ReadQuestions(path string) ([]Question, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseQuestions(f, path)
}

// ParseQuestions reads multiple-choice records from r; name is used in
// errors.
func ParseQuestions(r io.Reader, name string) ([]Question, error) {
	var qs []Question
	err := readLines(r, name, func(lineNo int, line []byte) error {
		q, err := parseQuestion(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		q.Line = lineNo
		qs = append(qs, q)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no records", name)
	}
	return qs, nil
}

func parseQuestion(line []byte) (Question, error) {
	var raw struct {
		Question *string         `json:"question"`
		Choices  []string        `json:"choices"`
		Answer   json.RawMessage `json:"answer"`
		Subject  string          `json:"subject"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Question{}, fmt.Errorf("invalid record: %w", err)
	}
	q := Question{Choices: raw.Choices, Subject: raw.Subject}
	switch {
	case raw.Question == nil:
		return q, fmt.Errorf("missing \"question\"")
	case len(raw.Choices) < 2:
		return q, fmt.Errorf("\"choices\" needs at least 2 entries, has %d", len(raw.Choices))
	case len(raw.Answer) == 0:
		return q, fmt.Errorf("missing \"answer\"")
	}
	q.Question = *raw.Question
	var idx int
	var letter string
	switch {
	case json.Unmarshal(raw.Answer, &idx) == nil:
	case json.Unmarshal(raw.Answer, &letter) == nil && len(strings.TrimSpace(letter)) == 1:
		idx = int(strings.ToUpper(strings.TrimSpace(letter))[0]) - 'A'
	default:
		return q, fmt.Errorf("\"answer\" must be a choice index or letter, got %s", raw.Answer)
	}
	if idx < 0 || idx >= len(q.Choices) {
		return q, fmt.Errorf("\"answer\" %s is not one of the %d choices", raw.Answer, len(q.Choices))
	}
	q.Answer = idx
	return q, nil
}
