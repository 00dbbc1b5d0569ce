package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
	"github.com/berth-io/berth/internal/testutil"
)

// createModelErr runs CreateModel for a test-image container and returns
// its error; the model must not exist afterwards if it failed.
func (s *server) createModelErr(t *testing.T, name string, c smtypes.ContainerDefinition) error {
	t.Helper()
	ctx := context.Background()
	if c.Image == nil {
		c.Image = aws.String(testImage)
	}
	_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String(name),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/berth"),
		PrimaryContainer: &c,
	})
	if err != nil {
		if _, derr := s.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(name)}); derr == nil {
			t.Errorf("model %s exists after a failed CreateModel", name)
		}
	}
	return err
}

// TestModelEnvironmentRefused: keys that steer the dynamic loader or
// berth's contract are refused for local-process images, naming the key,
// and nothing is created. LD_PRELOAD pointing into the model's own archive
// would otherwise run the archive's code inside a trusted image.
func TestModelEnvironmentRefused(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "models", "m/model.tar.gz", modelTarGz(t, map[string]string{"x.so": "not really"}))
	for _, key := range []string{
		"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG_OUTPUT", "GCONV_PATH", "GLIBC_TUNABLES",
		"SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_SAFE_PORT_RANGE", "SM_MODEL_DIR",
	} {
		t.Run(key, func(t *testing.T) {
			err := s.createModelErr(t, "env-"+strings.ToLower(strings.ReplaceAll(key, "_", "-")), smtypes.ContainerDefinition{
				ModelDataUrl: aws.String("s3://models/m/model.tar.gz"),
				Environment:  map[string]string{"FINE": "1", key: "../../artifacts/x.so"},
			})
			code, msg := apiError(err)
			t.Logf("%s: %s", code, msg)
			if code != "ValidationException" || !strings.Contains(msg, key) {
				t.Errorf("CreateModel with %s: %s %q, want a ValidationException naming it", key, code, msg)
			}
		})
	}
	// A value no process environment can hold is refused at CreateModel,
	// not left to fail the endpoint later.
	err := s.createModelErr(t, "env-nul", smtypes.ContainerDefinition{Environment: map[string]string{"FOO": "a\x00b"}})
	if code, msg := apiError(err); code != "ValidationException" || !strings.Contains(msg, "FOO") || !strings.Contains(msg, "NUL") {
		t.Errorf("CreateModel with a NUL in a value: %s %q, want a ValidationException naming the key", code, msg)
	}
	// Ordinary keys still pass, including ones that merely look alike.
	if err := s.createModelErr(t, "env-ok", smtypes.ContainerDefinition{Environment: map[string]string{"ld_preload": "x", "MY_LD_PRELOAD": "x", "SAGEMAKER_PROGRAM": "x"}}); err != nil {
		t.Errorf("CreateModel with ordinary keys: %v", err)
	}
}

