package builtin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as `berth model-server <framework>`,
// so the HTTP tests below talk to a real separate process.
const helperEnv = "BERTH_TEST_MODEL_SERVER"

func TestMain(m *testing.M) {
	if fw := os.Getenv(helperEnv); fw != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := Main(ctx, fw, nil, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startProcess starts the model server as a child process and returns its
// base URL.
func startProcess(t *testing.T, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=xgboost", "SAGEMAKER_BIND_TO_PORT=0"}, env...)...)
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("model server exit: %v", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("model server did not stop on SIGTERM")
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, out)
		done <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("model server did not report its address")
	}
	return ""
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestModelServerProcess(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "xgboost", "testdata", "multi_softprob", "xgboost-model"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "xgboost-model"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	base := startProcess(t, "SM_MODEL_DIR="+dir, "SAGEMAKER_BATCH=true")

	resp, err := http.Get(base + "/ping")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ping: %v %v", resp, err)
	}
	resp.Body.Close()

	req, _ := http.NewRequest("POST", base+"/invocations", strings.NewReader("0.5,-1.25,,2,0.1,-0.3\n1,1,1,1,1,1\n"))
	req.Header.Set("Content-Type", "text/csv")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if resp.StatusCode != 200 || len(lines) != 2 || !strings.HasPrefix(lines[0], "[") {
		t.Fatalf("invocations %d %q", resp.StatusCode, body)
	}

	req, _ = http.NewRequest("POST", base+"/invocations", strings.NewReader(`{"instances":[{"features":[1,2,3]}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), `{"predictions": [{"score": [`) {
		t.Fatalf("json invocation %d %q", resp.StatusCode, body)
	}
}

func TestUnknownFramework(t *testing.T) {
	err := Main(context.Background(), "nope", nil, io.Discard, io.Discard)
	if !errors.Is(err, ErrUnknownFramework) || !strings.Contains(err.Error(), "xgboost") {
		t.Fatalf("err = %v", err)
	}
}

func TestBadFlagsAndEnv(t *testing.T) {
	env := map[string]string{"SM_MODEL_DIR": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	if err := run(context.Background(), "xgboost", []string{"-no-such-flag"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("bad flag accepted")
	}
	// An empty model dir is a startup error, not a hang.
	if err := run(context.Background(), "xgboost", []string{"-port", "0"}, getenv, io.Discard, io.Discard); err == nil {
		t.Fatal("started without a model")
	}
}

// TestModelServerProcessParquet: a batch-mode model server process answers
// a Parquet body (as a transform job with SplitType None sends one) with
// exactly the bytes it answers the CSV of the same rows, and refuses bad
// Parquet with 400.
func TestModelServerProcessParquet(t *testing.T) {
	fixture := filepath.Join("..", "xgboost", "testdata", "binary_logistic")
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(fixture, "xgboost-model"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "xgboost-model"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	base := startProcess(t, "SM_MODEL_DIR="+dir, "SAGEMAKER_BATCH=true")
	rowsCSV, err := os.ReadFile(filepath.Join(fixture, "rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rowsPQ, err := os.ReadFile(filepath.Join(fixture, "rows.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	post := func(ct, accept string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/invocations", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", ct)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for _, accept := range []string{"", "text/csv", "application/json", "application/jsonlines"} {
		wantCode, want := post("text/csv", accept, rowsCSV)
		code, got := post("application/x-parquet", accept, rowsPQ)
		if wantCode != 200 || code != 200 || got != want {
			t.Fatalf("accept %q: parquet %d %.120q, csv %d %.120q", accept, code, got, wantCode, want)
		}
	}
	if code, body := post("application/x-parquet", "", rowsPQ[:len(rowsPQ)-10]); code != 400 || !strings.Contains(body, "Parquet") {
		t.Fatalf("truncated parquet: %d %q", code, body)
	}
	if code, body := post("application/x-parquet", "", rowsCSV); code != 400 || !strings.Contains(body, "not a Parquet file") {
		t.Fatalf("csv sent as parquet: %d %q", code, body)
	}
}
