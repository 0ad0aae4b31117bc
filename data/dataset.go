package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
)

// Tokenizer is what Load needs from a tokenizer; *tokenizer.Tokenizer
// satisfies it.
type Tokenizer interface {
	// Encode tokenizes text. addSpecial adds what the tokenizer's
	// post-processor adds (e.g. BOS).
	Encode(text string, addSpecial bool) []int32
	// TokenID returns the id of a token given as a string.
	TokenID(tok string) (int32, bool)
	// SpecialToken returns the string form of a special token — role is
	// "bos", "eos", "pad" or "unk" — or "" if the tokenizer has none.
	SpecialToken(role string) string
	// ChatTemplate returns tokenizer_config.json's chat_template, or "".
	ChatTemplate() string
}

// The dataset formats Load recognises; Dataset.Format is one of them.
const (
	FormatText             = "text"              // {"text": "..."}
	FormatPromptCompletion = "prompt-completion" // {"prompt": "...", "completion": "..."}
	FormatAlpaca           = "alpaca"            // {"instruction": "...", "input": "...", "output": "..."}
	FormatChat             = "chat"              // {"messages": [{"role": "...", "content": "..."}, ...]}
	FormatTokenized        = "tokenized"         // {"input_ids": [...], "labels": [...]}
)

// The Alpaca prompt, as in Stanford Alpaca with the newline after
// "### Response:" that alpaca-lora and the tatsu-lab/alpaca "text" column
// use. The output follows it directly. The no-input form is used when
// "input" is missing, null or "".
const (
	AlpacaPrompt = "Below is an instruction that describes a task, paired with an input that provides further context. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n"
	AlpacaPromptNoInput = "Below is an instruction that describes a task. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n%s\n\n### Response:\n"
)

// Options control how Load turns records into token rows.
type Options struct {
	// SeqLen truncates each record to its first SeqLen tokens; 0 means no
	// limit. With Pack it is the length of the packed rows instead.
	SeqLen int
	// TrainOnPrompt scores every token, not only completions, outputs and
	// assistant turns. Pre-tokenized records keep the file's labels.
	TrainOnPrompt bool
	// Pack concatenates the records, in file order, into rows of exactly
	// SeqLen tokens (the last row may be shorter); see Load.
	Pack bool
	// SkipBadLines turns a malformed line into a counted skip
	// (Dataset.Skipped) instead of an error.
	SkipBadLines bool
}

// maxSkipErrors is how many skipped lines' errors Dataset.SkipErrors keeps.
const maxSkipErrors = 10

// Dataset is a loaded training file.
type Dataset struct {
	// Records are the token rows, in file order (packed rows when packing).
	Records []Record
	// Format is the file's format, one of the Format constants.
	Format string
	// Skipped counts the malformed lines skipped under SkipBadLines;
	// SkipErrors holds the first few of their errors ("file:line: ...").
	Skipped    int
	SkipErrors []error
	// Truncated counts the records cut to SeqLen (never when packing).
	Truncated int
	// Masked counts the records — before packing, after truncation — in
	// which the loss scores no token: every label after the first is
	// IgnoreIndex (the first label is never a target). Such records are
	// kept; a caller should warn about them.
	Masked int
}

