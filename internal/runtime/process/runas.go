package process

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RunAs is the user model processes run as when it differs from berth's.
type RunAs struct {
	UID, GID uint32
	// Home is the user's home directory, the processes' HOME.
	Home string
}

// ResolveRunAs turns Options.RunAsUser into the user to switch to, or nil
// when processes keep berth's own user: spec is empty, berth is not root
// (euid), or spec names root. spec is a user name, "uid" or "uid:gid".
func ResolveRunAs(spec string, euid int) (*RunAs, error) {
	if spec == "" || euid != 0 {
		return nil, nil
	}
	var ra RunAs
	name, group, hasGroup := strings.Cut(spec, ":")
	var u *user.User
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		ra.UID = uint32(uid)
		ra.GID = uint32(uid)
		u, _ = user.LookupId(name) // a uid need not have a passwd entry
	} else {
		if u, err = user.Lookup(name); err != nil && name == "nobody" {
			// The conventional ids, for systems without a passwd entry.
			u = &user.User{Uid: "65534", Gid: "65534", HomeDir: "/"}
		} else if err != nil {
			return nil, fmt.Errorf("run as user %q: %w", spec, err)
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("run as user %q: uid %q: %w", spec, u.Uid, err)
		}
		ra.UID = uint32(uid)
	}
	if u != nil {
		if gid, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			ra.GID = uint32(gid)
		}
		ra.Home = u.HomeDir
	}
	if hasGroup {
		gid, err := strconv.ParseUint(group, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("run as user %q: the group must be a number", spec)
		}
		ra.GID = uint32(gid)
	}
	if ra.UID == 0 {
		return nil, nil
	}
	if ra.Home == "" {
		ra.Home = "/"
	}
	return &ra, nil
}

// credential is the process credential for ra: its uid and gid and no
// supplementary groups (berth's, root's, are dropped).
func (ra *RunAs) credential() *syscall.Credential {
	return &syscall.Credential{Uid: ra.UID, Gid: ra.GID, Groups: []uint32{}}
}

// Reachable reports, as an error naming the first obstacle, whether ra
// can pass through every directory on the way to path (path itself
// included when it is a directory). It reads permission bits only (no
// ACLs).
func (ra *RunAs) Reachable(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() && !ra.may(fi, 0o1) {
			return fmt.Errorf("%s (mode %v) cannot be searched by uid %d", p, fi.Mode().Perm(), ra.UID)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// may reports whether ra gets the permission bits want (r=4, w=2, x=1)
// on fi by its owner, group or other bits.
func (ra *RunAs) may(fi fs.FileInfo, want fs.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	switch {
	case !ok:
		return perm&want == want
	case st.Uid == ra.UID:
		return (perm>>6)&want == want
	case st.Gid == ra.GID:
		return (perm>>3)&want == want
	default:
		return perm&want == want
	}
}

// PrepareDataDir sets up berth's data dir for model processes that run as
// ra. They must read unpacked models in modelCache, a directory right
// under dataDir, and nothing else of it: dataDir and modelCache become
// 0711 (others may pass through to a path they know, but not list them),
// every other entry of dataDir, and of modelCache but the unpacked models,
// loses its group and other permissions, and
// berth's umask becomes 077 so that whatever it creates later is private
// too (the model cache sets the modes of unpacked models explicitly). It
// fails, saying why, when ra cannot reach modelCache.
func (ra *RunAs) PrepareDataDir(dataDir, modelCache string) error {
	syscall.Umask(0o077)
	if filepath.Dir(filepath.Clean(modelCache)) != filepath.Clean(dataDir) {
		return fmt.Errorf("model cache %s is not directly in the data dir %s", modelCache, dataDir)
	}
	if err := os.MkdirAll(modelCache, 0o711); err != nil {
		return err
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dataDir, e.Name())
		if p == filepath.Clean(modelCache) || e.Type()&fs.ModeSymlink != 0 {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
			return err
		}
	}
	// In the cache only unpacked models ("sha256-…") are for the model
	// processes; its index would list them all.
	ents, err = os.ReadDir(modelCache)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "sha256-") || e.Type()&fs.ModeSymlink != 0 {
			continue
		}
		if fi, err := e.Info(); err == nil {
			if err := os.Chmod(filepath.Join(modelCache, e.Name()), fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	for _, d := range []string{dataDir, modelCache} {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	if err := ra.Reachable(modelCache); err != nil {
		return fmt.Errorf("model processes run as uid %d and could not read the models berth unpacks: %w", ra.UID, err)
	}
	return nil
}
