package process

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-io/berth/internal/runtime"
)

// stderrTailLines is how many stderr lines of a process are kept in memory
// for failure messages.
const stderrTailLines = 20

// proc is one run of an instance's command.
type proc struct {
	cmd   *exec.Cmd
	pid   int
	lease portLease
	url   string
	tail  *tailWriter

	exited chan struct{} // closed once the process is reaped and cleaned up
	state  *os.ProcessState
	err    error // from Wait, when it failed to wait
}

// launch starts container c of instance id once, in dir, on a fresh port
// lease. The returned proc owns one goroutine, which ends when the process
// has exited.
func (r *Runtime) launch(id string, c runtime.ContainerSpec, dir string) (_ *proc, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("instance dir: %w", err)
	}
	lease, err := r.ports.allocate()
	if err != nil {
		return nil, err
	}
	var closers []io.Closer
	defer func() {
		if err != nil {
			for _, c := range closers {
				c.Close()
			}
			r.ports.release(lease)
		}
	}()
	stdout, err := openLog(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	closers = append(closers, stdout)
	stderr, err := openLog(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	closers = append(closers, stderr)
	env, err := r.environment(c, lease)
	if err != nil {
		return nil, err
	}

	tail := newTailWriter(stderr, stderrTailLines)
	cmd := exec.Command(c.Image.Command[0], c.Image.Command[1:]...)
	cmd.Dir = c.Image.WorkDir
	cmd.Env = env
	// Both outputs go through pipes that berth copies to the log files:
	// the process gets no descriptor of a file under berth's data dir.
	cmd.Stdout = struct{ io.Writer }{stdout}
	cmd.Stderr = tail
	cmd.SysProcAttr = procAttr()
	if ra := r.runAs; ra != nil {
		cmd.SysProcAttr.Credential = ra.credential()
		if cmd.Dir == "" {
			cmd.Dir = cmp.Or(c.Model.LocalDir, "/")
		}
	} else if cmd.Dir == "" {
		cmd.Dir = dir
	}
	// A grandchild holding stderr open must not keep Wait from returning.
	cmd.WaitDelay = time.Second
	// The pid file is written before the command runs any code, so a
	// berth killed at any moment leaves behind no group it does not know.
	record := func(pid int) error { return writePIDFile(dir, pid) }
	closeInheritedOnExec()
	if err := r.startCmd(cmd, record); err != nil {
		// Named by its base name only: the message may end up in a
		// FailureReason, which must not map the host's directories.
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == cmd.Path {
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return nil, fmt.Errorf("run %s: %w", filepath.Base(c.Image.Command[0]), err)
	}

	p := &proc{
		cmd:    cmd,
		pid:    cmd.Process.Pid,
		lease:  lease,
		url:    "http://127.0.0.1:" + strconv.Itoa(lease.Bind),
		tail:   tail,
		exited: make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		// Take down whatever the server left in its process group. The
		// group id stays reserved while any member lives, so this cannot
		// hit an unrelated group unless the pid was recycled within
		// microseconds of the reap.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		if err := os.Remove(filepath.Join(dir, pidFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("remove pid file", "instance", id, "container", c.Name, "err", err)
		}
		for _, c := range closers {
			c.Close()
		}
		r.ports.release(lease)
		close(p.exited)
	}()
	return p, nil
}

// exitReason describes how an exited process ended, with its last stderr
// lines, in words fit for a FailureReason.
func (p *proc) exitReason() string {
	var s string
	switch ws, ok := p.stateSys(); {
	case !ok:
		s = fmt.Sprintf("process ended, but waiting for it failed: %v", p.err)
	case ws.Exited():
		s = fmt.Sprintf("process exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		s = fmt.Sprintf("process was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	default:
		s = "process ended: " + p.state.String()
	}
	return s + p.stderrSuffix()
}

func (p *proc) stateSys() (syscall.WaitStatus, bool) {
	if p.state == nil {
		return 0, false
	}
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	return ws, ok
}

// stderrSuffix is "; last stderr lines: a | b" or empty, kept short enough
// for a 1024-character FailureReason.
func (p *proc) stderrSuffix() string {
	const budget = 700
	lines := p.tail.lines()
	n := 0
	i := len(lines)
	for i > 0 && n+len(lines[i-1])+3 <= budget {
		i--
		n += len(lines[i]) + 3
	}
	if i == len(lines) {
		return ""
	}
	return "; last stderr lines: " + strings.Join(lines[i:], " | ")
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// baseEnvKeys are the only variables a model process inherits from berth.
var baseEnvKeys = []string{"PATH", "HOME", "LANG", "TMPDIR", "TZ"}

func baseEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range baseEnvKeys {
		v := getenv(k)
		if k == "PATH" && v == "" {
			v = "/usr/local/bin:/usr/bin:/bin"
		}
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// environment builds a process environment: the base, the image's Env,
// the container's Env, then the SageMaker contract variables, later ones
// winning. It is sorted for reproducibility.
func (r *Runtime) environment(c runtime.ContainerSpec, lease portLease) ([]string, error) {
	m := make(map[string]string)
	for _, kv := range r.baseEnv {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	if r.runAs != nil {
		m["HOME"] = r.runAs.Home // berth's own HOME is not the user's
	}
	for i, src := range []map[string]string{c.Image.Env, c.Env} {
		for k, v := range src {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
				return nil, fmt.Errorf("invalid environment variable %q", k)
			}
			// The image's own Env comes from the operator's config and is
			// trusted; the model's is checked again here for models stored
			// before the control plane refused such keys.
			if why := runtime.RefusedProcessEnv(k); i == 1 && why != "" {
				return nil, fmt.Errorf("environment variable %s is not allowed: %s", k, why)
			}
			m[k] = v
		}
	}
	maps.Copy(m, runtime.ContractEnv(lease.Bind, lease.SafeLo, lease.SafeHi, c.Model.LocalDir))
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env, nil
}

// containerDirName names the directory of container i (named name) of
// instance id: the instance's own directory name for the first container,
// so that a single-container instance keeps the layout it always had, and
// one made of the ID and the name for the others. All sit right under the
// state dir, where the sweep looks for pid files.
func containerDirName(id, name string, i int) string {
	if i == 0 {
		return instanceDirName(id)
	}
	// NUL appears in no ID (InstanceSpec.Validate), so no other
	// instance's ID names the same directory.
	return instanceDirName(id + "\x00" + name)
}

// instanceDirName turns an instance ID into one safe path element: unsafe
// characters become '_', and a hash of the ID keeps distinct IDs apart
// ("a/b" and "a_b") and rules out "." and "..".
func instanceDirName(id string) string {
	var b strings.Builder
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	sum := sha256.Sum256([]byte(id))
	return b.String() + "-" + hex.EncodeToString(sum[:4])
}

// tailWriter writes to w and remembers the last n lines written.
type tailWriter struct {
	w io.Writer
	n int

	mu      sync.Mutex
	ring    []string
	partial []byte
	werr    error
}

// maxLineLen bounds a remembered line; longer lines are cut.
const maxLineLen = 512

func newTailWriter(w io.Writer, n int) *tailWriter {
	return &tailWriter{w: w, n: n}
}

// Write never fails: losing the log file must not break the process's
// stderr pipe.
func (t *tailWriter) Write(b []byte) (int, error) {
	n := len(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.werr == nil {
		_, t.werr = t.w.Write(b)
	}
	for len(b) > 0 {
		i := slices.Index(b, '\n')
		if i < 0 {
			t.partial = appendCapped(t.partial, b)
			break
		}
		t.partial = appendCapped(t.partial, b[:i])
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		b = b[i+1:]
	}
	return n, nil
}

func appendCapped(dst, src []byte) []byte {
	if room := maxLineLen - len(dst); len(src) > room {
		src = src[:max(room, 0)]
	}
	return append(dst, src...)
}

func (t *tailWriter) push(line string) {
	line = strings.TrimRight(line, "\r")
	t.ring = append(t.ring, line)
	if len(t.ring) > t.n {
		t.ring = slices.Delete(t.ring, 0, len(t.ring)-t.n)
	}
}

// lines returns the remembered lines, oldest first, including an
// unterminated last line.
func (t *tailWriter) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.ring)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
		if len(out) > t.n {
			out = out[1:]
		}
	}
	return out
}
