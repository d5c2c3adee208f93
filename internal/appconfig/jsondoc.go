package appconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// SyntaxError is a JSON file that does not parse, with where.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// node is one JSON value with its byte span in the document.
type node struct {
	start, end int  // value bytes are text[start:end]
	kind       byte // '{', '[' or 0 for a scalar
	members    []member
	elems      []*node
	closeBrace int // offset of the closing '}' or ']'
}

// member is one key of an object.
type member struct {
	key      string
	keyStart int // the opening quote
	keyEnd   int // after the closing quote
	val      *node
}

// Document is the text of a JSON config file with an index of where each
// value lies, so a change replaces only the bytes of that value.
type Document struct {
	text []byte
	root *node
}

// Parse reads a JSON document whose top level is an object. A syntax error
// comes back as a *SyntaxError with the line and column.
func Parse(text []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	p := &parser{dec: dec, text: text}
	root, err := p.value()
	if err != nil {
		return nil, p.syntaxError(err)
	}
	if root.kind != '{' {
		return nil, lineCol(text, root.start, "the top level must be an object {...}")
	}
	if _, err := dec.Token(); err != io.EOF {
		off := skipSpace(text, root.end)
		return nil, lineCol(text, off, "unexpected data after the end of the top-level object")
	}
	return &Document{text: text, root: root}, nil
}

type parser struct {
	dec   *json.Decoder
	text  []byte
	depth int
}

// MaxDepth bounds how deep objects and arrays may nest in an app config. Claude Flow's own
// files nest 3 levels; encoding/json gives up past 10,000, and an error there was dropped.
const MaxDepth = 100

// value reads the next value; it knows where it starts by skipping the
// separators after the previous token.
func (p *parser) value() (*node, error) {
	start := skipSep(p.text, int(p.dec.InputOffset()))
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	n := &node{start: start}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' || t == '[' {
			if p.depth++; p.depth > MaxDepth {
				return nil, lineCol(p.text, start, fmt.Sprintf("nested deeper than %d levels; an app config never needs that", MaxDepth))
			}
			defer func() { p.depth-- }()
		}
		switch t {
		case '{':
			n.kind = '{'
			seen := map[string]bool{}
			for p.dec.More() {
				keyStart := skipSep(p.text, int(p.dec.InputOffset()))
				kt, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				m := member{key: key, keyStart: keyStart, keyEnd: int(p.dec.InputOffset())}
				if seen[key] {
					return nil, lineCol(p.text, keyStart, fmt.Sprintf("duplicate key %q", key))
				}
				seen[key] = true
				if m.val, err = p.value(); err != nil {
					return nil, err
				}
				n.members = append(n.members, m)
			}
		case '[':
			n.kind = '['
			for p.dec.More() {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
		default:
			return nil, lineCol(p.text, start, fmt.Sprintf("unexpected %q", string(t)))
		}
		if _, err := p.dec.Token(); err != nil {
			return nil, err
		}
		n.end = int(p.dec.InputOffset())
		n.closeBrace = n.end - 1
	default:
		n.end = int(p.dec.InputOffset())
	}
	return n, nil
}

func (p *parser) syntaxError(err error) error {
	var se *SyntaxError
	if errors.As(err, &se) {
		return se
	}
	var js *json.SyntaxError
	// The token reader's offsets are where it resynchronised; a plain
	// decode of the whole text points at the offending byte.
	var v any
	if uerr := json.Unmarshal(p.text, &v); errors.As(uerr, &js) && !strings.Contains(js.Error(), "unexpected end") {
		return lineCol(p.text, int(max(js.Offset-1, 0)), strings.TrimPrefix(js.Error(), "json: "))
	}
	if errors.As(err, &js) {
		// Offset is just past the byte that was wrong.
		return lineCol(p.text, int(max(js.Offset-1, 0)), strings.TrimPrefix(js.Error(), "json: "))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if len(bytes.TrimSpace(p.text)) == 0 {
			return lineCol(p.text, 0, "the file is empty")
		}
		return lineCol(p.text, len(p.text), "unexpected end of file (a missing } or ] or \")")
	}
	return lineCol(p.text, int(p.dec.InputOffset()), err.Error())
}

