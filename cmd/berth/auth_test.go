package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/berth-io/berth/internal/testutil"
)

// TestServeAuthModes runs the berth binary in each authentication mode:
// credentials from the environment, none on loopback, none on a
// non-loopback address (refused before anything is touched), and
// --insecure.
func TestServeAuthModes(t *testing.T) {
	bin := buildBerth(t)
	anyPort := func() string {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		return port
	}
	serve := func(listen string, env ...string) (*exec.Cmd, *testutil.Buffer, string) {
		dataDir := filepath.Join(t.TempDir(), "data")
		cmd := exec.Command(bin, "serve", "--listen", listen, "--data-dir", dataDir)
		cmd.Env = append(os.Environ(), "BERTH_ACCESS_KEY_ID=", "BERTH_SECRET_ACCESS_KEY=", "BERTH_INSECURE=", "BERTH_CONFIG="+writeConfig(t, sameUser()))
		cmd.Env = append(cmd.Env, env...)
		return cmd, launch(t, cmd), dataDir
	}

	t.Run("non-loopback without credentials is refused", func(t *testing.T) {
		cmd, out, dataDir := serve("0.0.0.0:" + anyPort())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("berth exited 0")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("berth did not exit")
		}
		for _, want := range []string{"refusing to listen", "BERTH_ACCESS_KEY_ID", "auth:", "--insecure"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("message does not mention %q:\n%s", want, out.String())
			}
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Error("the refused berth created its data dir")
		}
	})

	t.Run("credentials from the environment", func(t *testing.T) {
		port := anyPort()
		_, out, _ := serve("0.0.0.0:"+port, "BERTH_ACCESS_KEY_ID=AKIDENV", "BERTH_SECRET_ACCESS_KEY=envsecret")
		waitPing(t, "127.0.0.1:"+port)
		if !strings.Contains(out.String(), "authentication on") {
			t.Errorf("no start-up line saying authentication is on:\n%s", out.String())
		}
		url := "http://127.0.0.1:" + port
		resp, err := http.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("unsigned ListBuckets: %d", resp.StatusCode)
		}
		for _, tc := range []struct{ secret, want string }{{"envsecret", ""}, {"wrong", "SignatureDoesNotMatch"}} {
			c := s3.New(s3.Options{
				Region:       "us-east-1",
				BaseEndpoint: aws.String(url),
				UsePathStyle: true,
				Credentials:  credentials.NewStaticCredentialsProvider("AKIDENV", tc.secret, ""),
				Retryer:      aws.NopRetryer{},
			})
			_, err := c.ListBuckets(context.Background(), &s3.ListBucketsInput{})
			if got := apiCode(err); got != tc.want {
				t.Errorf("ListBuckets with secret %q: %q, want %q (%v)", tc.secret, got, tc.want, err)
			}
		}
	})

	t.Run("insecure", func(t *testing.T) {
		port := anyPort()
		_, out, _ := serve("0.0.0.0:"+port, "BERTH_INSECURE=1")
		waitPing(t, "127.0.0.1:"+port)
		if !strings.Contains(out.String(), "INSECURE") {
			t.Errorf("no loud warning:\n%s", out.String())
		}
	})

	t.Run("loopback without credentials", func(t *testing.T) {
		port := anyPort()
		_, out, _ := serve("127.0.0.1:" + port)
		waitPing(t, "127.0.0.1:"+port)
		if !strings.Contains(out.String(), "authentication off") || !strings.Contains(out.String(), "any access key works") {
			t.Errorf("no start-up line saying any key works:\n%s", out.String())
		}
	})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}
