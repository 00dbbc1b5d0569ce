package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"strings"

	"github.com/rclone/gofakes3"

	"github.com/berth-io/berth/internal/objstore"
)

// backend is a gofakes3.Backend over an objstore.Store. It is where store
// errors become S3 error codes.
type backend struct {
	store  objstore.Store
	logger *slog.Logger
	parts  *partSpool // nil: gofakes3 buffers multipart uploads in memory
}

var (
	_ gofakes3.Backend          = (*backend)(nil)
	_ gofakes3.MultipartBackend = (*backend)(nil)
)

// defaultContentType is what S3 reports for an object stored without one.
const defaultContentType = "binary/octet-stream"

const metaPrefix = "X-Amz-Meta-"

// s3Error turns a store error into the S3 error gofakes3 sends.
func s3Error(err error, bucket, key string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, objstore.ErrNoSuchBucket):
		return gofakes3.BucketNotFound(bucket)
	case errors.Is(err, objstore.ErrNoSuchKey):
		return gofakes3.KeyNotFound(key)
	case errors.Is(err, objstore.ErrBucketExists):
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, bucket)
	case errors.Is(err, objstore.ErrBucketNotEmpty):
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, bucket)
	case errors.Is(err, objstore.ErrInvalidName):
		if key == "" {
			return gofakes3.ErrorMessage(gofakes3.ErrInvalidBucketName, err.Error())
		}
		return gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, err.Error())
	}
	return err
}

func (b *backend) ListBuckets(ctx context.Context) ([]gofakes3.BucketInfo, error) {
	buckets, err := b.store.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]gofakes3.BucketInfo, 0, len(buckets))
	for _, bi := range buckets {
		out = append(out, gofakes3.BucketInfo{Name: bi.Name, CreationDate: gofakes3.NewContentTime(bi.Created)})
	}
	return out, nil
}

func (b *backend) CreateBucket(ctx context.Context, name string) error {
	return s3Error(b.store.CreateBucket(ctx, name), name, "")
}

func (b *backend) BucketExists(ctx context.Context, name string) (bool, error) {
	return b.store.BucketExists(ctx, name)
}

func (b *backend) DeleteBucket(ctx context.Context, name string) error {
	return s3Error(b.store.DeleteBucket(ctx, name), name, "")
}

// listBatch is how many objects ListBucket asks the store for at a time
// when it cannot tell how many it needs.
const listBatch = 1000

// afterPrefix returns a StartAfter value past (nearly) every key that
// starts with prefix, to skip the keys rolled up into a common prefix.
// Keys that start with prefix followed by U+10FFFF are not skipped, but
// they roll up into the same common prefix, so they are only wasted work.
func afterPrefix(prefix string) string { return prefix + "\U0010FFFF" }

// commonPrefix returns the common prefix key rolls up into, if any: the
// listing prefix plus the rest of key up to and including the first
// delimiter.
func commonPrefix(key, prefix, delim string) (string, bool) {
	if delim == "" || !strings.HasPrefix(key, prefix) {
		return "", false
	}
	rest := key[len(prefix):]
	i := strings.Index(rest, delim)
	if i < 0 {
		return "", false
	}
	return prefix + rest[:i+len(delim)], true
}

// ListBucket lists a page of a bucket, rolling keys up into common
// prefixes when a delimiter is given. Keys and common prefixes both count
// towards MaxKeys, and NextMarker is the last of either returned, as S3
// does.
func (b *backend) ListBucket(ctx context.Context, bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	var pfx, delim string
	if prefix != nil {
		pfx = prefix.Prefix
		if prefix.HasDelimiter {
			delim = prefix.Delimiter
		}
	}
	maxKeys := int(page.MaxKeys) // 0: no limit
	after := ""
	if page.HasMarker {
		after = page.Marker
	}
	lastCP := ""
	if cp, ok := commonPrefix(after, pfx, delim); ok && cp == after {
		// The previous page ended with this common prefix.
		lastCP = cp
		after = afterPrefix(cp)
	}

	batch := listBatch
	if delim == "" && maxKeys > 0 && maxKeys < listBatch {
		batch = maxKeys + 1
	}
	out := gofakes3.NewObjectList()
	count := 0
	for {
		res, err := b.store.List(ctx, bucket, objstore.ListOptions{Prefix: pfx, StartAfter: after, MaxKeys: batch})
		if err != nil {
			return nil, s3Error(err, bucket, "")
		}
		for _, o := range res.Objects {
			cp, isCP := commonPrefix(o.Key, pfx, delim)
			if isCP && cp == lastCP {
				continue
			}
			if maxKeys > 0 && count == maxKeys {
				out.IsTruncated = true
				return out, nil
			}
			count++
			if isCP {
				lastCP = cp
				out.AddPrefix(cp)
				out.NextMarker = cp
				continue
			}
			out.Add(&gofakes3.Content{
				Key:          o.Key,
				LastModified: gofakes3.NewContentTime(o.LastModified),
				ETag:         o.ETag,
				Size:         o.Size,
				StorageClass: gofakes3.StorageStandard,
			})
			out.NextMarker = o.Key
		}
		if !res.IsTruncated || len(res.Objects) == 0 {
			// NextMarker is only for truncated listings.
			out.NextMarker = ""
			return out, nil
		}
		after = res.Objects[len(res.Objects)-1].Key
		if lastCP != "" && strings.HasPrefix(after, lastCP) {
			after = afterPrefix(lastCP)
		}
	}
}

// objectMetadata returns the headers gofakes3 sends with an object.
func objectMetadata(info objstore.ObjectInfo) map[string]string {
	meta := make(map[string]string, len(info.Metadata)+2)
	for k, v := range info.Metadata {
		meta[metaPrefix+k] = v
	}
	ct := info.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	meta["Content-Type"] = ct
	meta["Last-Modified"] = info.LastModified.UTC().Format(http.TimeFormat)
	return meta
}

