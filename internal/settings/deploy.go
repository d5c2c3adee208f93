package settings

import (
	"slices"
	"strings"
	"time"
)

// DeployConfig is `cfrollback deploy`'s gate (docs/DEPLOY.md): how fresh its backup must be,
// how long the deploy command may run, the health gate after it and the watch window after
// that, with thresholds stricter than assess's (the seed's numbers are for a service that has
// been running; a deploy that just went out is judged harder).
type DeployConfig struct {
	// BackupMaxAge: a backup of the running install younger than this, verified, is used;
	// otherwise deploy makes one.
	BackupMaxAge time.Duration `mapstructure:"backup_max_age" json:"backup_max_age"`
	// CommandTimeout bounds the deploy command; its process group is killed after it.
	CommandTimeout time.Duration `mapstructure:"command_timeout" json:"command_timeout"`
	// GatePasses consecutive passes of the critical probes within GateTimeout pass the gate.
	GatePasses  int           `mapstructure:"gate_passes" json:"gate_passes"`
	GateTimeout time.Duration `mapstructure:"gate_timeout" json:"gate_timeout"`
	// Watch is how long the service is watched after the gate (0: not watched), sampled every
	// WatchInterval as monitor samples it.
	Watch         time.Duration `mapstructure:"watch" json:"watch"`
	WatchInterval time.Duration `mapstructure:"watch_interval" json:"watch_interval"`
	// FailOn are the decision matrix's severities that fail the watch.
	FailOn []string `mapstructure:"fail_on" json:"fail_on"`
	// The watch's thresholds (assess's defaults in brackets): p95 over ResponseFactor times
	// the baseline's [5], failed requests over ErrorRate [0.10], requests without an answer
	// over NetworkRate [0.05], Restarts restarts [3], all over the watch so far; a rate is
	// judged from MinSamples samples on [10].
	ResponseFactor float64 `mapstructure:"response_factor" json:"response_factor"`
	ErrorRate      float64 `mapstructure:"error_rate" json:"error_rate"`
	NetworkRate    float64 `mapstructure:"network_rate" json:"network_rate"`
	Restarts       int     `mapstructure:"restarts" json:"restarts"`
	MinSamples     int     `mapstructure:"min_samples" json:"min_samples"`
}

// DefaultDeploy is the deploy section's defaults.
func DefaultDeploy() DeployConfig {
	return DeployConfig{
		BackupMaxAge: time.Hour, CommandTimeout: 30 * time.Minute,
		GatePasses: 3, GateTimeout: 2 * time.Minute,
		Watch: 5 * time.Minute, WatchInterval: 5 * time.Second,
		FailOn:         []string{"P0", "P1", "P2"},
		ResponseFactor: 2, ErrorRate: 0.02, NetworkRate: 0.02, Restarts: 1, MinSamples: 10,
	}
}

func (d DeployConfig) validate() error {
	bad := func(key string, v any, reason string) error {
		return &InvalidError{Key: "deploy." + key, Value: v, Reason: reason}
	}
	for _, kv := range []struct {
		k string
		d time.Duration
	}{
		{"backup_max_age", d.BackupMaxAge}, {"command_timeout", d.CommandTimeout},
		{"gate_timeout", d.GateTimeout}, {"watch_interval", d.WatchInterval},
	} {
		if kv.d <= 0 {
			return bad(kv.k, kv.d, "must be a positive duration such as 2m")
		}
	}
	if d.Watch < 0 {
		return bad("watch", d.Watch, "must be 0 (no watch) or a duration such as 5m")
	}
	if d.GatePasses < 1 {
		return bad("gate_passes", d.GatePasses, "must be at least 1")
	}
	for _, s := range d.FailOn {
		if !slices.Contains([]string{"P0", "P1", "P2", "P3"}, s) {
			return bad("fail_on", strings.Join(d.FailOn, ","), "each entry must be P0, P1, P2 or P3")
		}
	}
	if d.ResponseFactor <= 1 {
		return bad("response_factor", d.ResponseFactor, "must be over 1 (a factor of the baseline's p95)")
	}
	for _, kv := range []struct {
		k string
		v float64
	}{{"error_rate", d.ErrorRate}, {"network_rate", d.NetworkRate}} {
		if kv.v < 0 || kv.v >= 1 {
			return bad(kv.k, kv.v, "must be a fraction from 0 to below 1, such as 0.02")
		}
	}
	if d.Restarts < 1 {
		return bad("restarts", d.Restarts, "must be at least 1")
	}
	if d.MinSamples < 1 {
		return bad("min_samples", d.MinSamples, "must be at least 1")
	}
	return nil
}
