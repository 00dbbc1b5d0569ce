package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/berth-io/berth/internal/objstore/disk"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// env is a handler over a disk store behind an httptest server, and an
// SDK client pointed at it.
type env struct {
	dataDir  string
	spoolDir string
	store    *disk.Store
	srv      *httptest.Server
	client   *s3.Client

	mu      sync.Mutex
	headers []http.Header // request headers seen, for checking encodings
}

func openStore(t *testing.T, dir string) *disk.Store {
	t.Helper()
	d, err := disk.Open(dir, disk.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newEnv(t *testing.T, dataDir string, tls bool) *env {
	t.Helper()
	e := &env{dataDir: dataDir, spoolDir: t.TempDir()}
	e.store = openStore(t, dataDir)
	h := NewHandler(e.store, testLogger(t), WithMultipartDir(e.spoolDir), WithVirtualHostDomains("localhost"))
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.headers = append(e.headers, r.Header.Clone())
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	if tls {
		e.srv = httptest.NewTLSServer(record)
	} else {
		e.srv = httptest.NewServer(record)
	}
	t.Cleanup(e.srv.Close)
	e.client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("berth", "berth-secret", ""),
		HTTPClient:   e.srv.Client(),
		// The embedded store keeps no checksums to validate against.
		DisableLogOutputChecksumValidationSkipped: true,
	})
	return e
}

func (e *env) sawHeader(name, substr string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.headers {
		if strings.Contains(h.Get(name), substr) {
			return true
		}
	}
	return false
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func getBody(t *testing.T, c *s3.Client, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject(%s/%s): %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject(%s/%s): read: %v", bucket, key, err)
	}
	return data, out
}

func put(t *testing.T, c *s3.Client, bucket, key string, data []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("PutObject(%s/%s): %v", bucket, key, err)
	}
}

func TestBucketsAndObjects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), false)
	c := e.client

	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")})
	if code := apiCode(err); code != "BucketAlreadyExists" {
		t.Errorf("second CreateBucket: code %q (%v)", code, err)
	}
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Bad_Name")})
	if code := apiCode(err); code != "InvalidBucketName" {
		t.Errorf("CreateBucket(Bad_Name): code %q (%v)", code, err)
	}
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "models" || lb.Buckets[0].CreationDate == nil {
		t.Fatalf("ListBuckets = %+v, %v", lb, err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}

	body := []byte("model bytes, not really a tarball")
	pout, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String("models"),
		Key:         aws.String("xgb/v1/model.tar.gz"),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/x-tar"),
		Metadata:    map[string]string{"Framework": "xgboost", "version": "1.7"},
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if aws.ToString(pout.ETag) != md5hex(body) {
		t.Errorf("PutObject ETag = %s, want %s", aws.ToString(pout.ETag), md5hex(body))
	}

	got, gout := getBody(t, c, "models", "xgb/v1/model.tar.gz")
	if !bytes.Equal(got, body) {
		t.Errorf("GetObject body = %q", got)
	}
	if aws.ToString(gout.ContentType) != "application/x-tar" || gout.Metadata["framework"] != "xgboost" || gout.Metadata["version"] != "1.7" || aws.ToString(gout.ETag) != md5hex(body) || gout.LastModified == nil {
		t.Errorf("GetObject attributes: type %q meta %v etag %s modified %v", aws.ToString(gout.ContentType), gout.Metadata, aws.ToString(gout.ETag), gout.LastModified)
	}

	hout, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("models"), Key: aws.String("xgb/v1/model.tar.gz")})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	if aws.ToInt64(hout.ContentLength) != int64(len(body)) || aws.ToString(hout.ETag) != md5hex(body) || hout.Metadata["framework"] != "xgboost" {
		t.Errorf("HeadObject = length %d etag %s meta %v", aws.ToInt64(hout.ContentLength), aws.ToString(hout.ETag), hout.Metadata)
	}

	rout, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("models"), Key: aws.String("xgb/v1/model.tar.gz"), Range: aws.String("bytes=6-10")})
	if err != nil {
		t.Fatalf("ranged GetObject: %v", err)
	}
	part, _ := io.ReadAll(rout.Body)
	rout.Body.Close()
	if string(part) != "bytes" || aws.ToString(rout.ContentRange) != fmt.Sprintf("bytes 6-10/%d", len(body)) {
		t.Errorf("ranged GetObject = %q, range %q", part, aws.ToString(rout.ContentRange))
	}

	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: aws.String("models"), Key: aws.String("xgb/latest/model.tar.gz"),
		CopySource: aws.String("models/xgb/v1/model.tar.gz"),
	}); err != nil {
		t.Fatalf("CopyObject: %v", err)
	}
	if copied, cout := getBody(t, c, "models", "xgb/latest/model.tar.gz"); !bytes.Equal(copied, body) || cout.Metadata["framework"] != "xgboost" {
		t.Errorf("copied object = %q meta %v", copied, cout.Metadata)
	}

	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("models"), Key: aws.String("nope")})
	var nsk *types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Errorf("GetObject of a missing key: %v, want NoSuchKey", err)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("models"), Key: aws.String("nope")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadObject of a missing key: %v, want NotFound", err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("k")})
	if code := apiCode(err); code != "NoSuchBucket" {
		t.Errorf("GetObject in a missing bucket: code %q (%v)", code, err)
	}

	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("models")})
	if code := apiCode(err); code != "BucketNotEmpty" {
		t.Errorf("DeleteBucket of a non-empty bucket: code %q (%v)", code, err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("models"), Key: aws.String("xgb/v1/model.tar.gz")}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("models"), Key: aws.String("xgb/v1/model.tar.gz")}); err != nil {
		t.Errorf("DeleteObject of a deleted key: %v", err)
	}
	dout, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("models"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("xgb/latest/model.tar.gz")}, {Key: aws.String("never-was")}},
	}})
	if err != nil || len(dout.Deleted) != 2 || len(dout.Errors) != 0 {
		t.Fatalf("DeleteObjects = %+v, %v", dout, err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatalf("DeleteBucket: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("models")}); !errors.As(err, &nf) {
		t.Errorf("HeadBucket after delete: %v, want NotFound", err)
	}
}

var listingKeys = []string{
	"data/a.csv", "data/b.csv", "data/sub/c.csv", "data/sub/d.csv", "data/sub2/e.csv",
	"data/z.csv", "logs/1", "logs/2", "readme", "with space/ü.txt",
}

func setupListing(t *testing.T) *s3.Client {
	t.Helper()
	e := newEnv(t, t.TempDir(), false)
	if _, err := e.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("lst")}); err != nil {
		t.Fatal(err)
	}
	for _, k := range listingKeys {
		put(t, e.client, "lst", k, []byte(k))
	}
	return e.client
}

