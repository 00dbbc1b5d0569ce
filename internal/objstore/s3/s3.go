// Package s3 is an objstore.Store over an external S3-compatible service
// (AWS S3, MinIO, …), reached with the AWS SDK for Go v2. berth uses it
// when the config maps s3:// URIs away from the embedded store.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/berth-io/berth/internal/objstore"
)

// Config says how to reach the S3-compatible service.
type Config struct {
	// Endpoint is the service's base URL, for example
	// "http://127.0.0.1:9000" for a local MinIO. Empty means AWS S3's
	// own endpoint for Region.
	Endpoint string
	// Region is the signing region. Empty means "us-east-1", which MinIO
	// accepts by default.
	Region string
	// AccessKeyID and SecretAccessKey are static credentials. When
	// AccessKeyID is empty the SDK's default chain is used (environment,
	// shared config files, instance role).
	AccessKeyID     string
	SecretAccessKey string
	// UsePathStyle addresses buckets as http://host/bucket/key rather
	// than http://bucket.host/key. MinIO and most self-hosted services
	// need it.
	UsePathStyle bool
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return fmt.Errorf("s3 endpoint: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("s3 endpoint %q: want an http:// or https:// URL", c.Endpoint)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("s3 credentials: set both the access key id and the secret access key, or neither")
	}
	return nil
}

// partSize is the size of the parts of the multipart uploads Put makes for
// objects that do not fit in one part; smaller objects go up in one
// PutObject. 8 MiB is the AWS CLI's default.
const partSize = 8 << 20

// Store is an objstore.Store over an S3-compatible service. It is safe for
// concurrent use.
type Store struct {
	client *s3.Client
	region string
	logger *slog.Logger
}

var _ objstore.Store = (*Store)(nil)

// New returns a Store for the service described by cfg.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	loadOpts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if cfg.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: load aws config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.UsePathStyle
		// Services that store no checksums (berth's own embedded store
		// among them) would make the SDK log a line for every GET.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Store{client: client, region: region, logger: logger}, nil
}

// mapError turns the service's error codes into the objstore errors,
// keeping the original in the chain.
func mapError(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	var target error
	switch ae.ErrorCode() {
	case "NoSuchBucket":
		target = objstore.ErrNoSuchBucket
	case "NoSuchKey":
		target = objstore.ErrNoSuchKey
	case "BucketAlreadyExists", "BucketAlreadyOwnedByYou":
		target = objstore.ErrBucketExists
	case "BucketNotEmpty":
		target = objstore.ErrBucketNotEmpty
	case "InvalidBucketName", "KeyTooLongError":
		target = objstore.ErrInvalidName
	default:
		return err
	}
	return fmt.Errorf("%w: %w", target, err)
}

// isNotFound reports a 404 without a more precise code, as HEAD requests
// get.
func isNotFound(err error) bool {
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NotFound"
}

// CreateBucket creates a bucket.
func (s *Store) CreateBucket(ctx context.Context, bucket string) error {
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return err
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if s.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	if _, err := s.client.CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("create bucket %q: %w", bucket, mapError(err))
	}
	return nil
}

// DeleteBucket deletes an empty bucket.
func (s *Store) DeleteBucket(ctx context.Context, bucket string) error {
	if objstore.ValidateBucketName(bucket) != nil {
		return fmt.Errorf("delete bucket %q: %w", bucket, objstore.ErrNoSuchBucket)
	}
	if _, err := s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("delete bucket %q: %w", bucket, mapError(err))
	}
	return nil
}

// ListBuckets lists the buckets the credentials own, sorted by name.
func (s *Store) ListBuckets(ctx context.Context) ([]objstore.BucketInfo, error) {
	var out []objstore.BucketInfo
	p := s3.NewListBucketsPaginator(s.client, &s3.ListBucketsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list buckets: %w", mapError(err))
		}
		for _, b := range page.Buckets {
			out = append(out, objstore.BucketInfo{Name: aws.ToString(b.Name), Created: aws.ToTime(b.CreationDate)})
		}
	}
	return out, nil
}

