// Package integration runs the real cfrollback binary end to end: against a
// real systemd booted in its own namespaces, a real pm2, and with the process
// SIGKILLed at every step boundary of the emergency procedure.
package integration
