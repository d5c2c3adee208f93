package service

import (
	"strings"
	"testing"
)

func TestParseSystemctlShow(t *testing.T) {
	tests := []struct {
		name, out string
		want      unitState
		wantErr   string
	}{
		{
			// systemctl prints properties in its own order, not the order asked for.
			name: "running service",
			out:  "MainPID=46\nResult=success\nNRestarts=0\nLoadState=loaded\nActiveState=active\nSubState=running\n",
			want: unitState{LoadState: "loaded", ActiveState: "active", SubState: "running", Result: "success", MainPID: 46},
		},
		{
			name: "missing unit",
			out:  "MainPID=0\nResult=success\nNRestarts=0\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n",
			want: unitState{LoadState: "not-found", ActiveState: "inactive", SubState: "dead", Result: "success"},
		},
		{
			name: "crash looping",
			out:  "LoadState=loaded\r\nActiveState=activating\r\nSubState=auto-restart\r\nResult=exit-code\r\nMainPID=0\r\nNRestarts=12\r\n",
			want: unitState{LoadState: "loaded", ActiveState: "activating", SubState: "auto-restart", Result: "exit-code", NRestarts: 12},
		},
		{
			name: "not a service: no service properties",
			out:  "LoadState=loaded\nActiveState=active\nSubState=active\nNRestarts=[not set]\nMainPID=\n",
			want: unitState{LoadState: "loaded", ActiveState: "active", SubState: "active"},
		},
		{
			name: "values with = and noise lines",
			out:  "Warning: the unit file changed on disk\nLoadState=loaded\nActiveState=failed\nSubState=failed\nResult=a=b\n",
			want: unitState{LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "a=b"},
		},
		{name: "empty", out: "", wantErr: "no LoadState/ActiveState"},
		{name: "bad pid", out: "LoadState=loaded\nActiveState=active\nMainPID=abc\n", wantErr: `MainPID="abc" is not a number`},
		{name: "negative restarts", out: "LoadState=loaded\nActiveState=active\nNRestarts=-1\n", wantErr: "is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSystemctlShow([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v\nwant %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseSystemctlShow(f *testing.F) {
	f.Add([]byte("LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=46\nNRestarts=0\nResult=success\n"))
	f.Add([]byte("NRestarts=[not set]\nMainPID=\n"))
	f.Add([]byte("=\n==\nMainPID=99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		u, err := parseSystemctlShow(out)
		if err == nil && (u.LoadState == "" || u.ActiveState == "" || u.MainPID < 0 || u.NRestarts < 0) {
			t.Errorf("accepted %q as %+v", out, u)
		}
	})
}