// BucketExists reports whether the bucket exists.
func (s *Store) BucketExists(ctx context.Context, bucket string) (bool, error) {
	if objstore.ValidateBucketName(bucket) != nil {
		return false, nil
	}
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return true, nil
	}
	var nsb *types.NoSuchBucket
	if isNotFound(err) || errors.As(err, &nsb) {
		return false, nil
	}
	return false, fmt.Errorf("head bucket %q: %w", bucket, mapError(err))
}

// Put uploads body: in one request when it fits in one part, otherwise as
// a multipart upload of 8 MiB parts, so a body of any size streams
// through a bounded buffer. The ETag of a multipart object is S3's
// "<hash>-<parts>" form, not the MD5 of the content. LastModified in the
// result is the local time the upload finished.
func (s *Store) Put(ctx context.Context, bucket, key string, body io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	if objstore.ValidateBucketName(bucket) != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, objstore.ErrNoSuchBucket)
	}
	buf := make([]byte, partSize)
	n, err := io.ReadFull(body, buf)
	var etag string
	var size int64
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		out, perr := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			Body:          bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)),
			ContentType:   optString(opts.ContentType),
			Metadata:      opts.Metadata,
		})
		if perr != nil {
			return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, mapError(perr))
		}
		etag, size = aws.ToString(out.ETag), int64(n)
	case err != nil:
		return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: read body: %w", bucket, key, err)
	default:
		etag, size, err = s.putMultipart(ctx, bucket, key, buf, body, opts)
		if err != nil {
			return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
		}
	}
	var meta map[string]string
	for k, v := range opts.Metadata {
		if meta == nil {
			meta = make(map[string]string, len(opts.Metadata))
		}
		meta[strings.ToLower(k)] = v
	}
	return objstore.ObjectInfo{
		Bucket:       bucket,
		Key:          key,
		Size:         size,
		ETag:         etag,
		LastModified: time.Now().UTC(),
		ContentType:  opts.ContentType,
		Metadata:     meta,
	}, nil
}

// putMultipart uploads first (a full part) and the rest of body as a
// multipart upload, aborting it on failure.
func (s *Store) putMultipart(ctx context.Context, bucket, key string, first []byte, body io.Reader, opts objstore.PutOptions) (etag string, size int64, err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(bucket),
		Key:         aws.String(key),
		ContentType: optString(opts.ContentType),
		Metadata:    opts.Metadata,
	})
	if err != nil {
		return "", 0, mapError(err)
	}
	uploadID := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		// Abort even if ctx is what failed.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: uploadID,
		}); aerr != nil {
			s.logger.Warn("cannot abort multipart upload", "bucket", bucket, "key", key, "err", aerr)
		}
	}()

	var parts []types.CompletedPart
	buf, n := first, len(first)
	for partNum := int32(1); ; partNum++ {
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			UploadId:      uploadID,
			PartNumber:    aws.Int32(partNum),
			Body:          bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return "", 0, mapError(err)
		}
		parts = append(parts, types.CompletedPart{
			ETag:           out.ETag,
			PartNumber:     aws.Int32(partNum),
			ChecksumCRC32:  out.ChecksumCRC32,
			ChecksumCRC32C: out.ChecksumCRC32C,
			ChecksumSHA1:   out.ChecksumSHA1,
			ChecksumSHA256: out.ChecksumSHA256,
		})
		size += int64(n)
		n, err = io.ReadFull(body, buf)
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return "", 0, fmt.Errorf("read body: %w", err)
		}
	}
	done, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bucket),
		Key:             aws.String(key),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", 0, mapError(err)
	}
	return aws.ToString(done.ETag), size, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func lowerKeys(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// Get opens the object for reading.
func (s *Store) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if err := s.checkNames(bucket, key); err != nil {
		return nil, objstore.ObjectInfo{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, objstore.ObjectInfo{}, fmt.Errorf("get %s/%s: %w", bucket, key, s.notFound(ctx, bucket, err))
	}
	return out.Body, objstore.ObjectInfo{
		Bucket:       bucket,
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
		Metadata:     lowerKeys(out.Metadata),
	}, nil
}

// Head returns the object's attributes.
func (s *Store) Head(ctx context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	if err := s.checkNames(bucket, key); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("head %s/%s: %w", bucket, key, err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("head %s/%s: %w", bucket, key, s.notFound(ctx, bucket, err))
	}
	return objstore.ObjectInfo{
		Bucket:       bucket,
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
		Metadata:     lowerKeys(out.Metadata),
	}, nil
}

// checkNames fails fast on names S3 would reject, so that a malformed
// bucket name cannot be read as part of a path.
func (s *Store) checkNames(bucket, key string) error {
	if objstore.ValidateBucketName(bucket) != nil {
		return objstore.ErrNoSuchBucket
	}
	if objstore.ValidateKey(key) != nil {
		return objstore.ErrNoSuchKey
	}
	return nil
}

// notFound maps a bodiless 404 (HEAD) to a missing bucket or key by asking
// whether the bucket exists.
func (s *Store) notFound(ctx context.Context, bucket string, err error) error {
	if !isNotFound(err) {
		return mapError(err)
	}
	if ok, berr := s.BucketExists(ctx, bucket); berr == nil && !ok {
		return fmt.Errorf("%w: %w", objstore.ErrNoSuchBucket, err)
	}
	return fmt.Errorf("%w: %w", objstore.ErrNoSuchKey, err)
}

// Delete removes the object. Deleting a missing key succeeds.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	if objstore.ValidateBucketName(bucket) != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, objstore.ErrNoSuchBucket)
	}
	if objstore.ValidateKey(key) != nil {
		return nil
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, mapError(err))
	}
	return nil
}

