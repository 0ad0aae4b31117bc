package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// placeError is an error at a place in a JSON document, such as
// "model.merges[12]".
type placeError struct {
	place, msg string
}

func (e *placeError) Error() string {
	if e.place == "" {
		return e.msg
	}
	return e.place + ": " + e.msg
}

func errAt(place, format string, args ...any) error {
	return &placeError{place: place, msg: fmt.Sprintf(format, args...)}
}

// jsonObj is a JSON object and the place it was found at.
type jsonObj struct {
	m     map[string]json.RawMessage
	place string
}

func (o jsonObj) at(key string) string {
	if o.place == "" {
		return key
	}
	return o.place + "." + key
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// kind names the JSON type of raw for error messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// jsonError words a decoding error without Go type names where it can.
func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	return err.Error()
}

func asObj(raw json.RawMessage, place string) (jsonObj, error) {
	if kind(raw) != "an object" {
		return jsonObj{}, errAt(place, "want an object, got %s", kind(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return jsonObj{}, errAt(place, "%s", jsonError(err))
	}
	return jsonObj{m: m, place: place}, nil
}

func asArray(raw json.RawMessage, place string) ([]json.RawMessage, error) {
	if kind(raw) != "an array" {
		return nil, errAt(place, "want an array, got %s", kind(raw))
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, errAt(place, "%s", jsonError(err))
	}
	return a, nil
}

func asString(raw json.RawMessage, place string) (string, error) {
	if kind(raw) != "a string" {
		return "", errAt(place, "want a string, got %s", kind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errAt(place, "%s", jsonError(err))
	}
	return s, nil
}

// asInt reads a non-negative integer that fits an int32.
func asInt(raw json.RawMessage, place string) (int, error) {
	if kind(raw) != "a number" {
		return 0, errAt(place, "want a non-negative integer, got %s", kind(raw))
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, errAt(place, "%s", jsonError(err))
	}
	v, err := n.Int64()
	if err != nil || v < 0 || v > 1<<31-2 {
		return 0, errAt(place, "want a non-negative 32-bit integer, got %s", n)
	}
	return int(v), nil
}

// has reports whether key is present and not null.
func (o jsonObj) has(key string) bool {
	raw, ok := o.m[key]
	return ok && !isNull(raw)
}

func (o jsonObj) obj(key string) (jsonObj, error) {
	if !o.has(key) {
		return jsonObj{}, errAt(o.at(key), "missing")
	}
	return asObj(o.m[key], o.at(key))
}

func (o jsonObj) array(key string) ([]json.RawMessage, error) {
	if !o.has(key) {
		return nil, errAt(o.at(key), "missing")
	}
	return asArray(o.m[key], o.at(key))
}

// str reads a required string.
func (o jsonObj) str(key string) (string, error) {
	if !o.has(key) {
		return "", errAt(o.at(key), "missing")
	}
	return asString(o.m[key], o.at(key))
}

// optStr reads an optional string ("" and false when absent or null).
func (o jsonObj) optStr(key string) (string, bool, error) {
	if !o.has(key) {
		return "", false, nil
	}
	s, err := asString(o.m[key], o.at(key))
	return s, err == nil, err
}

// boolean reads an optional boolean with a default.
func (o jsonObj) boolean(key string, def bool) (bool, error) {
	if !o.has(key) {
		return def, nil
	}
	switch string(bytes.TrimSpace(o.m[key])) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errAt(o.at(key), "want a boolean, got %s", kind(o.m[key]))
}

// optInt reads an optional non-negative integer with a default.
func (o jsonObj) optInt(key string, def int) (int, error) {
	if !o.has(key) {
		return def, nil
	}
	return asInt(o.m[key], o.at(key))
}

// char reads a string of exactly one character.
func (o jsonObj) char(key string) (rune, error) {
	s, err := o.str(key)
	if err != nil {
		return 0, err
	}
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || n != len(s) {
		return 0, errAt(o.at(key), "want one character, got %q", s)
	}
	return r, nil
}

// typ reads the component's "type".
func (o jsonObj) typ() (string, error) {
	return o.str("type")
}