func TestListObjectsV2(t *testing.T) {
	ctx := context.Background()
	c := setupListing(t)

	// Paging through everything, two at a time.
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		pages++
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) || aws.ToString(o.ETag) != md5hex([]byte(aws.ToString(o.Key))) {
				t.Errorf("listed %s: size %d etag %s", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag))
			}
		}
	}
	if !slices.Equal(keys, listingKeys) || pages != 5 {
		t.Errorf("paged V2 listing (%d pages) = %q", pages, keys)
	}

	// Delimiter: common prefixes, then paging over them.
	var prefixes, objects []string
	p = s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("data/"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		if n := len(out.Contents) + len(out.CommonPrefixes); n > 1 {
			t.Errorf("page of %d entries with MaxKeys 1", n)
		}
		for _, cp := range out.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(cp.Prefix))
		}
		for _, o := range out.Contents {
			objects = append(objects, aws.ToString(o.Key))
		}
	}
	if !slices.Equal(prefixes, []string{"data/sub/", "data/sub2/"}) || !slices.Equal(objects, []string{"data/a.csv", "data/b.csv", "data/z.csv"}) {
		t.Errorf("delimited listing: prefixes %q objects %q", prefixes, objects)
	}

	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), StartAfter: aws.String("logs/1"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.CommonPrefixes) != 2 || aws.ToString(out.CommonPrefixes[0].Prefix) != "logs/" || aws.ToString(out.CommonPrefixes[1].Prefix) != "with space/" ||
		len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "readme" || aws.ToInt32(out.KeyCount) != 3 {
		t.Errorf("start-after listing = prefixes %+v contents %+v", out.CommonPrefixes, out.Contents)
	}

	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("no-such-bucket")})
	if code := apiCode(err); code != "NoSuchBucket" {
		t.Errorf("listing a missing bucket: code %q (%v)", code, err)
	}
}

