package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Load reads a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parse builds a tokenizer from the bytes of a tokenizer.json.
func parse(data []byte) (*Tokenizer, error) {
	if kind(data) != "an object" {
		return nil, fmt.Errorf("not a tokenizer.json: want a JSON object, got %s", kind(data))
	}
	root, err := asObj(data, "")
	if err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	if root.has("version") {
		v, err := root.str("version")
		if err != nil {
			return nil, err
		}
		if v != "1.0" {
			return nil, errAt("version", "unknown tokenizer.json version %q (want \"1.0\")", v)
		}
	}
	t := &Tokenizer{special: map[string]string{}}
	mo, err := root.obj("model")
	if err != nil {
		return nil, err
	}
	if t.model, err = parseModel(mo); err != nil {
		return nil, err
	}
	if root.has("normalizer") {
		if t.normalizer, err = parseNormalizer(root.m["normalizer"], "normalizer"); err != nil {
			return nil, err
		}
	}
	if root.has("pre_tokenizer") {
		if t.pre, err = parsePreTokenizer(root.m["pre_tokenizer"], "pre_tokenizer"); err != nil {
			return nil, err
		}
	}
	if err := t.parseAddedTokens(root); err != nil {
		return nil, err
	}
	if root.has("post_processor") {
		if t.post, err = parsePostProcessor(root.m["post_processor"], "post_processor"); err != nil {
			return nil, err
		}
	}
	if root.has("decoder") {
		if t.decoder, err = parseDecoder(root.m["decoder"], "decoder"); err != nil {
			return nil, err
		}
	}

	maxID := int32(-1)
	for id := range t.model.idToTok {
		maxID = max(maxID, id)
	}
	for id := range t.addedByID {
		maxID = max(maxID, id)
	}
	t.vocabSize = int(maxID) + 1
	if mo.has("unk_token") {
		t.special["unk"], _, _ = mo.optStr("unk_token")
	}
	if t.post != nil {
		if ids := t.post.process(nil, true); len(ids) > 0 {
			if a, ok := t.addedByID[ids[0]]; ok && a.special {
				t.special["bos"] = a.content
			}
		}
	}
	return t, nil
}

func parseModel(o jsonObj) (*bpe, error) {
	if o.has("type") {
		typ, err := o.typ()
		if err != nil {
			return nil, err
		}
		if typ != "BPE" {
			return nil, errAt(o.at("type"), "unsupported model type %q (only BPE is supported)", typ)
		}
	} else if !o.has("merges") {
		return nil, errAt(o.place, "no type and no merges: only BPE models are supported")
	}
	if o.has("dropout") {
		var p float64
		if err := json.Unmarshal(o.m["dropout"], &p); err != nil {
			return nil, errAt(o.at("dropout"), "want a number, got %s", kind(o.m["dropout"]))
		}
		if p != 0 {
			return nil, errAt(o.at("dropout"), "BPE dropout %v is not supported (it makes encoding random)", p)
		}
	}
	for _, k := range []string{"continuing_subword_prefix", "end_of_word_suffix"} {
		s, _, err := o.optStr(k)
		if err != nil {
			return nil, err
		}
		if s != "" {
			return nil, errAt(o.at(k), "%q is not supported", s)
		}
	}
	m := &bpe{unk: -1}
	var err error
	if m.fuseUnk, err = o.boolean("fuse_unk", false); err != nil {
		return nil, err
	}
	if m.byteFallback, err = o.boolean("byte_fallback", false); err != nil {
		return nil, err
	}
	if m.ignoreMerges, err = o.boolean("ignore_merges", false); err != nil {
		return nil, err
	}

	vo, err := o.obj("vocab")
	if err != nil {
		return nil, err
	}
	m.vocab = make(map[string]int32, len(vo.m))
	m.idToTok = make(map[int32]string, len(vo.m))
	for tok, raw := range vo.m {
		id, err := asInt(raw, fmt.Sprintf("%s[%q]", vo.place, tok))
		if err != nil {
			return nil, err
		}
		m.vocab[tok] = int32(id)
		// Two tokens with one id: decode to the smaller, deterministically.
		if old, ok := m.idToTok[int32(id)]; !ok || tok < old {
			m.idToTok[int32(id)] = tok
		}
	}
	for b := range 256 {
		m.byteTok[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteTok[b] = id
		}
	}
	if unk, ok, err := o.optStr("unk_token"); err != nil {
		return nil, err
	} else if ok {
		id, in := m.vocab[unk]
		if !in {
			return nil, errAt(o.at("unk_token"), "%q is not in model.vocab", unk)
		}
		m.unk = id
	}
	if err := m.parseMerges(o); err != nil {
		return nil, err
	}
	return m, nil
}

