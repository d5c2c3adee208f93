package runbook

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// restoreOwner is who owns restored files: restore.owner when set, else the
// owner of the install dir being replaced, never the archive's uid/gid.
// Without root there is nothing to choose: files belong to the caller.
func (r *runner) restoreOwner() (uid, gid int, err error) {
	if os.Geteuid() != 0 {
		return -1, -1, nil
	}
	if o := r.cfg.Restore.Owner; o != "" {
		return parseOwner(o)
	}
	info, err := os.Stat(r.res.InstallDir)
	if err != nil {
		return 0, 0, nil // no install dir to copy the owner from: root
	}
	st := info.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), nil
}

func parseOwner(s string) (int, int, error) {
	u, g, _ := strings.Cut(s, ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		usr, lerr := user.Lookup(u)
		if lerr != nil {
			return 0, 0, fmt.Errorf("restore.owner %q: no such user", s)
		}
		uid, _ = strconv.Atoi(usr.Uid)
		if g == "" {
			g = usr.Gid
		}
	}
	if g == "" {
		return uid, uid, nil
	}
	gid, err := strconv.Atoi(g)
	if err != nil {
		grp, lerr := user.LookupGroup(g)
		if lerr != nil {
			return 0, 0, fmt.Errorf("restore.owner %q: no such group", s)
		}
		gid, _ = strconv.Atoi(grp.Gid)
	}
	return uid, gid, nil
}
