// Package data reads training data.
//
// The format read here is pre-tokenized JSON Lines: one JSON object per
// line, {"input_ids": [ints], "labels": [ints]}. labels is optional and
// defaults to a copy of input_ids; a label of -100 (IgnoreIndex) marks a
// position that the loss skips. Blank lines are skipped. Anything else —
// unknown fields, non-integer or negative ids, mismatched lengths — is an
// error that names the file and line, because a silently misread dataset
// costs a whole training run.
package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// IgnoreIndex is the label that excludes a position from the loss, as in
// PyTorch's cross_entropy and HuggingFace's causal-LM loss.
const IgnoreIndex = -100

// Record is one training example.
type Record struct {
	// InputIDs are the token ids fed to the model; never empty.
	InputIDs []int32
	// Labels has one entry per input id: a token id or IgnoreIndex.
	// Shifting for next-token prediction is left to the loss.
	Labels []int32
	// Line is the 1-based line of the file the record came from.
	Line int
}

// ReadTokenized reads a pre-tokenized JSONL file. See ParseTokenized.
func ReadTokenized(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseTokenized(f, path)
}

// ParseTokenized reads pre-tokenized JSONL records from r. name is the
// file name used in error messages, which read "name:line: problem".
// Lines may be of any length. An input with no records is an error.
func ParseTokenized(r io.Reader, name string) ([]Record, error) {
	var recs []Record
	err := readLines(r, name, func(lineNo int, line []byte) error {
		rec, err := parseRecord(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		rec.Line = lineNo
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no records", name)
	}
	return recs, nil
}

// CheckVocab reports the first input id or label, in file order, that is
// not below vocab, naming file and line: such an id would index past the
// embedding table.
func CheckVocab(recs []Record, vocab int, name string) error {
	for _, r := range recs {
		for i, id := range r.InputIDs {
			if int(id) >= vocab {
				return fmt.Errorf("%s:%d: input_ids[%d] is %d, outside the vocabulary of %d tokens", name, r.Line, i, id, vocab)
			}
		}
		for i, id := range r.Labels {
			if int(id) >= vocab {
				return fmt.Errorf("%s:%d: labels[%d] is %d, outside the vocabulary of %d tokens", name, r.Line, i, id, vocab)
			}
		}
	}
	return nil
}

// rawTextFields are fields of datasets that still need tokenizing; they get
// a more helpful message than other unknown fields.
var rawTextFields = map[string]bool{
	"text": true, "prompt": true, "completion": true, "messages": true,
	"conversations": true, "instruction": true, "input": true,
	"output": true, "response": true, "chosen": true, "rejected": true,
}

// parseRecord parses one line, already trimmed of surrounding space.
func parseRecord(line []byte) (Record, error) {
	var rec Record
	// Validate first, so that the scanner below can rely on well-formed
	// JSON and the syntax error comes from encoding/json.
	if !json.Valid(line) {
		var v json.RawMessage
		err := json.Unmarshal(line, &v)
		if err == nil {
			err = errors.New("malformed")
		}
		return rec, fmt.Errorf("invalid JSON: %v", err)
	}
	p := scanner{b: line}
	if p.peek() != '{' {
		return rec, errors.New("record is not a JSON object")
	}
	p.i++
	var haveIDs, haveLabels bool
	for p.skipSpace(); p.peek() != '}'; p.skipSpace() {
		key, err := p.str()
		if err != nil {
			return rec, err
		}
		p.skipSpace()
		p.i++ // ':'
		p.skipSpace()
		switch key {
		case "input_ids":
			if haveIDs {
				return rec, errors.New(`duplicate field "input_ids"`)
			}
			haveIDs = true
			ids, isNull, err := p.ints("input_ids", false)
			if err != nil {
				return rec, err
			}
			if isNull {
				return rec, errors.New("input_ids is null, want an array of token ids")
			}
			rec.InputIDs = ids
		case "labels":
			if haveLabels {
				return rec, errors.New(`duplicate field "labels"`)
			}
			haveLabels = true
			labels, isNull, err := p.ints("labels", true)
			if err != nil {
				return rec, err
			}
			if !isNull {
				rec.Labels = labels
			}
		default:
			if rawTextFields[key] {
				return rec, fmt.Errorf("unknown field %q: this file is not pre-tokenized; "+
					`only {"input_ids": [...], "labels": [...]} records are accepted here`, key)
			}
			return rec, fmt.Errorf(`unknown field %q: only "input_ids" and "labels" are accepted`, key)
		}
		p.skipSpace()
		if p.peek() == ',' {
			p.i++
		}
	}
	switch {
	case !haveIDs:
		return rec, errors.New("missing input_ids")
	case len(rec.InputIDs) == 0:
		return rec, errors.New("input_ids is empty")
	case rec.Labels == nil:
		rec.Labels = append([]int32(nil), rec.InputIDs...)
	case len(rec.Labels) != len(rec.InputIDs):
		return rec, fmt.Errorf("labels has %d values, input_ids has %d", len(rec.Labels), len(rec.InputIDs))
	}
	return rec, nil
}

// scanner walks a line that json.Valid has accepted, so it only needs to
// tell value kinds apart, never to diagnose syntax.
type scanner struct {
	b []byte
	i int
}

func (p *scanner) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *scanner) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// str reads a JSON string, decoding escapes if there are any.
func (p *scanner) str() (string, error) {
	start := p.i
	p.i++ // opening quote
	escaped := false
	for p.i < len(p.b) && p.b[p.i] != '"' {
		if p.b[p.i] == '\\' {
			escaped = true
			p.i++
		}
		p.i++
	}
	p.i++ // closing quote
	raw := p.b[start:min(p.i, len(p.b))]
	if !escaped {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("invalid JSON: %v", err)
	}
	return s, nil
}

// ints reads null or an array of integers as token ids: each must be
// non-negative and fit in int32, or be IgnoreIndex where allowIgnore.
func (p *scanner) ints(field string, allowIgnore bool) (vals []int32, isNull bool, err error) {
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += len("null")
		return nil, true, nil
	}
	if p.peek() != '[' {
		return nil, false, fmt.Errorf("%s is not an array of token ids", field)
	}
	p.i++
	vals = []int32{}
	for p.skipSpace(); p.peek() != ']'; p.skipSpace() {
		start := p.i
		for p.i < len(p.b) && isNumberByte(p.b[p.i]) {
			p.i++
		}
		tok := string(p.b[start:p.i])
		k := len(vals)
		if tok == "" {
			return nil, false, fmt.Errorf("%s[%d] is not an integer", field, k)
		}
		v, err := strconv.ParseInt(tok, 10, 64)
		switch {
		case err != nil && errors.Is(err, strconv.ErrRange):
			return nil, false, fmt.Errorf("%s[%d] is %s, too large for a token id", field, k, tok)
		case err != nil:
			return nil, false, fmt.Errorf("%s[%d] is %s, not an integer", field, k, tok)
		case allowIgnore && v == IgnoreIndex:
		case v < 0 && allowIgnore:
			return nil, false, fmt.Errorf("%s[%d] is %d; labels must be token ids or %d", field, k, v, IgnoreIndex)
		case v < 0:
			return nil, false, fmt.Errorf("%s[%d] is %d; token ids must be non-negative", field, k, v)
		case v > math.MaxInt32:
			return nil, false, fmt.Errorf("%s[%d] is %d, too large for a token id", field, k, v)
		}
		vals = append(vals, int32(v))
		p.skipSpace()
		if p.peek() == ',' {
			p.i++
		}
	}
	p.i++ // ']'
	return vals, false, nil
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}
