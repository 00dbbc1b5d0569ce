package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
	"github.com/berth-io/berth/internal/testutil"
)

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// running is a started testserver process.
type running struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	done   chan struct{}
	err    error // from Wait, once done is closed
}

// startServer starts the testserver with env; it is killed at cleanup.
func startServer(t *testing.T, env map[string]string) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	cmd := exec.Command(testserverbin.Build(t))
	cmd.Env = []string{"SAGEMAKER_BIND_TO_PORT=" + port}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	s := &running{cmd: cmd, url: "http://127.0.0.1:" + port, stderr: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	return s
}

// waitListening polls until the server accepts connections.
func (s *running) waitListening(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		select {
		case <-s.done:
			t.Fatalf("server exited: %v; stderr: %s", s.err, s.stderr)
		default:
		}
		resp, err := client.Get(s.url + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

func (s *running) wait(t *testing.T) (status int) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit")
	}
	var ee *exec.ExitError
	if s.err != nil && !errors.As(s.err, &ee) {
		t.Fatal(s.err)
	}
	return s.cmd.ProcessState.ExitCode()
}

func do(t *testing.T, method, url, contentType, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestInvocations(t *testing.T) {
	modelDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(modelDir, "weights.bin"), []byte("w=1"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		hdr         map[string]string
		body        string
		wantStatus  int
		wantBody    string
		wantType    string
		minDuration time.Duration
	}{
		{name: "echo", body: "a,b\n", wantStatus: 200, wantBody: "a,b\n", wantType: "text/csv"},
		{name: "upper", env: map[string]string{"TESTSERVER_MODE": "upper"}, body: "abc", wantStatus: 200, wantBody: "ABC", wantType: "text/csv"},
		{name: "model file", env: map[string]string{"TESTSERVER_MODE": "model-file", "SM_MODEL_DIR": modelDir, "TESTSERVER_MODEL_FILE": "weights.bin"}, wantStatus: 200, wantBody: "w=1", wantType: "application/octet-stream"},
		{name: "status", env: map[string]string{"TESTSERVER_STATUS": "500"}, body: "x", wantStatus: 500, wantBody: "testserver: scripted status 500\n"},
		{name: "sleep knob", env: map[string]string{"TESTSERVER_SLEEP": "100ms"}, body: "z", wantStatus: 200, wantBody: "z", wantType: "text/csv", minDuration: 100 * time.Millisecond},
		{name: "sleep header", hdr: map[string]string{"X-Testserver-Sleep": "150ms"}, body: "z", wantStatus: 200, wantBody: "z", wantType: "text/csv", minDuration: 150 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.env)
			s.waitListening(t)
			begin := time.Now()
			resp, body := do(t, "POST", s.url+"/invocations", "text/csv", tt.body, tt.hdr)
			if took := time.Since(begin); took < tt.minDuration {
				t.Errorf("answered in %s, want at least %s", took, tt.minDuration)
			}
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.wantType)
			}
			if got := resp.Header.Get("X-Testserver-Instance"); got != strconv.Itoa(s.cmd.Process.Pid) {
				t.Errorf("X-Testserver-Instance = %q, want %d", got, s.cmd.Process.Pid)
			}
		})
	}
}

// TestModelRouteAndInflight: the multi-model route answers with the model
// name, and /inflight reports how many invocations ran at once.
func TestModelRouteAndInflight(t *testing.T) {
	s := startServer(t, nil)
	s.waitListening(t)
	resp, body := do(t, "POST", s.url+"/models/m1/invoke", "text/csv", "1,2", nil)
	if resp.StatusCode != 200 || body != "m1:1,2" {
		t.Fatalf("model route: %d %q", resp.StatusCode, body)
	}
	done := make(chan struct{})
	for range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			req, _ := http.NewRequest("POST", s.url+"/invocations", strings.NewReader("x"))
			req.Header.Set("X-Testserver-Sleep", "300ms")
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, body := do(t, "GET", s.url+"/inflight", "", "", nil); body != "3 3" {
			return fmt.Errorf("inflight %q, want \"3 3\"", body)
		}
		return nil
	})
	for range 3 {
		<-done
	}
	if _, body := do(t, "GET", s.url+"/inflight", "", "", nil); body != "0 3" {
		t.Errorf("inflight after %q, want \"0 3\"", body)
	}
}

func TestEnvMode(t *testing.T) {
	s := startServer(t, map[string]string{"TESTSERVER_MODE": "env", "MY_VAR": "v"})
	s.waitListening(t)
	_, body := do(t, "POST", s.url+"/invocations", "", "", nil)
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	if env["MY_VAR"] != "v" || env["SAGEMAKER_BIND_TO_PORT"] == "" {
		t.Errorf("env = %v", env)
	}
}

func TestPing(t *testing.T) {
	s := startServer(t, map[string]string{"TESTSERVER_PING_DELAY": "300ms"})
	s.waitListening(t)
	resp, _ := do(t, "GET", s.url+"/ping", "", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("early ping = %d, want 503", resp.StatusCode)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if resp, _ := do(t, "GET", s.url+"/ping", "", "", nil); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ping answered %d", resp.StatusCode)
		}
		return nil
	})
	do(t, "POST", s.url+"/unhealthy", "", "", nil)
	if resp, _ = do(t, "GET", s.url+"/ping", "", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ping after /unhealthy = %d, want 503", resp.StatusCode)
	}
}

func TestExits(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		act        func(t *testing.T, s *running)
		wantStatus int
		wantStderr string
	}{
		{
			name:       "fail start",
			env:        map[string]string{"TESTSERVER_FAIL_START": "1"},
			act:        func(*testing.T, *running) {},
			wantStatus: 3,
			wantStderr: "boom: bad model\n",
		},
		{
			name: "crash",
			act: func(t *testing.T, s *running) {
				s.waitListening(t)
				if resp, err := client.Post(s.url+"/crash", "", nil); err == nil {
					resp.Body.Close()
				}
			},
			wantStatus: 2,
		},
		{
			name: "sigterm",
			act: func(t *testing.T, s *running) {
				s.waitListening(t)
				s.cmd.Process.Signal(syscall.SIGTERM)
			},
			wantStatus: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.env)
			tt.act(t, s)
			if got := s.wait(t); got != tt.wantStatus {
				t.Errorf("exit status %d, want %d; stderr: %s", got, tt.wantStatus, s.stderr)
			}
			if tt.wantStderr != "" && s.stderr.String() != tt.wantStderr {
				t.Errorf("stderr %q, want %q", s.stderr, tt.wantStderr)
			}
		})
	}
}

func TestIgnoreTerm(t *testing.T) {
	s := startServer(t, map[string]string{"TESTSERVER_IGNORE_TERM": "1"})
	s.waitListening(t)
	s.cmd.Process.Signal(syscall.SIGTERM)
	// Still serving after SIGTERM: a ping round trip after the signal
	// proves it was delivered and ignored (signals to a running process
	// are handled before it next returns to user space).
	resp, _ := do(t, "GET", s.url+"/ping", "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("ping after SIGTERM = %d", resp.StatusCode)
	}
	select {
	case <-s.done:
		t.Fatalf("exited on SIGTERM: %v", s.err)
	default:
	}
	s.cmd.Process.Kill()
	if got := fmt.Sprint(s.wait(t)); got != "-1" {
		t.Errorf("exit code %s after SIGKILL, want -1", got)
	}
}

func TestMain(m *testing.M) { os.Exit(testserverbin.Run(m)) }