// parseMerges reads model.merges in either form: "a b" strings (lines
// starting with "#version" skipped) or [a, b] pairs. A pair listed twice
// keeps its last rank, as in HF.
func (m *bpe) parseMerges(o jsonObj) error {
	arr, err := o.array("merges")
	if err != nil {
		return err
	}
	m.merges = make(map[uint64]merge, len(arr))
	pairForm := len(arr) > 0 && kind(arr[0]) == "an array"
	rank := int32(0)
	for i, raw := range arr {
		place := fmt.Sprintf("%s[%d]", o.at("merges"), i)
		var a, b string
		if pairForm {
			if kind(raw) != "an array" {
				return errAt(place, "want a pair [a, b] like the first merge, got %s", kind(raw))
			}
			var p []json.RawMessage
			if err := json.Unmarshal(raw, &p); err != nil {
				return errAt(place, "%s", jsonError(err))
			}
			if len(p) != 2 {
				return errAt(place, "want a pair [a, b], got %d elements", len(p))
			}
			if a, err = asString(p[0], place+"[0]"); err != nil {
				return err
			}
			if b, err = asString(p[1], place+"[1]"); err != nil {
				return err
			}
		} else {
			s, err := asString(raw, place)
			if err != nil {
				return fmt.Errorf("%w (like the first merge)", err)
			}
			if strings.HasPrefix(s, "#version") {
				continue
			}
			parts := strings.Split(s, " ")
			if len(parts) != 2 {
				return errAt(place, "%q is not two tokens separated by one space", s)
			}
			a, b = parts[0], parts[1]
		}
		ia, ok := m.vocab[a]
		if !ok {
			return errAt(place, "token %q is not in model.vocab", a)
		}
		ib, ok := m.vocab[b]
		if !ok {
			return errAt(place, "token %q is not in model.vocab", b)
		}
		id, ok := m.vocab[a+b]
		if !ok {
			return errAt(place, "merged token %q is not in model.vocab", a+b)
		}
		m.merges[pairKey(ia, ib)] = merge{rank: rank, id: id}
		rank++
	}
	return nil
}

