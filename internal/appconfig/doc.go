// Package appconfig changes the service's own configuration safely: the app
// config JSON (validated, edited surgically so key order and formatting
// survive, written atomically, checkpointed before every change, secrets
// redacted in everything shown), the agent definitions (exported, imported
// and reset as a whole directory swapped in one rename), and the staged
// connection test of the app's API base URL.
//
// It takes plain values and paths, never viper or cobra, and holds no lock
// and writes no journal: a change is run as a procedure by internal/runbook
// (ChangeConfig, ReplaceAgents), which does both. Printing is the cli package's.
package appconfig
