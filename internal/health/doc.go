// Package health answers "is the service healthy?" and waits until it is.
// A Prober is one check: an HTTP endpoint (HTTPProbe) or anything the caller
// wraps as a function (FuncProbe, e.g. "the service manager says active").
// All runs a set of checks once; WaitHealthy polls them until they pass a
// number of times in a row, so a service that answers once and then falls
// over again does not count as restored.
//
// Every Result carries a Detail written for the person reading the run at
// 3am: "HTTP 503", "connection refused", "timeout after 2s".
package health
