package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/itchyny/gojq"
)

// JQWriter is stdout under --jq: every value written with JSON goes through the filter (as
// gh's --jq does) and each result is printed, a string as plain text, anything else as
// indented JSON. Text written directly passes through. The first filter error is kept for
// Err: the command's own exit code stays its own, and the caller reports the filter.
type JQWriter struct {
	W    io.Writer
	code *gojq.Code

	mu  sync.Mutex
	err error
}

// NewJQWriter compiles expr; an expression that does not parse is an error naming it.
func NewJQWriter(w io.Writer, expr string) (*JQWriter, error) {
	q, err := gojq.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("--jq %q: %w", expr, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("--jq %q: %w", expr, err)
	}
	return &JQWriter{W: w, code: code}, nil
}

func (j *JQWriter) Write(p []byte) (int, error) { return j.W.Write(p) }

// Err is the first error the filter met, or nil.
func (j *JQWriter) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

func (j *JQWriter) fail(err error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = err
	}
	return err
}

// encode runs the filter over v and prints its results.
func (j *JQWriter) encode(v any) error {
	in, err := jqValue(v)
	if err != nil {
		return j.fail(fmt.Errorf("--jq: %w", err))
	}
	iter := j.code.Run(in)
	var out bytes.Buffer
	for {
		r, ok := iter.Next()
		if !ok {
			break
		}
		if e, isErr := r.(error); isErr {
			var halt *gojq.HaltError
			if errors.As(e, &halt) && halt.Value() == nil {
				break
			}
			return j.fail(fmt.Errorf("--jq: %w", e))
		}
		if s, isStr := r.(string); isStr {
			out.WriteString(s)
			out.WriteByte('\n')
			continue
		}
		enc := json.NewEncoder(&out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			return j.fail(fmt.Errorf("--jq: %w", err))
		}
	}
	_, err = j.W.Write(out.Bytes())
	return err
}

// jqValue turns a result struct into the plain values gojq works on (maps, slices, strings,
// bools, ints and float64s), through its JSON form so that field names are the JSON ones.
func jqValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return numbers(out), nil
}

func numbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = numbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = numbers(e)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		f, _ := t.Float64()
		return f
	}
	return v
}