// parseAddedTokens reads added_tokens. As in HF, a token whose content is
// in the model's vocabulary takes the model's id, a later entry with the
// same content replaces the flags of an earlier one, and empty contents
// are ignored.
func (t *Tokenizer) parseAddedTokens(root jsonObj) error {
	t.addedByID = map[int32]*addedToken{}
	t.addedIDs = map[string]int32{}
	if root.has("added_tokens") {
		arr, err := root.array("added_tokens")
		if err != nil {
			return err
		}
		for i, raw := range arr {
			place := fmt.Sprintf("added_tokens[%d]", i)
			o, err := asObj(raw, place)
			if err != nil {
				return err
			}
			content, err := o.str("content")
			if err != nil {
				return err
			}
			if !o.has("id") {
				return errAt(o.at("id"), "missing")
			}
			id, err := asInt(o.m["id"], o.at("id"))
			if err != nil {
				return err
			}
			a := &addedToken{id: int32(id), content: content}
			if a.special, err = o.boolean("special", false); err != nil {
				return err
			}
			for _, f := range []struct {
				key string
				p   *bool
				def bool
			}{{"single_word", &a.singleWord, false}, {"lstrip", &a.lstrip, false}, {"rstrip", &a.rstrip, false}, {"normalized", &a.normalized, !a.special}} {
				if *f.p, err = o.boolean(f.key, f.def); err != nil {
					return err
				}
			}
			if content == "" {
				continue
			}
			if old, ok := t.addedIDs[content]; ok {
				a.id = old
			} else if vid, ok := t.model.vocab[content]; ok {
				a.id = vid
			} else if tok, ok := t.model.idToTok[a.id]; ok {
				return errAt(o.at("id"), "id %d of %q is model.vocab's %q", a.id, content, tok)
			} else if other, ok := t.addedByID[a.id]; ok && other.content != content {
				return errAt(o.at("id"), "id %d of %q is already the id of %q", a.id, content, other.content)
			}
			if old, ok := t.addedByID[a.id]; ok {
				for j, x := range t.added {
					if x == old {
						t.added[j] = a
					}
				}
			} else {
				t.added = append(t.added, a)
			}
			t.addedByID[a.id] = a
			t.addedIDs[content] = a.id
		}
	}
	sort.Slice(t.added, func(i, j int) bool { return t.added[i].id < t.added[j].id })
	var raw, norm []*addedToken
	for _, a := range t.added {
		if a.normalized {
			norm = append(norm, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.raw = newAddedMatcher(raw, func(a *addedToken) string { return a.content })
	t.normalized = newAddedMatcher(norm, func(a *addedToken) string {
		if t.normalizer != nil {
			return t.normalizer.normalize(a.content)
		}
		return a.content
	})
	return nil
}

// pattern reads a {"String": s} pattern; regex patterns are reported as
// unsupported by the caller's rules.
func stringPattern(o jsonObj, key string) (s string, regex string, isRegex bool, err error) {
	po, err := o.obj(key)
	if err != nil {
		return "", "", false, err
	}
	switch {
	case po.has("String"):
		s, err = po.str("String")
		if err == nil && s == "" {
			err = errAt(po.at("String"), "empty pattern")
		}
		return s, "", false, err
	case po.has("Regex"):
		regex, err = po.str("Regex")
		return "", regex, true, err
	}
	return "", "", false, errAt(po.place, "want {\"String\": …} or {\"Regex\": …}")
}

func parseNormalizer(raw json.RawMessage, place string) (normalizer, error) {
	o, err := asObj(raw, place)
	if err != nil {
		return nil, err
	}
	typ, err := o.typ()
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		arr, err := o.array("normalizers")
		if err != nil {
			return nil, err
		}
		var q sequenceNorm
		for i, r := range arr {
			if isNull(r) {
				continue
			}
			n, err := parseNormalizer(r, fmt.Sprintf("%s[%d]", o.at("normalizers"), i))
			if err != nil {
				return nil, err
			}
			q = append(q, n)
		}
		return q, nil
	case "NFC":
		return nfcNorm{}, nil
	case "NFD":
		return nfdNorm{}, nil
	case "Prepend":
		s, err := o.str("prepend")
		return prependNorm(s), err
	case "Replace":
		s, re, isRegex, err := stringPattern(o, "pattern")
		if err != nil {
			return nil, err
		}
		if isRegex {
			return nil, errAt(o.at("pattern"), "Replace with a regex (%q) is not supported", re)
		}
		content, err := o.str("content")
		return replaceNorm{s, content}, err
	case "Strip":
		l, err := o.boolean("strip_left", false)
		if err != nil {
			return nil, err
		}
		r, err := o.boolean("strip_right", false)
		return stripNorm{l, r}, err
	}
	return nil, errAt(o.at("type"), "unsupported normalizer %q", typ)
}

func parsePreTokenizer(raw json.RawMessage, place string) (preTokenizer, error) {
	o, err := asObj(raw, place)
	if err != nil {
		return nil, err
	}
	typ, err := o.typ()
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		arr, err := o.array("pretokenizers")
		if err != nil {
			return nil, err
		}
		var q sequencePre
		for i, r := range arr {
			if isNull(r) {
				continue
			}
			p, err := parsePreTokenizer(r, fmt.Sprintf("%s[%d]", o.at("pretokenizers"), i))
			if err != nil {
				return nil, err
			}
			q = append(q, p)
		}
		return q, nil
	case "Split":
		s, re, isRegex, err := stringPattern(o, "pattern")
		if err != nil {
			return nil, err
		}
		var m matcher = literal(s)
		if isRegex {
			if m = knownRegex(re); m == nil {
				return nil, errAt(o.at("pattern"), "unknown Split regex %q: only the GPT-2, LLaMA-3 and Qwen2 patterns are supported", re)
			}
		}
		bs, err := o.str("behavior")
		if err != nil {
			return nil, err
		}
		b, ok := splitBehaviors[bs]
		if !ok {
			return nil, errAt(o.at("behavior"), "unknown split behavior %q", bs)
		}
		inv, err := o.boolean("invert", false)
		return splitPre{m: m, behavior: b, invert: inv}, err
	case "ByteLevel":
		aps, err := o.boolean("add_prefix_space", true)
		if err != nil {
			return nil, err
		}
		re, err := o.boolean("use_regex", true)
		return byteLevelPre{addPrefixSpace: aps, useRegex: re}, err
	case "Digits":
		ind, err := o.boolean("individual_digits", false)
		return digitsPre{individual: ind}, err
	case "Metaspace":
		rep, scheme, err := metaspaceConfig(o)
		if err != nil {
			return nil, err
		}
		split, err := o.boolean("split", true)
		return metaspacePre{replacement: rep, scheme: scheme, split: split}, err
	}
	return nil, errAt(o.at("type"), "unsupported pre-tokenizer %q", typ)
}

// metaspaceConfig reads Metaspace's replacement and prepend scheme (the
// older add_prefix_space: false means "never").
func metaspaceConfig(o jsonObj) (rune, prependScheme, error) {
	rep, err := o.char("replacement")
	if err != nil {
		return 0, 0, err
	}
	scheme := prependAlways
	if o.has("prepend_scheme") {
		s, err := o.str("prepend_scheme")
		if err != nil {
			return 0, 0, err
		}
		switch s {
		case "always":
		case "first":
			scheme = prependFirst
		case "never":
			scheme = prependNever
		default:
			return 0, 0, errAt(o.at("prepend_scheme"), "unknown prepend scheme %q", s)
		}
	}
	aps, err := o.boolean("add_prefix_space", true)
	if err != nil {
		return 0, 0, err
	}
	if !aps {
		if o.has("prepend_scheme") && scheme != prependNever {
			return 0, 0, errAt(o.at("add_prefix_space"), "false does not match prepend_scheme")
		}
		scheme = prependNever
	}
	return rep, scheme, nil
}

func parsePostProcessor(raw json.RawMessage, place string) (postProcessor, error) {
	o, err := asObj(raw, place)
	if err != nil {
		return nil, err
	}
	typ, err := o.typ()
	if err != nil {
		return nil, err
	}
	switch typ {
	case "ByteLevel":
		return nopPost{}, nil
	case "Sequence":
		arr, err := o.array("processors")
		if err != nil {
			return nil, err
		}
		var q sequencePost
		for i, r := range arr {
			if isNull(r) {
				continue
			}
			p, err := parsePostProcessor(r, fmt.Sprintf("%s[%d]", o.at("processors"), i))
			if err != nil {
				return nil, err
			}
			q = append(q, p)
		}
		return q, nil
	case "TemplateProcessing":
		return parseTemplate(o)
	case "RobertaProcessing", "BertProcessing":
		var ids [2]int32
		for i, k := range []string{"cls", "sep"} {
			arr, err := o.array(k)
			if err != nil {
				return nil, err
			}
			if len(arr) != 2 {
				return nil, errAt(o.at(k), "want [token, id], got %d elements", len(arr))
			}
			id, err := asInt(arr[1], o.at(k)+"[1]")
			if err != nil {
				return nil, err
			}
			ids[i] = int32(id)
		}
		return templatePost{parts: [][]int32{{ids[0]}, {ids[1]}}}, nil
	}
	return nil, errAt(o.at("type"), "unsupported post-processor %q", typ)
}

// parseTemplate reads TemplateProcessing's single-sequence template.
func parseTemplate(o jsonObj) (postProcessor, error) {
	specials := map[string][]int32{}
	if o.has("special_tokens") {
		so, err := o.obj("special_tokens")
		if err != nil {
			return nil, err
		}
		for name, raw := range so.m {
			place := fmt.Sprintf("%s[%q]", so.place, name)
			to, err := asObj(raw, place)
			if err != nil {
				return nil, err
			}
			idsRaw, err := to.array("ids")
			if err != nil {
				return nil, err
			}
			var ids []int32
			for i, r := range idsRaw {
				id, err := asInt(r, fmt.Sprintf("%s[%d]", to.at("ids"), i))
				if err != nil {
					return nil, err
				}
				ids = append(ids, int32(id))
			}
			if to.has("tokens") {
				toks, err := to.array("tokens")
				if err != nil {
					return nil, err
				}
				if len(toks) != len(ids) {
					return nil, errAt(place, "ids and tokens must be of the same length")
				}
			}
			specials[name] = ids
		}
	}
	arr, err := o.array("single")
	if err != nil {
		return nil, err
	}
	tp := templatePost{parts: [][]int32{nil}}
	for i, raw := range arr {
		place := fmt.Sprintf("%s[%d]", o.at("single"), i)
		po, err := asObj(raw, place)
		if err != nil {
			return nil, err
		}
		switch {
		case po.has("SpecialToken"):
			so, err := po.obj("SpecialToken")
			if err != nil {
				return nil, err
			}
			name, err := so.str("id")
			if err != nil {
				return nil, err
			}
			ids, ok := specials[name]
			if !ok {
				return nil, errAt(place, "special token %q is not in %s", name, o.at("special_tokens"))
			}
			last := len(tp.parts) - 1
			tp.parts[last] = append(tp.parts[last], ids...)
		case po.has("Sequence"):
			so, err := po.obj("Sequence")
			if err != nil {
				return nil, err
			}
			id, err := so.str("id")
			if err != nil {
				return nil, err
			}
			if id != "A" {
				return nil, errAt(so.at("id"), "sequence %q in the single-sequence template (want \"A\")", id)
			}
			tp.parts = append(tp.parts, nil)
		default:
			return nil, errAt(place, "want {\"SpecialToken\": …} or {\"Sequence\": …}")
		}
	}
	return tp, nil
}

func parseDecoder(raw json.RawMessage, place string) (decoder, error) {
	o, err := asObj(raw, place)
	if err != nil {
		return nil, err
	}
	typ, err := o.typ()
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		arr, err := o.array("decoders")
		if err != nil {
			return nil, err
		}
		var q sequenceDec
		for i, r := range arr {
			if isNull(r) {
				continue
			}
			d, err := parseDecoder(r, fmt.Sprintf("%s[%d]", o.at("decoders"), i))
			if err != nil {
				return nil, err
			}
			q = append(q, d)
		}
		return q, nil
	case "ByteLevel":
		return byteLevelDec{}, nil
	case "ByteFallback":
		return byteFallbackDec{}, nil
	case "Fuse":
		return fuseDec{}, nil
	case "Replace":
		s, re, isRegex, err := stringPattern(o, "pattern")
		if err != nil {
			return nil, err
		}
		if isRegex {
			return nil, errAt(o.at("pattern"), "Replace with a regex (%q) is not supported", re)
		}
		content, err := o.str("content")
		return replaceDec{s, content}, err
	case "Strip":
		c, err := o.char("content")
		if err != nil {
			return nil, err
		}
		start, err := o.optInt("start", 0)
		if err != nil {
			return nil, err
		}
		stop, err := o.optInt("stop", 0)
		return stripDec{content: c, start: start, stop: stop}, err
	case "Metaspace":
		rep, scheme, err := metaspaceConfig(o)
		return metaspaceDec{replacement: rep, scheme: scheme}, err
	}
	return nil, errAt(o.at("type"), "unsupported decoder %q", typ)
}
