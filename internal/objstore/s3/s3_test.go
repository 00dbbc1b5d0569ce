package s3

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	s3api "github.com/berth-io/berth/internal/awsapi/s3"
	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/objstore/disk"
	"github.com/berth-io/berth/internal/objstore/objstoretest"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newEmbedded starts berth's own S3 protocol handler over a disk store and
// returns an S3 store pointed at it, the way a MinIO would be used.
func newEmbedded(t *testing.T) *Store {
	t.Helper()
	d, err := disk.Open(t.TempDir(), disk.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s3api.NewHandler(d, testLogger(t), s3api.WithMultipartDir(t.TempDir())))
	t.Cleanup(srv.Close)
	s, err := New(context.Background(), Config{
		Endpoint:        srv.URL,
		Region:          "us-east-1",
		AccessKeyID:     "berth",
		SecretAccessKey: "berth-secret",
		UsePathStyle:    true,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceAgainstEmbeddedServer(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return newEmbedded(t) })
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Endpoint: "127.0.0.1:9000"},
		{Endpoint: "ftp://host"},
		{AccessKeyID: "only-id"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", c)
		}
	}
	if err := (Config{Endpoint: "http://127.0.0.1:9000", AccessKeyID: "a", SecretAccessKey: "b", UsePathStyle: true}).Validate(); err != nil {
		t.Errorf("Validate of a good config: %v", err)
	}
}
