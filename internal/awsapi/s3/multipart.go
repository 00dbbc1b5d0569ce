package s3

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rclone/gofakes3"
)

// partSpool keeps the parts of multipart uploads in files, one directory
// per upload, so that large uploads do not sit in memory. Uploads in
// progress do not survive a restart (gofakes3 tracks them in memory too).
type partSpool struct {
	dir string

	mu      sync.Mutex
	uploads map[gofakes3.UploadID]*spooledUpload
}

type spooledUpload struct {
	bucket, key string
	meta        map[string]string
	dir         string

	mu         sync.Mutex
	parts      map[int]spooledPart
	completing bool
}

type spooledPart struct {
	etag string
	size int64
	path string
}

func newPartSpool(dir string) *partSpool {
	return &partSpool{dir: dir, uploads: make(map[gofakes3.UploadID]*spooledUpload)}
}

func (p *partSpool) get(id gofakes3.UploadID) (*spooledUpload, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.uploads[id]
	if !ok {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return u, nil
}

func (p *partSpool) forget(id gofakes3.UploadID) {
	p.mu.Lock()
	u := p.uploads[id]
	delete(p.uploads, id)
	p.mu.Unlock()
	if u != nil {
		_ = os.RemoveAll(u.dir)
	}
}

func (b *backend) CreateMultipartUpload(ctx context.Context, bucket, key string, meta map[string]string) (gofakes3.UploadID, error) {
	if b.parts == nil {
		return "", gofakes3.ErrMultipartUploadNotSupported
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := gofakes3.UploadID(hex.EncodeToString(raw[:]))
	dir := filepath.Join(b.parts.dir, string(id))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("create multipart upload: %w", err)
	}
	b.parts.mu.Lock()
	b.parts.uploads[id] = &spooledUpload{bucket: bucket, key: key, meta: meta, dir: dir, parts: make(map[int]spooledPart)}
	b.parts.mu.Unlock()
	return id, nil
}

func (b *backend) UploadPart(ctx context.Context, bucket, key string, id gofakes3.UploadID, partNumber int, contentLength int64, body io.Reader) (string, error) {
	u, err := b.parts.get(id)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(u.dir, fmt.Sprintf("part-%05d-", partNumber))
	if err != nil {
		return "", fmt.Errorf("upload part: %w", err)
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), body)
	err = bodyError(err)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != contentLength {
		err = gofakes3.ErrIncompleteBody
	}
	if err != nil {
		_ = os.Remove(f.Name())
		var ge gofakes3.Error
		if errors.As(err, &ge) {
			return "", ge
		}
		return "", fmt.Errorf("upload part: %w", err)
	}
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`

	u.mu.Lock()
	defer u.mu.Unlock()
	if u.completing {
		_ = os.Remove(f.Name())
		return "", gofakes3.ErrNoSuchUpload
	}
	if old, ok := u.parts[partNumber]; ok {
		_ = os.Remove(old.path)
	}
	u.parts[partNumber] = spooledPart{etag: etag, size: n, path: f.Name()}
	return etag, nil
}

func (b *backend) CompleteMultipartUpload(ctx context.Context, bucket, key string, id gofakes3.UploadID, input *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	u, err := b.parts.get(id)
	if err != nil {
		return "", "", err
	}
	parts, err := u.begin(input)
	if err != nil {
		return "", "", err
	}
	etag, err := b.assemble(ctx, u, parts)
	if err != nil {
		u.mu.Lock()
		u.completing = false
		u.mu.Unlock()
		return "", "", err
	}
	b.parts.forget(id)
	return "", etag, nil
}

// begin checks the part list of a CompleteMultipartUpload against the
// parts received and stops further parts from being accepted.
func (u *spooledUpload) begin(input *gofakes3.CompleteMultipartUploadRequest) ([]spooledPart, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.completing {
		return nil, gofakes3.ErrNoSuchUpload
	}
	if len(input.Parts) == 0 {
		return nil, gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	parts := make([]spooledPart, 0, len(input.Parts))
	prev := 0
	for _, in := range input.Parts {
		if in.PartNumber <= prev {
			return nil, gofakes3.ErrInvalidPartOrder
		}
		prev = in.PartNumber
		p, ok := u.parts[in.PartNumber]
		if !ok || strings.Trim(in.ETag, `"`) != strings.Trim(p.etag, `"`) {
			return nil, gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded or its ETag does not match", in.PartNumber)
		}
		parts = append(parts, p)
	}
	u.completing = true
	return parts, nil
}

// assemble stores the concatenated parts as the object, returning its
// ETag: the MD5 of the whole object, the same the object shows on GET
// (S3's own multipart ETags, "<md5 of part md5s>-<n>", are not made).
func (b *backend) assemble(ctx context.Context, u *spooledUpload, parts []spooledPart) (string, error) {
	readers := make([]io.Reader, 0, len(parts))
	for _, p := range parts {
		f, err := os.Open(p.path)
		if err != nil {
			return "", fmt.Errorf("complete multipart upload: %w", err)
		}
		defer f.Close()
		readers = append(readers, f)
	}
	info, err := b.store.Put(ctx, u.bucket, u.key, io.MultiReader(readers...), putOptions(u.meta))
	if err != nil {
		return "", s3Error(err, u.bucket, u.key)
	}
	return info.ETag, nil
}

func (b *backend) AbortMultipartUpload(ctx context.Context, bucket, key string, id gofakes3.UploadID) error {
	if b.parts != nil {
		b.parts.forget(id)
	}
	return nil
}
