package appconfig

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
)

// DefaultConfig is the built-in configuration of `config reset --defaults`.
//
//go:embed defaults/config.json
var DefaultConfig []byte

// Editor changes one app config file: every change is validated, the
// current file checkpointed, and the new text written atomically.
type Editor struct {
	Path          string // the app config file
	CheckpointDir string // <backup.dir>/config
	InstallDir    string // for the app version recorded in checkpoints
	Now           func() time.Time
	// DryRun makes Apply (and Set) validate and diff only: no checkpoint, no write.
	DryRun bool
}

// Result says what a change did.
type Result struct {
	File       string    `json:"file"`
	Changed    bool      `json:"changed"`
	Checkpoint string    `json:"checkpoint,omitempty"`
	SHA256Old  string    `json:"sha256_before,omitempty"`
	SHA256New  string    `json:"sha256_after"`
	Diff       []Change  `json:"diff"`
	Warnings   []Problem `json:"warnings"`
	// DryRun: nothing was checkpointed or written; WouldChange says whether the file
	// would have been.
	DryRun      bool `json:"dry_run,omitempty"`
	WouldChange bool `json:"would_change,omitempty"`
}

func (e *Editor) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// Read returns the current text, or nil when the file does not exist.
func (e *Editor) Read() ([]byte, error) {
	b, err := fsutil.ReadFile(e.Path, fsutil.MaxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Checkpoint saves the current file (to output, or a new file in
// CheckpointDir) and returns where.
func (e *Editor) Checkpoint(reason, output string) (string, Checkpoint, error) {
	cp, err := e.newCheckpoint(reason)
	if err != nil {
		return "", Checkpoint{}, err
	}
	name, err := WriteCheckpoint(e.CheckpointDir, output, cp)
	return name, cp, err
}

// PlanCheckpoint is Checkpoint's dry run: the checkpoint it would write and where (a name
// that is taken then gets -2, -3 ...), nothing written.
func (e *Editor) PlanCheckpoint(reason, output string) (string, Checkpoint, error) {
	cp, err := e.newCheckpoint(reason)
	if err != nil {
		return "", Checkpoint{}, err
	}
	if output == "" {
		output = filepath.Join(e.CheckpointDir, CheckpointName("config-checkpoint-", cp.Time))
	}
	return output, cp, nil
}

func (e *Editor) newCheckpoint(reason string) (Checkpoint, error) {
	cur, err := fsutil.ReadFile(e.Path, fsutil.MaxSmallFile)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read app config: %w", err)
	}
	return NewCheckpoint(e.Path, cur, AppVersion(e.InstallDir), reason, e.now()), nil
}

// Apply makes newText the config. It is refused (an *InvalidError,
// nothing written) when newText has errors; with tolerateOld, errors the
// current file already has are not held against it (a set must be able to
// fix one key of a file that is wrong in another). The current file, if
// any, is checkpointed before the write.
func (e *Editor) Apply(newText []byte, reason string, tolerateOld bool) (Result, error) {
	res := Result{File: e.Path, SHA256New: SHA256Hex(newText)}
	// Where the write would go is judged first, before the checkpoint: a link another user
	// owns (fsutil.CheckLinks) or a path that is not a regular file is refused unchanged.
	if _, err := StatFile(e.Path); err != nil {
		return res, fmt.Errorf("%w; nothing was changed", err)
	}
	old, err := e.Read()
	if err != nil {
		return res, fmt.Errorf("read app config: %w", err)
	}
	rep := Validate(e.Path, newText)
	res.Warnings = rep.Warnings
	if !rep.OK {
		if tolerateOld && old != nil {
			known := map[string]bool{}
			for _, p := range Validate(e.Path, old).Errors {
				known[p.Key+"\x00"+p.Msg] = true
			}
			var fresh []Problem
			for _, p := range rep.Errors {
				if !known[p.Key+"\x00"+p.Msg] {
					fresh = append(fresh, p)
				}
			}
			rep.Errors = fresh
		}
		if len(rep.Errors) > 0 {
			rep.OK = false
			return res, &InvalidError{Report: rep}
		}
	}
	res.Diff = Diff(old, newText)
	if old != nil {
		res.SHA256Old = SHA256Hex(old)
	}
	if e.DryRun {
		res.DryRun, res.WouldChange = true, old == nil || !bytes.Equal(old, newText)
		return res, nil
	}
	if old != nil {
		if bytes.Equal(old, newText) {
			return res, nil
		}
		name, _, err := e.Checkpoint(reason, "")
		if err != nil {
			return res, fmt.Errorf("checkpoint before the change (nothing was changed): %w", err)
		}
		res.Checkpoint = name
	}
	if err := WriteFile(e.Path, newText); err != nil {
		return res, err
	}
	res.Changed = true
	return res, nil
}

// Set changes one dotted key, editing only that value's bytes.
func (e *Editor) Set(key string, value json.RawMessage) (Result, error) {
	old, err := e.Read()
	if err != nil {
		return Result{File: e.Path}, fmt.Errorf("read app config: %w", err)
	}
	if old == nil {
		return Result{File: e.Path}, fmt.Errorf("%s does not exist; create it with 'cfrollback config reset --defaults --yes' or 'cfrollback config restore --file FILE'", e.Path)
	}
	doc, err := Parse(old)
	if err != nil {
		return Result{File: e.Path}, &InvalidError{Report: Validate(e.Path, old)}
	}
	text, err := doc.Set(key, value)
	if err != nil {
		return Result{File: e.Path}, err
	}
	return e.Apply(text, "before set "+key, true)
}

// Defaults returns the built-in config with the current file's secrets
// (API keys, tokens) carried over, so a reset does not lock the app out.
func (e *Editor) Defaults(keepSecrets bool) ([]byte, error) {
	text := append([]byte(nil), DefaultConfig...)
	old, err := e.Read()
	if err != nil || old == nil || !keepSecrets {
		return text, err
	}
	v, err := decodeValue(old)
	if err != nil {
		return text, nil
	}
	for key, val := range Leaves(v) {
		s, ok := val.(string)
		if !ok || s == "" || !IsSecretKey(key) {
			continue
		}
		doc, err := Parse(text)
		if err != nil {
			return nil, err
		}
		raw, _ := json.Marshal(s)
		if next, err := doc.Set(key, raw); err == nil {
			text = next
		}
	}
	return text, nil
}

// TypedValue turns a command-line VALUE for key into JSON: keys known to
// hold strings (or that hold a string now) keep VALUE as a string even if
// it looks like a number; otherwise see ParseValue.
func (e *Editor) TypedValue(key, value string, asString bool) json.RawMessage {
	if r, _ := ruleFor(key); !asString && r != nil && (r.kind == kString || r.kind == kURL) {
		if !bytes.HasPrefix(bytes.TrimSpace([]byte(value)), []byte(`"`)) {
			asString = true
		}
	}
	if !asString {
		if cur, err := e.Read(); err == nil && cur != nil {
			if doc, err := Parse(cur); err == nil {
				if raw, ok := doc.Get(key); ok && len(raw) > 0 && raw[0] == '"' {
					t := bytes.TrimSpace([]byte(value))
					if len(t) == 0 || (t[0] != '"' && t[0] != '{' && t[0] != '[' && string(t) != "null") {
						asString = true
					}
				}
			}
		}
	}
	return ParseValue(value, asString)
}

// Get returns the value of a dotted key, redacted for showing.
func (e *Editor) Get(key string) (any, error) {
	text, err := e.Read()
	if err == nil && text == nil {
		err = fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("read app config %s: %w", e.Path, err)
	}
	doc, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; 'cfrollback config validate' shows every problem", e.Path, err)
	}
	raw, ok := doc.Get(key)
	if !ok {
		return nil, fmt.Errorf("%s is not set in %s", key, e.Path)
	}
	v, _ := decodeValue(raw)
	return RedactValue(key, v), nil
}
