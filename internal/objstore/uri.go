package objstore

import (
	"fmt"
	"strings"
)

// S3URI is a parsed s3://bucket/key location.
type S3URI struct {
	Bucket string
	Key    string // may be empty or a prefix
}

// String returns the URI in s3://bucket/key form.
func (u S3URI) String() string { return "s3://" + u.Bucket + "/" + u.Key }

// ParseS3URI parses an s3://bucket/key URI.
func ParseS3URI(uri string) (S3URI, error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return S3URI{}, fmt.Errorf("%q is not an s3:// URI", uri)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return S3URI{}, fmt.Errorf("%q has no bucket name", uri)
	}
	return S3URI{Bucket: bucket, Key: key}, nil
}
