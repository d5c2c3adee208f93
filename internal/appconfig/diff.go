package appconfig

import (
	"encoding/json"
	"reflect"
	"sort"
)

// Change is one key that differs between two configs. Old and New are
// redacted: a secret shows only that it changed.
type Change struct {
	Key string `json:"key"`
	Op  string `json:"op"` // added, removed, changed
	Old any    `json:"old,omitempty"`
	New any    `json:"new,omitempty"`
}

// Diff compares two config texts key by key (dotted keys, arrays as one
// value). Unparseable text counts as empty.
func Diff(oldText, newText []byte) []Change {
	leaves := func(b []byte) map[string]any {
		v, err := decodeValue(b)
		if err != nil {
			return map[string]any{}
		}
		return Leaves(v)
	}
	a, b := leaves(oldText), leaves(newText)
	out := []Change{}
	for k, av := range a {
		bv, ok := b[k]
		switch {
		case !ok:
			out = append(out, Change{Key: k, Op: "removed", Old: shown(k, av)})
		case !reflect.DeepEqual(av, bv):
			out = append(out, Change{Key: k, Op: "changed", Old: shown(k, av), New: shown(k, bv)})
		}
	}
	for k, bv := range b {
		if _, ok := a[k]; !ok {
			out = append(out, Change{Key: k, Op: "added", New: shown(k, bv)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// shown is a value as it may be printed: redacted, and JSON text for
// anything that is not a plain scalar.
func shown(key string, v any) any {
	v = RedactValue(key, v)
	if v == nil {
		return json.RawMessage("null")
	}
	return v
}

// Show renders a redacted value for a person.
func Show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}