// List lists objects with ListObjectsV2, following continuation tokens
// until MaxKeys objects (or all of them) are found. Listed objects carry
// key, size, ETag and modification time only: S3 listings have no content
// type or metadata.
func (s *Store) List(ctx context.Context, bucket string, opts objstore.ListOptions) (objstore.ListResult, error) {
	if objstore.ValidateBucketName(bucket) != nil {
		return objstore.ListResult{}, fmt.Errorf("list %s: %w", bucket, objstore.ErrNoSuchBucket)
	}
	var res objstore.ListResult
	var token *string
	for {
		in := &s3.ListObjectsV2Input{
			Bucket:            aws.String(bucket),
			Prefix:            optString(opts.Prefix),
			ContinuationToken: token,
			EncodingType:      types.EncodingTypeUrl,
		}
		if token == nil {
			in.StartAfter = optString(opts.StartAfter)
		}
		if opts.MaxKeys > 0 {
			in.MaxKeys = aws.Int32(int32(min(opts.MaxKeys-len(res.Objects), 1000)))
		}
		out, err := s.client.ListObjectsV2(ctx, in)
		if err != nil {
			return objstore.ListResult{}, fmt.Errorf("list %s: %w", bucket, mapError(err))
		}
		for _, o := range out.Contents {
			key, err := url.QueryUnescape(aws.ToString(o.Key))
			if err != nil {
				return objstore.ListResult{}, fmt.Errorf("list %s: bad key encoding %q: %w", bucket, aws.ToString(o.Key), err)
			}
			res.Objects = append(res.Objects, objstore.ObjectInfo{
				Bucket:       bucket,
				Key:          key,
				Size:         aws.ToInt64(o.Size),
				ETag:         aws.ToString(o.ETag),
				LastModified: aws.ToTime(o.LastModified),
			})
		}
		more := aws.ToBool(out.IsTruncated)
		if opts.MaxKeys > 0 && len(res.Objects) >= opts.MaxKeys {
			res.IsTruncated = more || len(res.Objects) > opts.MaxKeys
			res.Objects = res.Objects[:opts.MaxKeys]
			return res, nil
		}
		if !more {
			return res, nil
		}
		if out.NextContinuationToken == nil {
			return objstore.ListResult{}, fmt.Errorf("list %s: truncated listing without a continuation token", bucket)
		}
		token = out.NextContinuationToken
	}
}