// putOptions picks what the store keeps out of the headers gofakes3
// collected for a new object: the content type and user metadata. Other
// headers (Cache-Control, Content-Encoding, checksums, tags) are not kept.
func putOptions(meta map[string]string) objstore.PutOptions {
	var opts objstore.PutOptions
	for k, v := range meta {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case ck == "Content-Type":
			opts.ContentType = v
		case strings.HasPrefix(ck, metaPrefix) && len(ck) > len(metaPrefix):
			if opts.Metadata == nil {
				opts.Metadata = make(map[string]string)
			}
			opts.Metadata[strings.ToLower(k[len(metaPrefix):])] = v
		}
	}
	return opts
}

// etagHash returns the bytes gofakes3 hex-encodes into the ETag header.
// A multipart-style ETag from another S3 ("<hex>-<parts>") loses its
// suffix.
func etagHash(etag string) []byte {
	etag = strings.Trim(etag, `"`)
	etag, _, _ = strings.Cut(etag, "-")
	if h, err := hex.DecodeString(etag); err == nil && len(h) > 0 {
		return h
	}
	sum := md5.Sum([]byte(etag))
	return sum[:]
}

func (b *backend) toObject(key string, info objstore.ObjectInfo, contents io.ReadCloser, rng *gofakes3.ObjectRange) *gofakes3.Object {
	return &gofakes3.Object{
		Name:     key,
		Metadata: objectMetadata(info),
		Size:     info.Size,
		Contents: contents,
		Hash:     etagHash(info.ETag),
		Range:    rng,
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (b *backend) GetObject(ctx context.Context, bucket, key string, rangeRequest *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	rc, info, err := b.store.Get(ctx, bucket, key)
	if err != nil {
		return nil, s3Error(err, bucket, key)
	}
	rng, err := rangeRequest.Range(info.Size)
	if err != nil {
		rc.Close()
		return nil, err
	}
	var contents io.ReadCloser = rc
	if rng != nil {
		if err := skip(rc, rng.Start); err != nil {
			rc.Close()
			return nil, err
		}
		contents = readCloser{Reader: io.LimitReader(rc, rng.Length), Closer: rc}
	}
	return b.toObject(key, info, contents, rng), nil
}

// skip moves r n bytes forward, seeking when it can.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekStart)
		return err
	}
	_, err := io.CopyN(io.Discard, r, n)
	return err
}

func (b *backend) HeadObject(ctx context.Context, bucket, key string) (*gofakes3.Object, error) {
	info, err := b.store.Head(ctx, bucket, key)
	if err != nil {
		return nil, s3Error(err, bucket, key)
	}
	return b.toObject(key, info, io.NopCloser(strings.NewReader("")), nil), nil
}

func (b *backend) DeleteObject(ctx context.Context, bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	return gofakes3.ObjectDeleteResult{}, s3Error(b.store.Delete(ctx, bucket, key), bucket, key)
}

// exactReader fails with IncompleteBody if r ends before size bytes
// (left is -1 when the size is unknown), or stops arriving.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, gofakes3.ErrIncompleteBody
	}
	return n, bodyError(err)
}

// bodyError turns a read deadline on the request body (server.body_timeout,
// progress_timeout) into S3's 400 IncompleteBody: the client's fault, not
// the 500 InternalError an unknown error becomes. The error is made anew
// each time: gofakes3 writes the request id into it.
func bodyError(err error) error {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return gofakes3.ErrorMessage(gofakes3.ErrIncompleteBody,
			"the request body stopped arriving before the server's timeout; send it without long pauses")
	}
	return err
}

func (b *backend) PutObject(ctx context.Context, bucket, key string, meta map[string]string, input io.Reader, size int64) (gofakes3.PutObjectResult, error) {
	input = &exactReader{r: input, left: size}
	info, err := b.store.Put(ctx, bucket, key, input, putOptions(meta))
	if err != nil {
		var ge gofakes3.Error
		if errors.As(err, &ge) {
			return gofakes3.PutObjectResult{}, ge
		}
		return gofakes3.PutObjectResult{}, s3Error(err, bucket, key)
	}
	return gofakes3.PutObjectResult{ETag: info.ETag}, nil
}

func (b *backend) DeleteMulti(ctx context.Context, bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var out gofakes3.MultiDeleteResult
	for _, key := range keys {
		if err := b.store.Delete(ctx, bucket, key); err != nil {
			if errors.Is(err, objstore.ErrNoSuchBucket) {
				return out, gofakes3.BucketNotFound(bucket)
			}
			b.logger.Warn("delete failed", "bucket", bucket, "key", key, "err", err)
			res := gofakes3.ErrorResultFromError(s3Error(err, bucket, key))
			res.Key = key
			out.Error = append(out.Error, res)
			continue
		}
		out.Deleted = append(out.Deleted, gofakes3.ObjectID{Key: key})
	}
	return out, nil
}

func (b *backend) CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	rc, _, err := b.store.Get(ctx, srcBucket, srcKey)
	if err != nil {
		return gofakes3.CopyObjectResult{}, s3Error(err, srcBucket, srcKey)
	}
	defer rc.Close()
	info, err := b.store.Put(ctx, dstBucket, dstKey, rc, putOptions(meta))
	if err != nil {
		return gofakes3.CopyObjectResult{}, s3Error(err, dstBucket, dstKey)
	}
	return gofakes3.CopyObjectResult{ETag: info.ETag, LastModified: gofakes3.NewContentTime(info.LastModified)}, nil
}
