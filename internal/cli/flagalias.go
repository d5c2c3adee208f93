package cli

import "github.com/spf13/pflag"

// aliasFlags makes each old flag name (a key of aliases) a hidden alias of its new name:
// --old VALUE sets the new flag (Changed reports it under either name), and help,
// completion and the man pages show only the new name. Old names keep scripts and
// runbooks working after a flag is renamed to the one name cfrollback uses for the
// concept everywhere. Any normalization fs already has still applies.
func aliasFlags(fs *pflag.FlagSet, aliases map[string]string) {
	prev := fs.GetNormalizeFunc()
	fs.SetNormalizeFunc(func(f *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := aliases[name]; ok {
			return prev(f, to)
		}
		n := prev(f, name)
		if to, ok := aliases[string(n)]; ok { // --api_url under a normalization to dashes
			return prev(f, to)
		}
		return n
	})
}
