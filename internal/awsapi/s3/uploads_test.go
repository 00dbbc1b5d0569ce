package s3

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestListMultipartUploadsEmpty: a bucket with no upload lists none, as on
// S3, before any upload and after the last one completed; a missing bucket
// is still NoSuchBucket; uploads in progress are listed.
func TestListMultipartUploadsEmpty(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), false)
	c := e.client
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("quiet")}); err != nil {
		t.Fatal(err)
	}
	list := func() *s3.ListMultipartUploadsOutput {
		t.Helper()
		out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("quiet"), Prefix: aws.String("p/")})
		if err != nil {
			t.Fatalf("ListMultipartUploads: %v", err)
		}
		if aws.ToString(out.Bucket) != "quiet" || aws.ToString(out.Prefix) != "p/" || aws.ToBool(out.IsTruncated) {
			t.Fatalf("list: bucket %q prefix %q truncated %v", aws.ToString(out.Bucket), aws.ToString(out.Prefix), aws.ToBool(out.IsTruncated))
		}
		return out
	}
	if out := list(); len(out.Uploads) != 0 {
		t.Fatalf("uploads of a new bucket: %+v", out.Uploads)
	}
	if _, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("absent")}); apiCode(err) != "NoSuchBucket" {
		t.Fatalf("ListMultipartUploads on a missing bucket: %v, want NoSuchBucket", err)
	}

	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("quiet"), Key: aws.String("p/k")})
	if err != nil {
		t.Fatal(err)
	}
	if out := list(); len(out.Uploads) != 1 || aws.ToString(out.Uploads[0].UploadId) != aws.ToString(up.UploadId) {
		t.Fatalf("uploads in progress: %+v", out.Uploads)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("quiet"), Key: aws.String("p/k"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("quiet"), Key: aws.String("p/k"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatal(err)
	}
	if out := list(); len(out.Uploads) != 0 {
		t.Fatalf("uploads after the last completed: %+v", out.Uploads)
	}
}
