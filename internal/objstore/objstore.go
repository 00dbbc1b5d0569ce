// Package objstore defines the object store that holds model artifacts,
// batch input and output, async payloads and data capture. Two
// implementations satisfy it: an embedded store on the local disk
// (objstore/disk) and an external S3-compatible service (objstore/s3).
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors returned by every Store implementation. Callers check them with
// errors.Is.
var (
	ErrNoSuchBucket   = errors.New("no such bucket")
	ErrNoSuchKey      = errors.New("no such key")
	ErrBucketExists   = errors.New("bucket already exists")
	ErrBucketNotEmpty = errors.New("bucket not empty")
	ErrInvalidName    = errors.New("invalid bucket or key name")
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Bucket       string
	Key          string
	Size         int64
	ETag         string // quoted hex MD5 for single-part uploads, as S3 returns it
	LastModified time.Time
	ContentType  string
	Metadata     map[string]string // user metadata (x-amz-meta-*), lower-case keys
}

// PutOptions carries the optional attributes of a new object.
type PutOptions struct {
	ContentType string
	Metadata    map[string]string
}

// ListOptions selects the objects a List call returns.
type ListOptions struct {
	Prefix     string
	StartAfter string // return keys strictly greater than this one
	MaxKeys    int    // 0 means no limit
}

// ListResult is one page of a listing, keys in ascending byte order.
type ListResult struct {
	Objects     []ObjectInfo
	IsTruncated bool
}

// BucketInfo describes one bucket.
type BucketInfo struct {
	Name    string
	Created time.Time
}

// Store is an S3-like object store. Implementations are safe for concurrent
// use. Put replaces an object atomically: a reader sees either the old or
// the new content, never a partial write. Delete of a missing key succeeds,
// as on S3. Objects returned by List always carry Bucket, Key, Size, ETag
// and LastModified; ContentType and Metadata may be empty there (S3
// listings do not include them). objstoretest.Run checks all of this.
type Store interface {
	CreateBucket(ctx context.Context, bucket string) error
	DeleteBucket(ctx context.Context, bucket string) error
	ListBuckets(ctx context.Context) ([]BucketInfo, error)
	BucketExists(ctx context.Context, bucket string) (bool, error)

	Put(ctx context.Context, bucket, key string, body io.Reader, opts PutOptions) (ObjectInfo, error)
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error)
	Head(ctx context.Context, bucket, key string) (ObjectInfo, error)
	Delete(ctx context.Context, bucket, key string) error
	List(ctx context.Context, bucket string, opts ListOptions) (ListResult, error)
}
