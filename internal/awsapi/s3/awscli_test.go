package s3

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSCLI drives the handler with the AWS CLI, when it is installed:
// a 50 MB "aws s3 cp" is a multipart upload of concurrent parts, and the
// download is ranged.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the AWS CLI")
	}
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	dir := t.TempDir()
	spool := t.TempDir()
	store := openStore(t, filepath.Join(dir, "objects"))
	srv := httptest.NewServer(NewHandler(store, testLogger(t), WithMultipartDir(spool)))
	t.Cleanup(srv.Close)

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(awsBin, append([]string{"--endpoint-url", srv.URL}, args...)...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env,
			"AWS_ACCESS_KEY_ID=berth",
			"AWS_SECRET_ACCESS_KEY=berth-secret",
			"AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE="+filepath.Join(dir, "no-config"),
			"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-credentials"),
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	src := filepath.Join(dir, "big.bin")
	data := pattern(50 << 20)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run("s3", "mb", "s3://cli-bucket")
	run("s3", "cp", src, "s3://cli-bucket/uploads/big.bin")
	run("s3", "cp", filepath.Join(dir, "big.bin"), "s3://cli-bucket/uploads/copy with space.bin")
	if ls := run("s3", "ls", "--recursive", "s3://cli-bucket/"); !strings.Contains(ls, "uploads/big.bin") || !strings.Contains(ls, "uploads/copy with space.bin") {
		t.Errorf("aws s3 ls:\n%s", ls)
	}
	dst := filepath.Join(dir, "back.bin")
	run("s3", "cp", "s3://cli-bucket/uploads/big.bin", dst)
	back, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("downloaded %d bytes that differ from the %d uploaded", len(back), len(data))
	}
	run("s3", "rm", "--recursive", "s3://cli-bucket/uploads/")
	run("s3", "rb", "s3://cli-bucket")
}