// Load reads a JSON Lines dataset: one JSON object per line, blank lines
// skipped. The format is recognised per line by its fields, and every
// line must be in the format of the file's first well-formed line:
//
//   - "input_ids" (or "labels"): pre-tokenized, as ParseTokenized reads it;
//     no other field is allowed, and tok may be nil for such a file
//     unless Pack is set.
//   - "messages": a chat, a list of {"role", "content"} with roles system,
//     user and assistant, rendered with the tokenizer's chat template.
//   - "instruction" or "output": Alpaca; "input" is optional.
//   - "prompt" or "completion": both are needed.
//   - "text".
//
// A line is recognised in that order, so e.g. an Alpaca line may also
// carry a "text" field; other fields (ids, metadata) are ignored.
//
// Tokens and labels:
//
//   - text: Encode(text, true) — so BOS where the tokenizer adds one —
//     then EOS; every token is scored.
//   - prompt/completion and Alpaca (whose prompt is AlpacaPrompt or
//     AlpacaPromptNoInput): prompt and completion are encoded as one text,
//     Encode(prompt+completion, true); if the prompt's own encoding is not
//     a prefix of that (a token spans the boundary), the record is the
//     prompt's encoding followed by Encode(completion, false), which is
//     what the model sees at generation time. EOS follows. Only the
//     completion and the EOS are scored unless TrainOnPrompt.
//   - chat: the template's rendering of the whole conversation, encoded
//     with Encode(text, false) as transformers' apply_chat_template does
//     (templates write BOS themselves); no EOS is added. Unless
//     TrainOnPrompt, only assistant turns are scored, found by rendering
//     prefixes of the conversation: turn i starts where the rendering of
//     messages[:i] with add_generation_prompt ends, and ends where the
//     rendering of messages[:i+1] ends, so a turn's span includes the
//     template's end-of-turn marker (e.g. <|im_end|>, <|eot_id|>, </s>)
//     and whatever the template writes after it in the same turn. Each
//     boundary is mapped to tokens by encoding the prefix text: the
//     tokens it shares with the whole encoding lie before the boundary,
//     and a token that spans a boundary is scored. A template whose
//     prefixes do not render as prefixes of the whole conversation (one
//     that rewrites earlier turns) cannot be masked this way and is an
//     error for that line; TrainOnPrompt needs no prefixes.
//
// Without Pack, a record longer than SeqLen (when SeqLen > 0) keeps its
// first SeqLen tokens. With Pack (SeqLen > 0 required), records are not
// truncated but concatenated in file order into rows of SeqLen tokens, a
// record running on into the next row where it does not fit; the last
// row may be shorter. Between two records an EOS is inserted unless the
// first already ends with one; the inserted EOS is not scored, and the
// first token of every record is not scored either, so that no record is
// trained to predict the next, and each record's scored tokens are those
// it has unpacked, except a token that starts a row (never a target).
// Attention in a packed row is plain causal attention across the
// documents in it: a token may attend to earlier records of its row.
//
// A malformed line — not JSON, not an object, a missing field, a field of
// the wrong type, an unknown role or format, a format other than the
// file's, a conversation the chat template rejects — is an error naming
// the file and line ("file:line: problem"), or with SkipBadLines a
// counted skip. Errors that no line can fix — no chat template, a
// template that does not compile, no EOS token where one is needed, bad
// options — are returned at once. A file with no records is an error.
func Load(path string, tok Tokenizer, opt Options) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return LoadFrom(f, path, tok, opt)
}

