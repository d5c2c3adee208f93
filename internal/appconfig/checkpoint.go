package appconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cfrollback/cfrollback/internal/fsutil"
	"github.com/cfrollback/cfrollback/internal/install"
)

// CheckpointFormat marks a config checkpoint file.
const CheckpointFormat = "cfrollback-config-checkpoint/1"

// TimestampLayout is the seed's `date +%Y%m%d-%H%M%S`.
const TimestampLayout = "20060102-150405"

// Checkpoint is a saved copy of the app config with where and when it came
// from. Content is the file's exact text, so a restore gives back the same
// bytes (formatting and key order included). The file holds secrets and is
// written mode 0600; listings never show Content.
type Checkpoint struct {
	Format     string    `json:"format"`
	Time       time.Time `json:"time"`
	Source     string    `json:"source"`
	AppVersion string    `json:"app_version,omitempty"`
	SHA256     string    `json:"sha256"`
	Size       int       `json:"size"`
	User       string    `json:"user"`
	Host       string    `json:"host"`
	Reason     string    `json:"reason,omitempty"`
	Content    string    `json:"content"`
}

// CheckpointInfo is a checkpoint without its content, for listings.
type CheckpointInfo struct {
	Path       string    `json:"path"`
	Time       time.Time `json:"time"`
	Source     string    `json:"source"`
	AppVersion string    `json:"app_version,omitempty"`
	SHA256     string    `json:"sha256"`
	Size       int       `json:"size"`
	User       string    `json:"user"`
	Reason     string    `json:"reason,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// SHA256Hex is the hex sha256 of b.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Who is the user that runs cfrollback, with the sudo user when there is one.
func Who() string {
	name := fmt.Sprint(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if su := os.Getenv("SUDO_USER"); su != "" && su != name {
		name += " (sudo by " + su + ")"
	}
	return name
}

// exactVersion: 2.0.0-alpha.113, not ^2.0.0, ~2, latest, a URL or a file: spec.
func exactVersion(v string) bool {
	if v == "" || (v[0] < '0' || v[0] > '9') {
		return false
	}
	return !strings.ContainsAny(v, " ^~<>=|*xX:/")
}

// NewCheckpoint describes content as read from source.
func NewCheckpoint(source string, content []byte, appVersion, reason string, now time.Time) Checkpoint {
	host, _ := os.Hostname()
	return Checkpoint{Format: CheckpointFormat, Time: now.Round(0), Source: source, AppVersion: appVersion,
		SHA256: SHA256Hex(content), Size: len(content), User: Who(), Host: host, Reason: reason, Content: string(content)}
}

// CheckpointName is config-checkpoint-YYYYmmdd-HHMMSS.json.
func CheckpointName(prefix string, t time.Time) string {
	return prefix + t.Format(TimestampLayout) + ".json"
}

// WriteNew writes data durably (temp, fsync, rename, fsync dir) to path,
// or to path with -2, -3 ... before the extension if that name is taken;
// an existing file is never replaced. It returns the name it used.
func WriteNew(path string, data []byte, mode fs.FileMode) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := fsutil.WriteTemp(dir, data, mode, fsutil.WriteOptions{TempPattern: ".cfrollback-new-*"})
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	for i := 1; i < 1000; i++ {
		name := path
		if i > 1 {
			name = fmt.Sprintf("%s-%d%s", base, i, ext)
		}
		err := install.Rename(tmp, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("write %s: too many files of that name", path)
}

// WriteCheckpoint saves cp as output, or when output is "" as
// <dir>/config-checkpoint-YYYYmmdd-HHMMSS.json.
func WriteCheckpoint(dir, output string, cp Checkpoint) (string, error) {
	data, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return "", err
	}
	if output == "" {
		// dir is <backup.dir>/config, which root writes in: a deploy user may own it (it is
		// the backup dir's), other users must not be able to write it (fsutil.CheckSharedDir).
		// An --output named by the operator is theirs to choose; WriteNew never follows a
		// symlink at the name (a new temp file, renamed without replacing).
		if err := fsutil.MkdirShared(dir, 0o700); err != nil {
			return "", fmt.Errorf("write checkpoint: %w", fsutil.WithKey(err, "backup.dir"))
		}
		output = filepath.Join(dir, CheckpointName("config-checkpoint-", cp.Time))
	}
	name, err := WriteNew(output, append(data, '\n'), 0o600)
	if err != nil {
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	return name, nil
}

// ReadSource reads a file to restore from: a checkpoint (its content is
// checked against its sha256) or a plain config file.
func ReadSource(path string) (content []byte, cp *Checkpoint, err error) {
	b, err := fsutil.ReadFile(path, fsutil.MaxSmallFile)
	if err != nil {
		return nil, nil, err
	}
	var probe struct {
		Format string `json:"format"`
	}
	if json.Unmarshal(b, &probe) != nil || probe.Format != CheckpointFormat {
		return b, nil, nil
	}
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			err = fmt.Errorf("its field %q holds a JSON %s, not a %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return nil, nil, fmt.Errorf("%s is a damaged checkpoint (%w): it was edited or not written by cfrollback; 'cfrollback config checkpoints' lists the others", path, err)
	}
	if SHA256Hex([]byte(c.Content)) != c.SHA256 {
		return nil, nil, fmt.Errorf("%s: the checkpoint's content does not match its sha256 %s: it was edited or damaged", path, c.SHA256)
	}
	return []byte(c.Content), &c, nil
}

// ListCheckpoints returns the checkpoints in dir, newest first. Files that
// cannot be read are listed with their error.
func ListCheckpoints(dir string) ([]CheckpointInfo, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "config-checkpoint-*.json"))
	if err != nil {
		return nil, err
	}
	out := []CheckpointInfo{}
	for _, p := range matches {
		info := CheckpointInfo{Path: p}
		_, cp, err := ReadSource(p)
		switch {
		case err != nil:
			info.Error = RedactString(err.Error())
		case cp == nil:
			info.Error = "not a cfrollback checkpoint (a plain config file?)"
		default:
			info.Time, info.Source, info.AppVersion = cp.Time, cp.Source, cp.AppVersion
			info.SHA256, info.Size, info.User, info.Reason = cp.SHA256, cp.Size, cp.User, RedactString(cp.Reason)
		}
		if info.Time.IsZero() {
			if fi, err := os.Stat(p); err == nil {
				info.Time = fi.ModTime()
			}
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Path > out[j].Path
	})
	return out, nil
}

// jsonKind names a Go kind the way a JSON reader would say it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	}
	return "number"
}
