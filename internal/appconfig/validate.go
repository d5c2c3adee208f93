package appconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// ErrInvalid matches every *InvalidError: the file is not a config the app
// can run with, so nothing was written.
var ErrInvalid = errors.New("invalid app config")

// Problem is one thing wrong (or, as a warning, odd) in a config file.
type Problem struct {
	Key    string `json:"key,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Msg    string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", p.Line, p.Column)
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Report is the result of validating one file.
type Report struct {
	File     string    `json:"file"`
	OK       bool      `json:"ok"`
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
}

// InvalidError carries the report of a file that failed validation.
type InvalidError struct{ Report Report }

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Report.Errors))
	for i, p := range e.Report.Errors {
		msgs[i] = p.String()
	}
	return fmt.Sprintf("%s is not a valid app config: %s", e.Report.File, strings.Join(msgs, "; "))
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

type kind int

const (
	kString kind = iota
	kNumber
	kInteger
	kBool
	kURL
	kObject
	kArray
)

func (k kind) String() string {
	return [...]string{"a string", "a number", "an integer", "true or false", "an http(s) URL", "an object", "an array"}[k]
}

// rule is what a known key must hold.
type rule struct {
	kind     kind
	min, max float64 // for numbers, when min < max
	enum     []string
}

// schema lists the keys of Claude Flow's config the seed runbook and the
// app's documentation use. Keys not listed are warned about, not rejected:
// a newer app version may have added them.
var schema = map[string]rule{
	"claude.apiKey":                {kind: kString},
	"claude.baseUrl":               {kind: kURL},
	"claude.model":                 {kind: kString},
	"claude.temperature":           {kind: kNumber, min: 0, max: 1},
	"claude.topP":                  {kind: kNumber, min: 0, max: 1},
	"claude.topK":                  {kind: kInteger, min: 0, max: 1000},
	"claude.maxTokens":             {kind: kInteger, min: 1, max: 100000},
	"claude.rateLimit":             {kind: kNumber, min: 1, max: 100000},
	"claude.retryAttempts":         {kind: kInteger, min: 0, max: 100},
	"claude.retryDelay":            {kind: kInteger, min: 100, max: 60000},
	"claude.timeout":               {kind: kInteger, min: 100, max: 3600000},
	"mcp.enabled":                  {kind: kBool},
	"mcp.port":                     {kind: kInteger, min: 1, max: 65535},
	"mcp.host":                     {kind: kString},
	"mcp.transport":                {kind: kString, enum: []string{"stdio", "http", "websocket"}},
	"mcp.tlsEnabled":               {kind: kBool},
	"server.port":                  {kind: kInteger, min: 1, max: 65535},
	"server.host":                  {kind: kString},
	"orchestrator.maxAgents":       {kind: kInteger, min: 1, max: 1000},
	"orchestrator.taskTimeout":     {kind: kInteger, min: 100, max: 86400000},
	"memory.backend":               {kind: kString, enum: []string{"sqlite", "json", "markdown", "hybrid"}},
	"memory.cacheSizeMB":           {kind: kInteger, min: 1, max: 1 << 20},
	"logging.level":                {kind: kString, enum: []string{"debug", "info", "warn", "error"}},
	"logging.format":               {kind: kString, enum: []string{"json", "text", "pretty"}},
	"logging.destination":          {kind: kString},
	"security.tlsVerification":     {kind: kBool},
	"security.apiKeyEncryption":    {kind: kBool},
	"coordination.maxRetries":      {kind: kInteger, min: 0, max: 100},
	"coordination.retryDelay":      {kind: kInteger, min: 100, max: 60000},
	"terminal.type":                {kind: kString},
	"terminal.poolSize":            {kind: kInteger, min: 1, max: 1000},
	"terminal.recycleAfter":        {kind: kInteger, min: 1, max: 100000},
	"terminal.healthCheckInterval": {kind: kInteger, min: 100, max: 3600000},
	// What `claude-flow init` writes into claude-flow.config.json (2.0.0-alpha.113, 2.0.0).
	"features.autoTopologySelection": {kind: kBool},
	"features.parallelExecution":     {kind: kBool},
	"features.neuralTraining":        {kind: kBool},
	"features.bottleneckAnalysis":    {kind: kBool},
	"features.smartAutoSpawning":     {kind: kBool},
	"features.selfHealingWorkflows":  {kind: kBool},
	"features.crossSessionMemory":    {kind: kBool},
	"features.githubIntegration":     {kind: kBool},
	"performance.maxAgents":          {kind: kInteger, min: 1, max: 1000},
	"performance.defaultTopology":    {kind: kString},
	"performance.executionStrategy":  {kind: kString},
	"performance.tokenOptimization":  {kind: kBool},
	"performance.cacheEnabled":       {kind: kBool},
	"performance.telemetryLevel":     {kind: kString},
}

var (
	retryDelayKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)retry.*delay(ms)?$`) })
	urlKey        = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)(url|endpoint)$`) })
)

// ruleFor is the rule for a dotted key, and whether the key is known. Keys
// not in the schema still get the rules their names imply: retry delays are
// milliseconds in 100..60000, *Url values must parse.
func ruleFor(key string) (r *rule, known bool) {
	if r, ok := schema[key]; ok {
		return &r, true
	}
	last := key[strings.LastIndexByte(key, '.')+1:]
	switch {
	case retryDelayKey().MatchString(last):
		return &rule{kind: kInteger, min: 100, max: 60000}, false
	case urlKey().MatchString(last):
		return &rule{kind: kURL}, false
	}
	return nil, false
}

// Validate checks a config file's text. Syntax errors carry line and
// column; a value of a known key of the wrong type or out of range is an
// error naming the key, its line and the allowed range; unknown keys are
// warnings.
func Validate(name string, text []byte) Report {
	rep := Report{File: name, Errors: []Problem{}, Warnings: []Problem{}}
	doc, err := Parse(text)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			rep.Errors = append(rep.Errors, Problem{Line: se.Line, Column: se.Column, Msg: se.Msg})
		} else {
			rep.Errors = append(rep.Errors, Problem{Msg: err.Error()})
		}
		return rep
	}
	doc.walk(func(key string, keyStart int, n *node) bool {
		if pollutes(strings.Split(key, ".")) {
			pos := lineCol(doc.text, keyStart, "")
			rep.Errors = append(rep.Errors, Problem{Key: key, Line: pos.Line, Column: pos.Column,
				Msg: "not a setting: it would change every object of the Node.js app (prototype pollution); remove it"})
			return false
		}
		r, _ := ruleFor(key)
		if r == nil {
			if sections()[key] && n.kind != '{' {
				pos := lineCol(doc.text, n.start, "")
				rep.Errors = append(rep.Errors, Problem{Key: key, Line: pos.Line, Column: pos.Column, Msg: "must be an object"})
				return false
			}
			if !sections()[key] && (n.kind != '{' || len(n.members) == 0) {
				pos := lineCol(doc.text, keyStart, "")
				rep.Warnings = append(rep.Warnings, Problem{Key: key, Line: pos.Line, Column: pos.Column,
					Msg: "unknown key (kept; check the spelling if the app ignores it)"})
			}
			return n.kind == '{'
		}
		if msg := r.check(doc.text[n.start:n.end]); msg != "" {
			if IsSecretKey(key) {
				msg = "must be " + r.kind.String() + " (the value is a secret and not shown)"
			}
			pos := lineCol(doc.text, n.start, "")
			rep.Errors = append(rep.Errors, Problem{Key: key, Line: pos.Line, Column: pos.Column, Msg: msg})
		}
		return false
	})
	sort.SliceStable(rep.Errors, func(i, j int) bool { return rep.Errors[i].Line < rep.Errors[j].Line })
	rep.OK = len(rep.Errors) == 0
	return rep
}

// CheckPrototype returns an error naming the first key of the document that would pollute
// the prototype of the Node.js app's objects (__proto__, constructor.prototype), with its
// line: what Validate refuses, for readers that only compare (config diff).
func (d *Document) CheckPrototype() error {
	var err error
	d.walk(func(key string, keyStart int, n *node) bool {
		if err != nil {
			return false
		}
		if pollutes(strings.Split(key, ".")) {
			pos := lineCol(d.text, keyStart, "")
			err = fmt.Errorf("key %s (line %d): not a setting, it would change every object of the Node.js app (prototype pollution)", key, pos.Line)
			return false
		}
		return n.kind == '{'
	})
	return err
}

// sections are the objects that hold known keys (made at first use, not at every start).
var sections = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for k := range schema {
		parts := strings.Split(k, ".")
		for i := 1; i < len(parts); i++ {
			m[strings.Join(parts[:i], ".")] = true
		}
	}
	return m
})

// walk calls fn for every member value with its dotted key; fn says
// whether to descend into it.
func (d *Document) walk(fn func(key string, keyStart int, n *node) bool) {
	var rec func(prefix string, n *node)
	rec = func(prefix string, n *node) {
		for _, m := range n.members {
			key := m.key
			if prefix != "" {
				key = prefix + "." + m.key
			}
			if fn(key, m.keyStart, m.val) && m.val.kind == '{' {
				rec(key, m.val)
			}
		}
	}
	rec("", d.root)
}

// check returns what is wrong with raw for r, or "".
func (r rule) check(raw []byte) string {
	v, err := decodeValue(raw)
	if err != nil {
		return err.Error()
	}
	want := func() string { return "must be " + r.kind.String() + " (is " + describe(v) + ")" }
	switch r.kind {
	case kString:
		s, ok := v.(string)
		if !ok {
			return want()
		}
		if len(r.enum) > 0 && !contains(r.enum, s) {
			return fmt.Sprintf("must be one of %s (is %q)", strings.Join(r.enum, ", "), s)
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			return want()
		}
	case kURL:
		s, ok := v.(string)
		if !ok {
			return want()
		}
		u, err := url.Parse(s)
		if err != nil {
			return "is not a URL: " + RedactString(err.Error())
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Sprintf("must be an absolute http:// or https:// URL (is %q)", RedactURL(s))
		}
	case kNumber, kInteger:
		n, ok := v.(json.Number)
		if !ok {
			return want()
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return "is not a usable number"
		}
		if r.kind == kInteger && f != math.Trunc(f) {
			return fmt.Sprintf("must be a whole number (is %s)", n)
		}
		if r.min < r.max && (f < r.min || f > r.max) {
			return fmt.Sprintf("must be from %g to %g (is %s)", r.min, r.max, n)
		}
	}
	return ""
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprint(x)
	case json.Number:
		return "the number " + x.String()
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