// LoadFrom is Load reading from r; name is the file name in errors.
func LoadFrom(r io.Reader, name string, tok Tokenizer, opt Options) (*Dataset, error) {
	if opt.SeqLen < 0 {
		return nil, fmt.Errorf("%s: sequence length %d is negative", name, opt.SeqLen)
	}
	if opt.Pack && opt.SeqLen == 0 {
		return nil, fmt.Errorf("%s: packing needs a sequence length", name)
	}
	b := &builder{tok: tok, opt: opt, name: name}
	ds := &Dataset{}
	var recs []Record
	firstLine := 0
	err := readLines(r, name, func(lineNo int, line []byte) error {
		ex, err := parseLine(line)
		if err == nil && ds.Format != "" && ex.format != ds.Format {
			err = fmt.Errorf("a record in format %q, but the file's format is %q (from line %d)", ex.format, ds.Format, firstLine)
		}
		var rec Record
		if err == nil {
			rec, err = b.build(ex)
		}
		if err != nil {
			var fatal *fatalError
			if errors.As(err, &fatal) {
				return fmt.Errorf("%s:%d: %w", name, lineNo, fatal.err)
			}
			err = fmt.Errorf("%s:%d: %w", name, lineNo, err)
			if !opt.SkipBadLines {
				return err
			}
			ds.Skipped++
			if len(ds.SkipErrors) < maxSkipErrors {
				ds.SkipErrors = append(ds.SkipErrors, err)
			}
			return nil
		}
		if ds.Format == "" {
			ds.Format, firstLine = ex.format, lineNo
		}
		rec.Line = lineNo
		if !opt.Pack && opt.SeqLen > 0 && len(rec.InputIDs) > opt.SeqLen {
			rec.InputIDs, rec.Labels = rec.InputIDs[:opt.SeqLen:opt.SeqLen], rec.Labels[:opt.SeqLen:opt.SeqLen]
			ds.Truncated++
		}
		if !scored(rec.Labels) {
			ds.Masked++
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		if ds.Skipped > 0 {
			return nil, fmt.Errorf("%s: no records (%d malformed lines skipped; the first: %v)", name, ds.Skipped, ds.SkipErrors[0])
		}
		return nil, fmt.Errorf("%s: no records", name)
	}
	if opt.Pack {
		eos, err := b.eosID()
		if err != nil {
			return nil, fmt.Errorf("%s: packing: %w", name, err)
		}
		recs = pack(recs, opt.SeqLen, eos)
	}
	ds.Records = recs
	return ds, nil
}

// fatalError marks an error that skipping lines cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// scored reports whether the loss counts any of labels: a label after
// the first that is not IgnoreIndex.
func scored(labels []int32) bool {
	for _, l := range labels[min(1, len(labels)):] {
		if l != IgnoreIndex {
			return true
		}
	}
	return false
}

// readLines calls fn for every non-blank line of r, trimmed of
// surrounding space and, on the first line, of a UTF-8 byte order mark.
// Lines may be of any length.
func readLines(r io.Reader, name string, fn func(lineNo int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var line []byte
	for lineNo := 1; ; lineNo++ {
		line = line[:0]
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			line = append(line, chunk...)
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			if ferr := fn(lineNo, trimmed); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// example is one parsed line, before tokenizing.
type example struct {
	format                     string
	text                       string // text
	prompt, completion         string // prompt-completion, and Alpaca once formatted
	instruction, input, output string // Alpaca
	messages                   []Message
	rec                        Record // tokenized
}

// parseLine parses one line, already trimmed, and recognises its format.
func parseLine(line []byte) (example, error) {
	var ex example
	if !json.Valid(line) {
		var v json.RawMessage
		err := json.Unmarshal(line, &v)
		if err == nil {
			err = errors.New("malformed")
		}
		return ex, fmt.Errorf("invalid JSON: %v", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return ex, errors.New("record is not a JSON object")
	}
	has := func(k string) bool { _, ok := obj[k]; return ok }
	var err error
	switch {
	case has("input_ids") || has("labels"):
		ex.format = FormatTokenized
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if k != "input_ids" && k != "labels" {
				return ex, fmt.Errorf("field %q in a pre-tokenized record, which has only input_ids and labels", k)
			}
		}
		ex.rec, err = parseRecord(line)
	case has("messages"):
		ex.format = FormatChat
		ex.messages, err = parseMessages(obj["messages"])
	case has("instruction") || has("output"):
		ex.format = FormatAlpaca
		if ex.instruction, err = stringField(obj, "instruction", true); err != nil {
			break
		}
		if ex.input, err = stringField(obj, "input", false); err != nil {
			break
		}
		if ex.output, err = stringField(obj, "output", true); err != nil {
			break
		}
		if ex.input == "" {
			ex.prompt = fmt.Sprintf(AlpacaPromptNoInput, ex.instruction)
		} else {
			ex.prompt = fmt.Sprintf(AlpacaPrompt, ex.instruction, ex.input)
		}
		ex.completion = ex.output
	case has("prompt") || has("completion"):
		ex.format = FormatPromptCompletion
		if ex.prompt, err = stringField(obj, "prompt", true); err != nil {
			break
		}
		ex.completion, err = stringField(obj, "completion", true)
	case has("text"):
		ex.format = FormatText
		if ex.text, err = stringField(obj, "text", true); err == nil && ex.text == "" {
			err = errors.New("text is empty")
		}
	default:
		keys := slices.Sorted(maps.Keys(obj))
		if len(keys) == 0 {
			return ex, errors.New(`unknown format: the record has no fields; want "text", "prompt"/"completion", ` +
				`"instruction"/"input"/"output", "messages" or "input_ids"/"labels"`)
		}
		return ex, fmt.Errorf(`unknown format: fields %q; want "text", "prompt"/"completion", `+
			`"instruction"/"input"/"output", "messages" or "input_ids"/"labels"`, keys)
	}
	return ex, err
}

// stringField reads obj[key] as a string. A missing optional field, or
// an optional null, reads as "".
func stringField(obj map[string]json.RawMessage, key string, required bool) (string, error) {
	raw, ok := obj[key]
	if !ok {
		if required {
			return "", fmt.Errorf("missing %q", key)
		}
		return "", nil
	}
	return jsonString(raw, key, required)
}

func jsonString(raw json.RawMessage, what string, required bool) (string, error) {
	switch kind := jsonKind(raw); kind {
	case "a string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%s: %v", what, err)
		}
		return s, nil
	case "null":
		if !required {
			return "", nil
		}
		fallthrough
	default:
		return "", fmt.Errorf("%s is %s, want a string", what, kind)
	}
}

// jsonKind names the kind of a valid JSON value.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// chatRoles are the roles a chat record may use.
var chatRoles = map[string]bool{"system": true, "user": true, "assistant": true}

func parseMessages(raw json.RawMessage) ([]Message, error) {
	if k := jsonKind(raw); k != "an array" {
		return nil, fmt.Errorf("messages is %s, want an array of {\"role\", \"content\"} objects", k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("messages: %v", err)
	}
	if len(items) == 0 {
		return nil, errors.New("messages is empty")
	}
	msgs := make([]Message, len(items))
	for i, it := range items {
		if k := jsonKind(it); k != "an object" {
			return nil, fmt.Errorf("messages[%d] is %s, want a {\"role\", \"content\"} object", i, k)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(it, &obj); err != nil {
			return nil, fmt.Errorf("messages[%d]: %v", i, err)
		}
		var err error
		if msgs[i].Role, err = stringField(obj, "role", true); err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		if !chatRoles[msgs[i].Role] {
			return nil, fmt.Errorf("messages[%d].role is %q; want system, user or assistant", i, msgs[i].Role)
		}
		if msgs[i].Content, err = stringField(obj, "content", true); err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
	}
	return msgs, nil
}

// builder tokenizes examples.
type builder struct {
	tok  Tokenizer
	opt  Options
	name string

	eos      int32
	eosErr   error
	eosDone  bool
	chat     *ChatTemplate
	chatErr  error
	chatDone bool
}

// eosID returns the tokenizer's EOS id, or an error if it has none.
func (b *builder) eosID() (int32, error) {
	if !b.eosDone {
		b.eosDone = true
		b.eos, b.eosErr = eosOf(b.tok)
	}
	return b.eos, b.eosErr
}

func eosOf(tok Tokenizer) (int32, error) {
	if tok == nil {
		return 0, errors.New("no tokenizer to take the EOS token from")
	}
	name := tok.SpecialToken("eos")
	if name == "" {
		return 0, errors.New("the tokenizer has no EOS token")
	}
	id, ok := tok.TokenID(name)
	if !ok {
		return 0, fmt.Errorf("the tokenizer's EOS token %q is not in its vocabulary", name)
	}
	return id, nil
}

func (b *builder) template() (*ChatTemplate, error) {
	if !b.chatDone {
		b.chatDone = true
		b.chat, b.chatErr = ChatTemplateOf(b.tok)
		if b.chatErr != nil {
			b.chatErr = fmt.Errorf("chat records need a chat template: %w", b.chatErr)
		}
	}
	return b.chat, b.chatErr
}

// build turns an example into a record (Line unset, not truncated).
func (b *builder) build(ex example) (Record, error) {
	if ex.format == FormatTokenized {
		return ex.rec, nil
	}
	if b.tok == nil {
		return Record{}, &fatalError{fmt.Errorf("%s records need a tokenizer", ex.format)}
	}
	var rec Record
	var err error
	switch ex.format {
	case FormatText:
		rec, err = b.text(ex.text)
	case FormatPromptCompletion, FormatAlpaca:
		rec, err = b.promptCompletion(ex.prompt, ex.completion)
	case FormatChat:
		rec, err = b.chatRecord(ex.messages)
	default:
		panic("data: unknown format " + ex.format)
	}
	if err == nil && len(rec.InputIDs) == 0 {
		err = errors.New("the record encodes to no tokens")
	}
	return rec, err
}

func (b *builder) text(s string) (Record, error) {
	eos, err := b.eosID()
	if err != nil {
		return Record{}, &fatalError{fmt.Errorf("text records end with EOS: %w", err)}
	}
	ids := b.tok.Encode(s, true)
	if len(ids) == 0 || ids[len(ids)-1] != eos { // a post-processor may add it
		ids = append(ids, eos)
	}
	return Record{InputIDs: ids, Labels: slices.Clone(ids)}, nil
}

func (b *builder) promptCompletion(prompt, completion string) (Record, error) {
	eos, err := b.eosID()
	if err != nil {
		return Record{}, &fatalError{fmt.Errorf("completions end with EOS: %w", err)}
	}
	p := b.tok.Encode(prompt, true)
	full := b.tok.Encode(prompt+completion, true)
	// A post-processor that appends EOS would put one after the prompt.
	if n := len(p); n > 0 && p[n-1] == eos {
		p = p[:n-1]
	}
	if n := len(full); n > 0 && full[n-1] == eos {
		full = full[:n-1]
	}
	var ids []int32
	if len(full) >= len(p) && slices.Equal(full[:len(p)], p) {
		ids = full
	} else {
		ids = slices.Concat(p, b.tok.Encode(completion, false))
	}
	ids = append(ids, eos)
	labels := slices.Clone(ids)
	if !b.opt.TrainOnPrompt {
		for i := range len(p) {
			labels[i] = IgnoreIndex
		}
	}
	return Record{InputIDs: ids, Labels: labels}, nil
}

func (b *builder) chatRecord(msgs []Message) (Record, error) {
	ct, err := b.template()
	if err != nil {
		return Record{}, &fatalError{err}
	}
	whole, err := ct.Render(msgs, false)
	if err != nil {
		return Record{}, err
	}
	ids := b.tok.Encode(whole, false)
	labels := slices.Clone(ids)
	if b.opt.TrainOnPrompt {
		return Record{InputIDs: ids, Labels: labels}, nil
	}
	for i := range labels {
		labels[i] = IgnoreIndex
	}
	for i, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		before, err := ct.Render(msgs[:i], true)
		if err != nil {
			return Record{}, fmt.Errorf("rendering messages[:%d] to find assistant turn %d: %w", i, i, err)
		}
		through, err := ct.Render(msgs[:i+1], false)
		if err != nil {
			return Record{}, fmt.Errorf("rendering messages[:%d] to find assistant turn %d: %w", i+1, i, err)
		}
		if len(through) < len(before) || through[:len(before)] != before || len(whole) < len(through) || whole[:len(through)] != through {
			return Record{}, fmt.Errorf("cannot find assistant turn %d: the chat template does not render the conversation's "+
				"beginning as a prefix of the whole conversation (train on the whole text with TrainOnPrompt instead)", i)
		}
		start := commonPrefix(b.tok.Encode(before, false), ids)
		endIDs := b.tok.Encode(through, false)
		end := commonPrefix(endIDs, ids)
		if end < len(endIDs) {
			end++ // the token that spans the end of the turn
		}
		for t := start; t < min(end, len(ids)); t++ {
			labels[t] = ids[t]
		}
	}
	return Record{InputIDs: ids, Labels: labels}, nil
}

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// pack concatenates recs into rows of seqLen tokens; see Load.
func pack(recs []Record, seqLen int, eos int32) []Record {
	total := 0
	for _, r := range recs {
		total += len(r.InputIDs) + 1
	}
	var rows []Record
	ids := make([]int32, 0, total)
	labels := make([]int32, 0, total)
	var lines []int // line of each row's first token
	add := func(id, label int32, line int) {
		if len(ids)%seqLen == 0 {
			lines = append(lines, line)
		}
		ids = append(ids, id)
		labels = append(labels, label)
	}
	for i, r := range recs {
		if i > 0 {
			prev := recs[i-1]
			if prev.InputIDs[len(prev.InputIDs)-1] != eos {
				add(eos, IgnoreIndex, prev.Line)
			}
		}
		for j, id := range r.InputIDs {
			label := r.Labels[j]
			if j == 0 {
				label = IgnoreIndex
			}
			add(id, label, r.Line)
		}
	}
	for k, line := range lines {
		lo, hi := k*seqLen, min((k+1)*seqLen, len(ids))
		rows = append(rows, Record{
			InputIDs: ids[lo:hi:hi],
			Labels:   labels[lo:hi:hi],
			Line:     line,
		})
	}
	return rows
}

// Shuffle permutes recs in place, deterministically: the same seed and
// length give the same order on every platform and Go version (a
// Fisher–Yates shuffle driven by PCG, whose output is specified).
func Shuffle(recs []Record, seed uint64) {
	src := rand.NewPCG(seed, 0x9e3779b97f4a7c15)
	for i := len(recs) - 1; i > 0; i-- {
		j := bounded(src, uint64(i+1))
		recs[i], recs[j] = recs[j], recs[i]
	}
}

// bounded returns a uniform integer in [0, n) (Lemire's method).
func bounded(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// Split holds out a random evalFraction of recs for evaluation,
// deterministically for a seed. eval gets round(evalFraction·len(recs))
// records, but at least one when evalFraction > 0 and at most all but
// one, so that training always keeps a record; evalFraction ≤ 0 (or NaN)
// holds out nothing. Both parts keep the records' order in recs, and
// recs itself is not changed.
func Split(recs []Record, evalFraction float64, seed uint64) (train, eval []Record) {
	n := len(recs)
	nEval := 0
	if evalFraction > 0 && n > 1 {
		nEval = int(math.Round(math.Min(evalFraction, 1) * float64(n)))
		nEval = max(1, min(nEval, n-1))
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	src := rand.NewPCG(seed, 0x9e3779b97f4a7c15)
	for i := n - 1; i > 0; i-- {
		j := bounded(src, uint64(i+1))
		idx[i], idx[j] = idx[j], idx[i]
	}
	held := make([]bool, n)
	for _, i := range idx[:nEval] {
		held[i] = true
	}
	train, eval = make([]Record, 0, n-nEval), make([]Record, 0, nEval)
	for i, r := range recs {
		if held[i] {
			eval = append(eval, r)
		} else {
			train = append(train, r)
		}
	}
	return train, eval
}
