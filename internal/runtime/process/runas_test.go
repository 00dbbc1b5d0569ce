package process

import (
	"os/user"
	"strconv"
	"testing"
)

func TestResolveRunAs(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	tests := []struct {
		spec    string
		euid    int
		want    *RunAs // nil: keep berth's user
		wantErr bool
	}{
		{spec: "nobody", euid: 0, want: &RunAs{UID: uint32(uid), GID: uint32(gid), Home: nobody.HomeDir}},
		{spec: "nobody", euid: 1000}, // berth is not root
		{spec: "", euid: 0},          // berth's own user
		{spec: "root", euid: 0},      // root stays root
		{spec: "0:0", euid: 0},       //
		{spec: "4242:4343", euid: 0, want: &RunAs{UID: 4242, GID: 4343, Home: "/"}},
		{spec: nobody.Uid, euid: 0, want: &RunAs{UID: uint32(uid), GID: uint32(gid), Home: nobody.HomeDir}},
		{spec: "no-such-user-here", euid: 0, wantErr: true},
		{spec: "nobody:staff", euid: 0, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ResolveRunAs(tt.spec, tt.euid)
		if (err != nil) != tt.wantErr {
			t.Errorf("ResolveRunAs(%q, %d) error = %v, want error %v", tt.spec, tt.euid, err, tt.wantErr)
			continue
		}
		switch {
		case tt.want == nil && got != nil:
			t.Errorf("ResolveRunAs(%q, %d) = %+v, want berth's own user", tt.spec, tt.euid, *got)
		case tt.want != nil && (got == nil || *got != *tt.want):
			t.Errorf("ResolveRunAs(%q, %d) = %+v, want %+v", tt.spec, tt.euid, got, *tt.want)
		}
	}
}
