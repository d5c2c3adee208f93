// Package settings holds cfrollback's own settings (not the app's config: that is
// internal/appconfig) as a typed struct: the built-in Claude Flow profile (Defaults), validation with the offending key
// named (Validate), and where each effective value came from (Source).
//
// Loading from YAML, CFROLLBACK_* environment variables and flags happens in
// internal/cli, which is the only place that knows about viper; every other
// package receives a plain Config.
package settings
