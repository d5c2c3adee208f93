package cli

import (
	"testing"

	"github.com/cfrollback/cfrollback/internal/testenv"
)

// The database_*.txtar scripts skip without sqlite3 (testscript cannot call testenv); this
// test makes CI=true fail instead of passing by skipping them.
func TestDatabaseScriptsHaveSQLite3(t *testing.T) {
	testenv.RequireTool(t, "sqlite3")
}