func TestListObjectsV1(t *testing.T) {
	ctx := context.Background()
	c := setupListing(t)

	var keys []string
	marker := ""
	for range 20 {
		in := &s3.ListObjectsInput{Bucket: aws.String("lst"), MaxKeys: aws.Int32(3)}
		if marker != "" {
			in.Marker = aws.String(marker)
		}
		out, err := c.ListObjects(ctx, in)
		if err != nil {
			t.Fatalf("ListObjects: %v", err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = keys[len(keys)-1]
	}
	if !slices.Equal(keys, listingKeys) {
		t.Errorf("paged V1 listing = %q", keys)
	}

	// With a delimiter V1 returns NextMarker, which may be a common prefix.
	var entries []string
	marker = ""
	for range 20 {
		in := &s3.ListObjectsInput{Bucket: aws.String("lst"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)}
		if marker != "" {
			in.Marker = aws.String(marker)
		}
		out, err := c.ListObjects(ctx, in)
		if err != nil {
			t.Fatalf("ListObjects: %v", err)
		}
		for _, cp := range out.CommonPrefixes {
			entries = append(entries, aws.ToString(cp.Prefix))
		}
		for _, o := range out.Contents {
			entries = append(entries, aws.ToString(o.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = aws.ToString(out.NextMarker)
		if marker == "" {
			t.Fatal("truncated delimited V1 listing without NextMarker")
		}
	}
	slices.Sort(entries)
	if want := []string{"data/", "logs/", "readme", "with space/"}; !slices.Equal(entries, want) {
		t.Errorf("delimited V1 listing = %q, want %q", entries, want)
	}
}

// pattern returns n bytes that are not all alike.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestMultipartUpload(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), false)
	c := e.client
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	data := pattern(12<<20 + 4321)
	created, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String("big"), Key: aws.String("blobs/twelve.bin"),
		ContentType: aws.String("application/octet-stream"),
		Metadata:    map[string]string{"purpose": "test"},
	})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	const partLen = 5 << 20
	var parts []types.CompletedPart
	for i, off := int32(1), 0; off < len(data); i, off = i+1, off+partLen {
		chunk := data[off:min(off+partLen, len(data))]
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String("big"), Key: aws.String("blobs/twelve.bin"),
			UploadId: created.UploadId, PartNumber: aws.Int32(i), Body: bytes.NewReader(chunk),
		})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i, err)
		}
		if aws.ToString(out.ETag) != md5hex(chunk) {
			t.Errorf("part %d ETag = %s, want %s", i, aws.ToString(out.ETag), md5hex(chunk))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(i)})
	}
	// The parts wait on disk, not in memory.
	if n := countFiles(t, e.spoolDir); n != 3 {
		t.Errorf("%d spooled part files, want 3", n)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("big"), Key: aws.String("blobs/twelve.bin"), UploadId: created.UploadId})
	if err != nil || len(lp.Parts) != 3 {
		t.Errorf("ListParts = %+v, %v", lp, err)
	}

	// A wrong ETag is refused and leaves the upload to be retried.
	bad := slices.Clone(parts)
	bad[1].ETag = aws.String(`"00000000000000000000000000000000"`)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("big"), Key: aws.String("blobs/twelve.bin"), UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: bad},
	})
	if code := apiCode(err); code != "InvalidPart" {
		t.Errorf("CompleteMultipartUpload with a wrong ETag: code %q (%v)", code, err)
	}

	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("big"), Key: aws.String("blobs/twelve.bin"), UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	got, gout := getBody(t, c, "big", "blobs/twelve.bin")
	if !bytes.Equal(got, data) {
		t.Fatalf("assembled object: %d bytes that differ from the %d uploaded", len(got), len(data))
	}
	if aws.ToString(gout.ETag) != aws.ToString(done.ETag) || gout.Metadata["purpose"] != "test" || aws.ToString(gout.ContentType) != "application/octet-stream" {
		t.Errorf("assembled object: etag %s (complete said %s), meta %v, type %q", aws.ToString(gout.ETag), aws.ToString(done.ETag), gout.Metadata, aws.ToString(gout.ContentType))
	}
	if n := countFiles(t, e.spoolDir); n != 0 {
		t.Errorf("%d spooled files left after completion", n)
	}

	// An aborted upload leaves nothing behind.
	created, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("aborted"), UploadId: created.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("aborted"), UploadId: created.UploadId}); err != nil {
		t.Fatalf("AbortMultipartUpload: %v", err)
	}
	if n := countFiles(t, e.spoolDir); n != 0 {
		t.Errorf("%d spooled files left after abort", n)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("aborted")}); err == nil {
		t.Error("aborted upload created an object")
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		sub, err := os.ReadDir(dir + string(os.PathSeparator) + e.Name())
		if err != nil {
			n++
			continue
		}
		n += len(sub)
	}
	return n
}

