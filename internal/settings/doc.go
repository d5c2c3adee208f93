// Package settings holds cfrollback's own settings (not the app's config: that is
// internal/appconfig) as a typed struct: the built-in Claude Flow profile (Defaults),
// validation with the offending key named (Validate), loading from a YAML file,
// CFROLLBACK_* environment variables and the global flags (Loader, on viper), and where each
// effective value came from (Loader.Source).
//
// internal/cli binds the flags and hands the Loader what was given; every other package
// receives a plain Config.
package settings
