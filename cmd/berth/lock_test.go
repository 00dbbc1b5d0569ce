package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestSecondBerthOnSameDataDir runs the real binary twice on one data dir
// (two ports): the second must exit with a clear message before it
// touches anything, and the first keeps its model process and its
// multipart upload.
func TestSecondBerthOnSameDataDir(t *testing.T) {
	bin := buildBerth(t)
	cfgFile := writeConfig(t, echoConfig(t))
	dataDir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	first := startBerth(t, bin, addr, dataDir, cfgFile)
	sm, rt, s3c := sdkClients("http://" + addr)
	ctx := context.Background()

	deployEndpoint(t, sm, "test/echo:1", putModel(t, s3c, "first"), 1)
	invokeExpect(t, rt, "e", "first")
	models := modelPIDs(t, first.Process.Pid)
	if len(models) != 1 {
		t.Fatalf("model processes of berth: %v", models)
	}
	up, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("models"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("models"), Key: aws.String("big"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("spooled"))})
	if err != nil {
		t.Fatal(err)
	}

	ctx2, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx2, bin, "serve", "--listen", freeAddr(t), "--data-dir", dataDir, "--config", cfgFile).CombinedOutput()
	if err == nil {
		t.Fatalf("second berth on the same data dir exited 0:\n%s", out)
	}
	if ctx2.Err() != nil {
		t.Fatalf("second berth on the same data dir kept running:\n%s", out)
	}
	want := fmt.Sprintf("data dir %s is in use by another berth (pid %d)", dataDir, first.Process.Pid)
	if !strings.Contains(string(out), want) {
		t.Fatalf("second berth said:\n%s\nwant %q", out, want)
	}

	for _, pid := range models {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			t.Fatalf("model process %d of the first berth is gone", pid)
		}
	}
	if now := modelPIDs(t, first.Process.Pid); len(now) != 1 || now[0] != models[0] {
		t.Fatalf("model processes now %v, before %v", now, models)
	}
	invokeExpect(t, rt, "e", "first")
	if _, err := s3c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("models"), Key: aws.String("big"), UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatalf("complete the upload started before: %v", err)
	}
}
