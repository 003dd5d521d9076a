package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/shoalmesh/shoal/api"
)

// This file applies single RFC 6902 operations (add, remove, replace) with
// evanphx/json-patch, as Karmada's override manager does, and explains a
// failure in the user's terms ("path /spec/foo: not found") by walking the
// document itself.

// decodeTree decodes JSON keeping numbers exact.
func decodeTree(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// splitPointer gives the reference tokens of a JSON pointer, unescaped as
// json-patch unescapes them: ~1 is "/", ~0 is "~", and any other "~" stays
// as it is (Karmada checks no more than the leading "/", so neither does
// Shoal).
func splitPointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%q is not a JSON pointer: it must be empty or start with \"/\"", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		toks[i] = pointerUnescaper.Replace(t)
	}
	return toks, nil
}

var pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")

// joinPointer is splitPointer's inverse.
func joinPointer(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// describe names the JSON type of v for messages: "a number".
func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// walkError says where and why a pointer does not resolve.
type walkError struct {
	at      string // the prefix of the pointer that failed
	missing bool   // at does not exist (rather than a wrong type)
	why     string // "not found", "is a number, not an object or a list"
}

// text gives the error for the pointer full, introduced by what:
// "path /spec/foo: not found", "path /spec/a/b: /spec/a is a string, not an object or a list".
func (e *walkError) text(what, full string) string {
	if e.at == full {
		return what + " " + full + ": " + e.why
	}
	at := e.at
	if at == "" {
		at = "the document"
	}
	return what + " " + full + ": " + at + " " + e.why
}

// listIndex reads a list index as json-patch does, negative indices counting
// from the end. ok is false when tok is not a number.
func listIndex(tok string, n int) (idx int, inRange, ok bool) {
	i, err := strconv.Atoi(tok)
	if err != nil {
		return 0, false, false
	}
	if i < 0 {
		i += n
	}
	return i, i >= 0 && i < n, true
}

// walk follows toks from doc.
func walk(doc any, toks []string) (any, *walkError) {
	cur := doc
	for i, tok := range toks {
		at := joinPointer(toks[:i+1])
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, &walkError{at: at, missing: true, why: "not found"}
			}
			cur = v
		case []any:
			idx, inRange, ok := listIndex(tok, len(c))
			if !ok {
				return nil, &walkError{at: at, why: fmt.Sprintf("%q is not a list index", tok)}
			}
			if !inRange {
				return nil, &walkError{at: at, missing: true, why: fmt.Sprintf("not found (the list has %d items)", len(c))}
			}
			cur = c[idx]
		default:
			return nil, &walkError{at: joinPointer(toks[:i]), why: "is " + describe(cur) + ", not an object or a list"}
		}
	}
	return cur, nil
}

// lookup resolves the pointer p in doc; what introduces p in errors
// ("path", "fieldPath").
func lookup(doc any, p, what string) (any, *walkError, error) {
	toks, err := splitPointer(p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	v, werr := walk(doc, toks)
	return v, werr, nil
}

// patchOp is one JSON patch operation. A nil Value of add or replace is
// JSON null, as in Karmada.
type patchOp struct {
	Op    string
	Path  string
	Value json.RawMessage
}

// applyOp applies op to the JSON document doc and returns the new document.
// doc is not modified. what introduces the path in errors; when the path
// does not resolve, the error says where it stops.
func applyOp(doc []byte, op patchOp, what string) ([]byte, error) {
	switch op.Op {
	case string(api.OverriderOpAdd), string(api.OverriderOpReplace), string(api.OverriderOpRemove):
	default:
		return nil, fmt.Errorf("unknown operator %q; use add, remove or replace", op.Op)
	}
	// The path goes to json-patch as written, as Karmada sends it: a
	// plaintext path without its leading "/" ("spec/replicas") is not
	// refused, and json-patch reads it from its second token on.
	o := map[string]any{"op": op.Op, "path": op.Path}
	if op.Op != string(api.OverriderOpRemove) {
		v := op.Value
		if len(bytes.TrimSpace(v)) == 0 {
			v = json.RawMessage("null")
		} else if !json.Valid(v) {
			return nil, fmt.Errorf("value is not valid JSON")
		}
		o["value"] = v
	}
	raw, err := json.Marshal([]any{o})
	if err != nil {
		return nil, fmt.Errorf("value: %v", err)
	}
	out, err := applyPatch(doc, raw)
	if err == nil {
		return out, nil
	}
	if msg := explain(doc, op, what); msg != "" {
		return nil, errors.New(msg)
	}
	return nil, fmt.Errorf("%s %s: %v", what, op.Path, err)
}

// applyPatch runs json-patch on a patch of one operation. The library is
// third-party code fed with the user's patches: a panic in it becomes an
// error.
func applyPatch(doc, raw []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("the JSON patch library failed (%v)", r)
		}
	}()
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, err
	}
	return p.Apply(doc)
}

// explain says in the user's terms why op does not apply to doc, or "" if
// it cannot tell.
func explain(doc []byte, op patchOp, what string) string {
	tree, err := decodeTree(doc)
	if err != nil {
		return ""
	}
	toks, err := splitPointer(op.Path)
	if err != nil || len(toks) == 0 {
		return ""
	}
	if op.Op != string(api.OverriderOpAdd) {
		if _, werr := walk(tree, toks); werr != nil {
			return werr.text(what, op.Path)
		}
		return ""
	}
	// add: the parent must exist; in a list the last token is "-" or an
	// index up to the length.
	parent, werr := walk(tree, toks[:len(toks)-1])
	if werr != nil {
		return werr.text(what, op.Path)
	}
	last := toks[len(toks)-1]
	switch p := parent.(type) {
	case map[string]any:
		return ""
	case []any:
		if last == "-" {
			return ""
		}
		idx, err := strconv.Atoi(last)
		if err != nil {
			return fmt.Sprintf("%s %s: %q is not a list index or \"-\"", what, op.Path, last)
		}
		if idx > len(p) || idx < -len(p)-1 {
			return fmt.Sprintf("%s %s: index %d is out of range (the list has %d items)", what, op.Path, idx, len(p))
		}
		return ""
	default:
		parentPath := joinPointer(toks[:len(toks)-1])
		if parentPath == "" {
			parentPath = "the document"
		}
		return fmt.Sprintf("%s %s: %s is %s, not an object or a list", what, op.Path, parentPath, describe(parent))
	}
}

// stringValue gives the JSON encoding of s.
func stringValue(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}