// TestAWSChunkedUpload uploads over TLS, where the SDK sends the body
// aws-chunked with a trailing checksum, and with a signed-chunk body as
// the SigV4 streaming signer writes it.
func TestAWSChunkedUpload(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), true)
	c := e.client
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("chunky")}); err != nil {
		t.Fatal(err)
	}
	data := pattern(3<<20 + 17)
	// With a checksum to send and a body it cannot seek, the SDK streams
	// the body aws-chunked with the checksum in a trailer.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("chunky"), Key: aws.String("streamed"),
		Body: struct{ io.Reader }{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if !e.sawHeader("X-Amz-Content-Sha256", "STREAMING-") || !e.sawHeader("Content-Encoding", "aws-chunked") {
		t.Error("the SDK did not send an aws-chunked body; the test does not test what it should")
	}
	if got, _ := getBody(t, c, "chunky", "streamed"); !bytes.Equal(got, data) {
		t.Fatalf("streamed object: %d bytes that differ from the %d put", len(got), len(data))
	}

	// A signed-chunk body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). The
	// handler does not check signatures; it must strip them.
	payload := []byte("hello, chunked world")
	var body bytes.Buffer
	for _, chunk := range [][]byte{payload[:8], payload[8:]} {
		fmt.Fprintf(&body, "%x;chunk-signature=%064d\r\n%s\r\n", len(chunk), 0, chunk)
	}
	fmt.Fprintf(&body, "0;chunk-signature=%064d\r\n\r\n", 0)
	req, err := http.NewRequest(http.MethodPut, e.srv.URL+"/chunky/signed-chunks", bytes.NewReader(body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(payload)))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed-chunk PUT: status %d", resp.StatusCode)
	}
	got, gout := getBody(t, c, "chunky", "signed-chunks")
	if !bytes.Equal(got, payload) {
		t.Errorf("signed-chunk object = %q, want %q", got, payload)
	}
	if ce := aws.ToString(gout.ContentEncoding); strings.Contains(ce, "aws-chunked") {
		t.Errorf("object kept the transfer encoding: Content-Encoding %q", ce)
	}

	// A body shorter than its declared decoded length is refused.
	req, _ = http.NewRequest(http.MethodPut, e.srv.URL+"/chunky/short", strings.NewReader("5;chunk-signature=00\r\nhello\r\n0;chunk-signature=00\r\n\r\n"))
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	req.Header.Set("X-Amz-Decoded-Content-Length", "10")
	resp, err = e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 4 {
		t.Errorf("short chunked PUT: status %d, want 4xx", resp.StatusCode)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("chunky"), Key: aws.String("short")}); err == nil {
		t.Error("a short upload created an object")
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	e := newEnv(t, dataDir, false)
	if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("durable")}); err != nil {
		t.Fatal(err)
	}
	put(t, e.client, "durable", "async/out/1.out", []byte("result one"))
	e.srv.Close()

	e2 := newEnv(t, dataDir, false)
	got, _ := getBody(t, e2.client, "durable", "async/out/1.out")
	if string(got) != "result one" {
		t.Errorf("after reopen = %q", got)
	}
	out, err := e2.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("durable")})
	if err != nil || len(out.Contents) != 1 {
		t.Errorf("listing after reopen = %+v, %v", out, err)
	}
}

func TestVirtualHostedStyle(t *testing.T) {
	e := newEnv(t, t.TempDir(), false)
	if _, err := e.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("vhost")}); err != nil {
		t.Fatal(err)
	}
	put(t, e.client, "vhost", "dir/file.txt", []byte("virtual"))
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/dir/file.txt", nil)
	req.Host = "vhost.localhost" + e.srv.URL[strings.LastIndex(e.srv.URL, ":"):]
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "virtual" {
		t.Errorf("virtual-hosted GET: %d %q", resp.StatusCode, body)
	}
}

func TestMultipartInMemoryWithoutSpool(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir())
	srv := httptest.NewServer(NewHandler(store, testLogger(t)))
	t.Cleanup(srv.Close)
	c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		DisableLogOutputChecksumValidationSkipped: true,
	})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mem")}); err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mem"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mem"), Key: aws.String("k"), UploadId: created.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("in memory"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("mem"), Key: aws.String("k"), UploadId: created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: up.ETag, PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := getBody(t, c, "mem", "k"); string(got) != "in memory" {
		t.Errorf("got %q", got)
	}
}