// lineCol turns a byte offset into a 1-based line and column (in bytes).
func lineCol(text []byte, off int, msg string) *SyntaxError {
	off = min(max(off, 0), len(text))
	line := 1 + bytes.Count(text[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(text[:off], '\n')
	return &SyntaxError{Line: line, Column: col, Msg: msg}
}

func skipSpace(text []byte, off int) int {
	for off < len(text) && (text[off] == ' ' || text[off] == '\t' || text[off] == '\n' || text[off] == '\r') {
		off++
	}
	return off
}

// skipSep skips whitespace and the commas and colons Token does not return.
func skipSep(text []byte, off int) int {
	for off < len(text) {
		switch text[off] {
		case ' ', '\t', '\n', '\r', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// Bytes is the document's text.
func (d *Document) Bytes() []byte { return d.text }

// Value decodes the whole document into maps, slices, json.Number, string,
// bool and nil.
func (d *Document) Value() map[string]any {
	v, _ := decodeValue(d.text)
	m, _ := v.(map[string]any)
	return m
}

func decodeValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// SplitKey splits a dotted key; an empty part is an error, and so is a part that changes
// what every object of a Node.js app inherits (__proto__, constructor.prototype): the app
// reads this file into plain objects, where such a key is prototype pollution, not a setting.
// A key that is not UTF-8 is refused too: JSON would store it as U+FFFD, another key.
func SplitKey(key string) ([]string, error) {
	if !utf8.ValidString(key) {
		return nil, fmt.Errorf("key %q is not UTF-8 text", key)
	}
	parts := strings.Split(key, ".")
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("key %q: empty part; use dotted keys such as claude.baseUrl", key)
		}
		if pollutes(parts[:i+1]) {
			return nil, fmt.Errorf("key %q: %s is not a setting (it would change every object of the Node.js app); refused", key, p)
		}
	}
	return parts, nil
}

// pollutes reports whether the last part of path reaches the prototype of the app's
// objects when Node.js assigns it (__proto__, constructor.prototype): prototype pollution.
func pollutes(path []string) bool {
	n := len(path)
	return n > 0 && (path[n-1] == "__proto__" || (path[n-1] == "prototype" && n > 1 && path[n-2] == "constructor"))
}

// find returns the node at path, or the deepest object on the way and how
// many parts of path it covers.
func (d *Document) find(path []string) (n *node, depth int) {
	n = d.root
	for i, part := range path {
		if n.kind != '{' {
			return n, i
		}
		var next *node
		for _, m := range n.members {
			if m.key == part {
				next = m.val
			}
		}
		if next == nil {
			return n, i
		}
		n = next
	}
	return n, len(path)
}

// Get returns the raw JSON text of the value at the dotted key.
func (d *Document) Get(key string) (json.RawMessage, bool) {
	path, err := SplitKey(key)
	if err != nil {
		return nil, false
	}
	n, depth := d.find(path)
	if depth != len(path) {
		return nil, false
	}
	return json.RawMessage(d.text[n.start:n.end]), true
}

// ErrNotObject means a key goes through a value that is not an object.
var ErrNotObject = errors.New("not an object")

// Set returns the text with the value at the dotted key replaced by value
// (any JSON text). Only the bytes of the old value change; a new key is
// added after the last member of its object, indented like its siblings.
// Missing parent objects are created. A result that Parse would refuse (a value with a
// duplicate key, or nested past MaxDepth once in place) is an error: a set never writes a
// file that the next read refuses.
func (d *Document) Set(key string, value json.RawMessage) ([]byte, error) {
	out, err := d.set(key, value)
	if err != nil {
		return nil, err
	}
	if _, err := Parse(out); err != nil {
		return nil, fmt.Errorf("set %s: the value cannot be written there: the file would not read back (%v)", key, err) //nolint:errorlint // the re-parse explains this error; a caller must not match Parse's errors through Set
	}
	return out, nil
}

func (d *Document) set(key string, value json.RawMessage) ([]byte, error) {
	path, err := SplitKey(key)
	if err != nil {
		return nil, err
	}
	if !json.Valid(value) {
		return nil, fmt.Errorf("set %s: the value is not valid JSON", key)
	}
	n, depth := d.find(path)
	if depth == len(path) {
		repl := d.format(value, d.indentOf(n.start))
		if !bytes.Contains(d.text[n.start:n.end], []byte("\n")) {
			// A value written on one line stays on one line.
			var c bytes.Buffer
			if json.Compact(&c, value) == nil {
				repl = c.Bytes()
			}
		}
		return splice(d.text, n.start, n.end, repl), nil
	}
	if n.kind != '{' {
		return nil, fmt.Errorf("set %s: %s is %w", key, strings.Join(path[:depth], "."), ErrNotObject)
	}
	// Build the missing part from the innermost key outwards.
	rest := path[depth:]
	v := value
	for i := len(rest) - 1; i >= 1; i-- {
		k, _ := json.Marshal(rest[i])
		v = json.RawMessage(`{` + string(k) + `:` + string(v) + `}`)
	}
	k, _ := json.Marshal(rest[0])
	unit := d.indentUnit()
	if len(n.members) == 0 && !bytes.Contains(d.text, []byte("\n")) {
		return splice(d.text, n.start+1, n.closeBrace, []byte(string(k)+": "+string(v))), nil
	}
	if len(n.members) == 0 {
		outer := d.indentOf(n.start)
		inner := outer + unit
		ins := "\n" + inner + string(k) + ": " + string(d.format(v, inner)) + "\n" + outer
		// Replace whatever whitespace sat between the braces.
		return splice(d.text, n.start+1, n.closeBrace, []byte(ins)), nil
	}
	last := n.members[len(n.members)-1]
	sep := string(d.text[last.keyEnd:last.val.start])
	lineStart := bytes.LastIndexByte(d.text[:last.keyStart], '\n') + 1
	var ins string
	if ws := d.text[lineStart:last.keyStart]; len(bytes.TrimLeft(ws, " \t")) == 0 {
		ins = ",\n" + string(ws) + string(k) + sep + string(d.format(v, string(ws)))
	} else {
		// Members share a line: stay on it.
		ins = ", " + string(k) + sep + string(d.format(v, ""))
	}
	return splice(d.text, last.val.end, last.val.end, []byte(ins)), nil
}

// format renders a value for a place indented by indent: scalars compact,
// objects and arrays pretty-printed like the rest of the file (or compact in
// a file that is all on one line).
func (d *Document) format(v json.RawMessage, indent string) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, v); err != nil {
		return v
	}
	c := bytes.Clone(out.Bytes())
	if len(c) == 0 || (c[0] != '{' && c[0] != '[') || !bytes.Contains(d.text, []byte("\n")) {
		return c
	}
	out.Reset()
	if err := json.Indent(&out, c, indent, d.indentUnit()); err != nil {
		return c
	}
	return out.Bytes()
}

// indentOf returns the whitespace that starts the line holding off.
func (d *Document) indentOf(off int) string {
	lineStart := bytes.LastIndexByte(d.text[:off], '\n') + 1
	end := lineStart
	for end < len(d.text) && (d.text[end] == ' ' || d.text[end] == '\t') {
		end++
	}
	return string(d.text[lineStart:end])
}

// indentUnit guesses one level of indentation from the top-level members.
func (d *Document) indentUnit() string {
	for _, m := range d.root.members {
		if ws := d.indentOf(m.keyStart); ws != "" && d.indentOf(m.keyStart) != d.indentOf(d.root.start) {
			return strings.TrimPrefix(ws, d.indentOf(d.root.start))
		}
	}
	return "  "
}

func splice(text []byte, start, end int, repl []byte) []byte {
	out := make([]byte, 0, len(text)-(end-start)+len(repl))
	out = append(out, text[:start]...)
	out = append(out, repl...)
	return append(out, text[end:]...)
}

// ParseValue turns a command-line VALUE into JSON: a number, true, false,
// null, an object, an array or a quoted string as written; anything else is
// a string. asString forces a string.
func ParseValue(s string, asString bool) json.RawMessage {
	t := strings.TrimSpace(s)
	if !asString && t != "" && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(s)
	return b
}

// Leaves flattens v into dotted keys and their scalar values (arrays are
// one value each, as compact JSON).
func Leaves(v any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && (len(m) > 0 || prefix == "") {
			for k, x := range m {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				walk(key, x)
			}
			return
		}
		out[prefix] = v
	}
	walk("", v)
	return out
}
