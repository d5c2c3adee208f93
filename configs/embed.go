// Package configs holds the files cfrollback ships for the host: the sample
// settings file and the systemd units of the scheduled backup, embedded so
// that 'cfrollback backup schedule --install' writes exactly what is in the
// repository.
package configs

import "embed"

// Systemd holds systemd/cfrollback-backup.service and .timer.
//
//go:embed systemd/*
var Systemd embed.FS
