package app_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestS3StalledUploadAnswer: an upload whose body stops arriving is the
// client's fault and is answered so, with S3's 400 IncompleteBody, not a
// 500 InternalError (which the SDKs retry, and which berth logged as its
// own error) — for PutObject and UploadPart alike.
func TestS3StalledUploadAnswer(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Server.ProgressTimeout = 300 * time.Millisecond
	cfg.Server.BodyTimeout = 300 * time.Millisecond
	s := startServer(t, cfg)
	addr := strings.TrimPrefix(s.url, "http://")
	send := func(t *testing.T, head string, length int) (int, string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "%s\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s", head, length, "abc"[:min(3, length)])
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := send(t, "PUT /stall HTTP/1.1", 0); code != http.StatusOK {
		t.Fatalf("create bucket: %d %s", code, body)
	}
	if code, body := send(t, "PUT /stall/obj HTTP/1.1", 100); code != http.StatusBadRequest || !strings.Contains(body, "<Code>IncompleteBody</Code>") {
		t.Errorf("stalled PutObject: %d %s; want 400 IncompleteBody", code, body)
	}
	// A multipart upload's part.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /stall/mp?uploads HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	c.Close()
	_, rest, _ := strings.Cut(string(b), "<UploadId>")
	id, _, _ := strings.Cut(rest, "</UploadId>")
	if id == "" {
		t.Fatalf("CreateMultipartUpload: %s", b)
	}
	if code, body := send(t, "PUT /stall/mp?partNumber=1&uploadId="+id+" HTTP/1.1", 100); code != http.StatusBadRequest || !strings.Contains(body, "<Code>IncompleteBody</Code>") {
		t.Errorf("stalled UploadPart: %d %s; want 400 IncompleteBody", code, body)
	}
}
