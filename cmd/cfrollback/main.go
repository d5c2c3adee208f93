// Command cfrollback rolls a host-installed service back to a known-good backup.
package main

import (
	"os"

	"github.com/cfrollback/cfrollback/internal/cli"
)

func main() { os.Exit(cli.Main()) }
