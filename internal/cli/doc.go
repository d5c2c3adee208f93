// Package cli is cfrollback's command tree. Each command file turns flags
// into an options struct and calls one domain function; the only knowledge
// of cobra and viper in the program lives here, and ONE function (exitCode)
// maps errors to the exit codes documented in docs/EXIT_CODES.md.
package cli
