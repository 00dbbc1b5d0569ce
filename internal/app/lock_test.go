package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-io/berth/internal/app"
)

// TestSecondServerOnSameDataDir starts a second berth on the data dir of a
// running one: it must fail at once, naming the dir and the holder, and
// leave the first one's instances and multipart uploads alone.
func TestSecondServerOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testConfig(t, dir))
	ctx := context.Background()
	s.deploy(t, "held", nil, "", 1)
	s.upload(t, "spool", "seed", []byte("x"))
	up, err := s.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("spool"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := s.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("spool"), Key: aws.String("big"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("spooled part"))})
	if err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t, dir)
	second, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err == nil {
		second.Shutdown(ctx)
		t.Fatal("a second server started on a data dir in use")
	}
	want := fmt.Sprintf("is in use by another berth (pid %d)", os.Getpid())
	if !errors.Is(err, app.ErrDataDirInUse) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error = %v, want ErrDataDirInUse saying %q", err, want)
	}

	if got, err := s.invoke(t, "held", "still"); err != nil || got == "" {
		t.Fatalf("first server after the second one's attempt: %q %v", got, err)
	}
	if _, err := s.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("spool"), Key: aws.String("big"), UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatalf("complete the upload started before: %v", err)
	}
}

// TestDataDirLockReleasedOnShutdown: a server shut down cleanly leaves the
// data dir to the next one.
func TestDataDirLockReleasedOnShutdown(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first, err := app.New(ctx, testConfig(t, dir), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := app.New(ctx, testConfig(t, dir), app.Options{})
	if err != nil {
		t.Fatalf("after the first shut down: %v", err)
	}
	second.Shutdown(ctx)
}