// TestFileModelDataRefused: file:// model data outside the allowed
// directories is a ValidationException naming the URL and the config key;
// inside them it serves.
func TestFileModelDataRefused(t *testing.T) {
	allowed := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{allowed, outside} {
		if err := os.WriteFile(filepath.Join(d, "model.txt"), []byte("local weights"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}

	for _, cfgDirs := range [][]string{nil, {allowed}} {
		cfg := testConfig(t, t.TempDir())
		cfg.ModelData.AllowedFileDirs = cfgDirs
		s := startServer(t, cfg)
		for _, u := range []string{
			"file:///etc/passwd",
			"file://" + outside,
			"file://" + filepath.Join(outside, "missing.tar.gz"),
			"file://" + filepath.Join(allowed, "escape"),
			"file://" + allowed + "/../" + filepath.Base(outside),
		} {
			for _, c := range []smtypes.ContainerDefinition{
				{ModelDataUrl: aws.String(u)},
				{ModelDataSource: &smtypes.ModelDataSource{S3DataSource: &smtypes.S3ModelDataSource{S3Uri: aws.String(u + "/"), S3DataType: smtypes.S3ModelDataTypeS3Prefix, CompressionType: smtypes.ModelCompressionTypeNone}}},
			} {
				err := s.createModelErr(t, "filemodel", c)
				code, msg := apiError(err)
				t.Logf("CreateModel %s: %s: %s", u, code, msg)
				if code != "ValidationException" || !strings.Contains(msg, "file://") || !strings.Contains(msg, "model_data.allowed_file_dirs") {
					t.Errorf("dirs %v, CreateModel %s: %s %q; want a ValidationException naming the URL and model_data.allowed_file_dirs", cfgDirs, u, code, msg)
				}
				if strings.Contains(msg, "no such file") {
					t.Errorf("refusal of %s tells whether it exists: %q", u, msg)
				}
			}
		}
		if cfgDirs != nil {
			s.deploy(t, "local", map[string]string{"TESTSERVER_MODE": "model-file"}, "file://"+allowed, 1)
			if got, err := s.invoke(t, "local", "x"); err != nil || got != "local weights" {
				t.Errorf("invoke a model from an allowed dir = %q, %v", got, err)
			}
		}
	}
}

// TestFailureReasonsHideHostPaths provokes every kind of deployment
// failure and checks that the FailureReason says what went wrong without
// naming the data dir or any other host path (the test's binaries and
// directories all live under the temp dir), except the model's own
// file:// URL.
func TestFailureReasonsHideHostPaths(t *testing.T) {
	allowed := t.TempDir()
	if err := os.WriteFile(filepath.Join(allowed, "model.tar.gz"), modelTarGz(t, map[string]string{"model.txt": "w"}), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir)
	cfg.Runtime.StartupTimeout = 2 * time.Second
	cfg.ModelData.AllowedFileDirs = []string{allowed}
	cfg.Images["test/missing:1"] = config.Image{Command: []string{filepath.Join(t.TempDir(), "no-such-server")}}
	cfg.Images["test/complains:1"] = config.Image{Command: []string{"/bin/sh", "-c", `echo "cannot load $SM_MODEL_DIR/model.pkl from $PWD" >&2; exit 3`}}
	s := startServer(t, cfg)
	ctx := context.Background()
	s.upload(t, "models", "good/model.tar.gz", modelTarGz(t, map[string]string{"model.txt": "w"}))
	s.upload(t, "models", "gone/model.tar.gz", modelTarGz(t, map[string]string{"model.txt": "w"}))
	s.upload(t, "models", "bad/model.tar.gz", []byte("not an archive"))

	tests := []struct {
		name    string
		image   string
		env     map[string]string
		url     string
		prepare func(t *testing.T) // after CreateModel
		want    string             // in the reason
	}{
		{name: "object deleted", url: "s3://models/gone/model.tar.gz", want: "no such key",
			prepare: func(t *testing.T) {
				if _, err := s.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("models"), Key: aws.String("gone/model.tar.gz")}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "file deleted", url: "file://" + filepath.Join(allowed, "model.tar.gz"), want: "no such file",
			prepare: func(t *testing.T) { os.Remove(filepath.Join(allowed, "model.tar.gz")) }},
		{name: "not an archive", url: "s3://models/bad/model.tar.gz", want: "not a tar"},
		{name: "missing command", image: "test/missing:1", want: "no-such-server: fork/exec: no such file"},
		{name: "exits naming its files", image: "test/complains:1", url: "s3://models/good/model.tar.gz", want: "cannot load <data-dir>/"},
		{name: "never healthy", env: map[string]string{"TESTSERVER_PING_DELAY": "1h"}, want: "health check did not pass"},
		{name: "no instance dir", want: "<data-dir>/instances",
			prepare: func(t *testing.T) {
				inst := filepath.Join(dataDir, "instances")
				if err := os.RemoveAll(inst); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(inst, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("fail%d", i)
			c := smtypes.ContainerDefinition{Image: aws.String(testImage), Environment: tt.env}
			if tt.image != "" {
				c.Image = aws.String(tt.image)
			}
			if tt.url != "" {
				c.ModelDataUrl = aws.String(tt.url)
			}
			if err := s.createModelErr(t, name, c); err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(t)
			}
			s.createConfig(t, name, name, 1)
			s.createEndpoint(t, name, name)
			var reason string
			testutil.WaitFor(t, 20*time.Second, func() error {
				d, err := s.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
				if err != nil {
					return err
				}
				if d.EndpointStatus != smtypes.EndpointStatusFailed {
					return fmt.Errorf("status %s", d.EndpointStatus)
				}
				reason = aws.ToString(d.FailureReason)
				return nil
			})
			t.Logf("FailureReason: %s", reason)
			if !strings.Contains(reason, tt.want) {
				t.Errorf("FailureReason %q does not say %q", reason, tt.want)
			}
			shown := reason
			if tt.url != "" {
				shown = strings.ReplaceAll(shown, tt.url, "<url>")
			}
			for _, p := range []string{dataDir, os.TempDir() + "/"} {
				if strings.Contains(shown, p) {
					t.Errorf("FailureReason %q names the host path %s", reason, p)
				}
			}
		})
	}
}

// TestModelProcessRunsUnprivileged runs berth as root with the default
// run_as_user ("nobody") and checks, from inside a real model process,
// that it is not root, reads its model directory and none of berth's
// state, and holds no descriptor of berth's files.
func TestModelProcessRunsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: model processes change user only when berth is root")
	}
	// Test temp dirs are private to root; this one must be passable by
	// the model processes' user, and so must their command.
	base, err := os.MkdirTemp("", "berth-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	server := filepath.Join(base, "testserver")
	src, err := os.ReadFile(testserverbin.Build(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(server, src, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(base, "data")
	cfg := testConfig(t, dataDir)
	cfg.Runtime.RunAsUser = config.Default().Runtime.RunAsUser
	// The shell finds out what its user may do, says it on stdout (which
	// berth writes to the instance's stdout.log) and becomes the server.
	probe := `echo "uid=$(id -u) groups=$(id -G)"
cat "$SM_MODEL_DIR/model.txt" >/dev/null 2>&1 && echo "model readable"
for f in "$1/berth.db" "$1/berth.db-wal" "$1/berth.db-shm"; do
  head -c1 "$f" >/dev/null 2>&1 && echo "reads $f"
done
for d in "$1/objects" "$1/objects/models" "$1/instances" "$1/artifacts" "$1/artifacts/index" "$1"; do
  ls "$d" >/dev/null 2>&1 && echo "lists $d"
done
exec "$0"`
	cfg.Images["test/probe:1"] = config.Image{Command: []string{"/bin/sh", "-c", probe, server, dataDir}}
	s := startServer(t, cfg)
	s.upload(t, "models", "m/model.tar.gz", modelTarGz(t, map[string]string{"model.txt": "private weights"}))

	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm()&0o077 != 0o011 {
		t.Errorf("data dir mode %v, %v; want 0711", fi.Mode().Perm(), err)
	}
	ctx := context.Background()
	if _, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("probe"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/berth"),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image:        aws.String("test/probe:1"),
			ModelDataUrl: aws.String("s3://models/m/model.tar.gz"),
			Environment:  map[string]string{"TESTSERVER_MODE": "model-file"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	s.createConfig(t, "probe", "probe", 1)
	s.createEndpoint(t, "probe", "probe")
	s.waitInService(t, "probe")
	// The server itself reads the model through SM_MODEL_DIR.
	if got, err := s.invoke(t, "probe", "x"); err != nil || got != "private weights" {
		t.Fatalf("invoke = %q, %v", got, err)
	}

	logs, _ := filepath.Glob(filepath.Join(dataDir, "instances", "probe_*", "stdout.log"))
	if len(logs) != 1 {
		t.Fatalf("stdout logs: %v", logs)
	}
	var out []byte
	testutil.WaitFor(t, 5*time.Second, func() error {
		out, _ = os.ReadFile(logs[0])
		if !strings.Contains(string(out), "uid=") {
			return fmt.Errorf("stdout.log = %q", out)
		}
		return nil
	})
	t.Logf("the model process says:\n%s", out)
	if strings.Contains(string(out), "uid=0 ") || strings.Contains(string(out), " 0\n") {
		t.Errorf("the model process runs as root or in group 0:\n%s", out)
	}
	if !strings.Contains(string(out), "model readable") {
		t.Errorf("the model process cannot read its model directory:\n%s", out)
	}
	if strings.Contains(string(out), "reads ") || strings.Contains(string(out), "lists ") {
		t.Errorf("the model process reads berth's state:\n%s", out)
	}

	pidFile, _ := filepath.Glob(filepath.Join(filepath.Dir(logs[0]), "pid"))
	if len(pidFile) != 1 {
		t.Fatal("no pid file")
	}
	b, _ := os.ReadFile(pidFile[0])
	var pid int
	fmt.Sscan(string(b), &pid)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
			t.Errorf("model server %d runs as root: %s", pid, line)
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if strings.HasPrefix(target, dataDir) || strings.HasPrefix(target, "/proc/") {
			t.Errorf("model server %d holds fd %s -> %s", pid, fd.Name(), target)
		}
	}
}
