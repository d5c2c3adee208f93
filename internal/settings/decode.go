package settings

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/cfrollback/cfrollback/internal/ui"
)

// wholeNumberHook refuses a YAML number that an integer setting cannot hold as written: YAML
// reads 99999999999999999999 as a float, which a plain conversion wraps to
// -9223372036854775808, and 2.5 would silently become 2.
func wholeNumberHook(_, to reflect.Type, data any) (any, error) {
	if str, ok := data.(string); ok && str != "" && isInt(to.Kind()) && to.PkgPath() == "" { // int, not ByteSize or Duration
		// an environment variable, a flag, or a quoted YAML value: "ten" is not a number
		n, err := strconv.ParseInt(strings.TrimSpace(str), 10, to.Bits())
		if errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("out of range (at most %d)", int64(math.MaxInt64>>(64-to.Bits())))
		}
		if err != nil {
			return nil, errors.New("not a whole number")
		}
		return n, nil
	}
	f, ok := data.(float64)
	if !ok || !isInt(to.Kind()) {
		return data, nil
	}
	if f != math.Trunc(f) {
		return nil, errors.New("not a whole number")
	}
	bits := to.Bits()
	if f >= math.Ldexp(1, bits-1) || f < -math.Ldexp(1, bits-1) {
		return nil, fmt.Errorf("out of range (at most %d)", int64(math.MaxInt64>>(64-bits)))
	}
	return int64(f), nil
}

// durationHook reads a duration setting as the duration flags do (ui.ParseDuration): 7d and
// 2w as well as 36h.
func durationHook(_, to reflect.Type, data any) (any, error) {
	str, ok := data.(string)
	if !ok || to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	return ui.ParseDuration(str)
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		return true
	}
	return false
}

func byteSizeHook(_, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(ByteSize(0)) {
		return data, nil
	}
	switch x := data.(type) {
	case string:
		return ParseByteSize(x)
	case int:
		return ByteSize(x), nil
	case int64:
		return ByteSize(x), nil
	case float64:
		return ByteSize(x), nil
	}
	return data, nil
}

// asTyped shows a refused setting's value as the settings file has it: YAML reads
// 99999999999999999999 as the float 1e+20, which is not what was typed. Only for a key
// whose value came from the file.
func (l *Loader) asTyped(err error) error {
	var ie *InvalidError
	if !errors.As(err, &ie) || !strings.HasPrefix(l.Source(ie.Key), "file ") {
		return err
	}
	if raw, ok := yamlScalar(l.raw, ie.Key); ok {
		if strings.IndexFunc(raw, unicode.IsControl) >= 0 {
			raw = strconv.Quote(raw) // a NUL or an escape sequence is shown, not sent to the terminal
		}
		ie.Value = raw
	}
	return err
}

// yamlScalar returns the text of the scalar at the dotted key in a YAML document.
func yamlScalar(doc []byte, key string) (string, bool) {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil || len(root.Content) == 0 {
		return "", false
	}
	n := root.Content[0]
	for _, part := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			return "", false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if strings.EqualFold(n.Content[i].Value, part) {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return "", false
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func keyFromDecodeError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "'"); i >= 0 {
		if j := strings.Index(msg[i+1:], "'"); j >= 0 {
			return msg[i+1 : i+1+j]
		}
	}
	return "(settings)"
}

// decodeReason keeps the last line of a mapstructure error, without the key
// (InvalidError names it) or Go's package prefix: "invalid duration".
func decodeReason(err error) string {
	msg := strings.TrimSpace(err.Error())
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = msg[i+1:]
	}
	if i := strings.LastIndex(msg, "' "); i >= 0 {
		msg = msg[i+2:]
	}
	msg = strings.TrimPrefix(msg, "time: ")
	return strings.ReplaceAll(msg, `"`, "")
}
