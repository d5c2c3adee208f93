package integration

import (
	"fmt"
	"os/exec"
)

func runShell(script string) error {
	if out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		return fmt.Errorf("sh -c %q: %w\n%s", script, err, out)
	}
	return nil
}
