package s3

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"github.com/rclone/gofakes3"
)

// emptyUploadLists answers ListMultipartUploads on a bucket that has
// never had an upload with an empty list, as S3 does: gofakes3 answers
// 404 NoSuchUpload there, which clients (the AWS CLI's
// list-multipart-uploads, SDK paginators) report as a failure. The bucket
// itself is checked by gofakes3 first, so NoSuchBucket still comes through.
func emptyUploadLists(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !r.URL.Query().Has("uploads") {
			next.ServeHTTP(w, r)
			return
		}
		bucket := strings.Trim(r.URL.Path, "/")
		if bucket == "" || strings.Contains(bucket, "/") {
			next.ServeHTTP(w, r)
			return
		}
		rw := &notFoundCatcher{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		if !rw.caught {
			return
		}
		if !bytes.Contains(rw.body.Bytes(), []byte("<Code>"+string(gofakes3.ErrNoSuchUpload)+"</Code>")) {
			// Another 404 (NoSuchBucket): pass it on as it was.
			w.WriteHeader(http.StatusNotFound)
			w.Write(rw.body.Bytes())
			return
		}
		q := r.URL.Query()
		out := gofakes3.ListMultipartUploadsResult{
			Bucket:     bucket,
			Prefix:     q.Get("prefix"),
			Delimiter:  q.Get("delimiter"),
			KeyMarker:  q.Get("key-marker"),
			MaxUploads: gofakes3.DefaultMaxUploads,
		}
		if q.Get("key-marker") != "" {
			out.UploadIDMarker = gofakes3.UploadID(q.Get("upload-id-marker"))
		}
		if n, err := strconv.ParseInt(q.Get("max-uploads"), 10, 64); err == nil && n > 0 && n <= gofakes3.MaxUploadsLimit {
			out.MaxUploads = n
		}
		h := w.Header()
		h.Del("Content-Length")
		h.Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(xml.Header))
		xml.NewEncoder(w).Encode(out)
	})
}

// notFoundCatcher holds back a 404 answer so that the caller can replace
// it; any other answer goes straight through.
type notFoundCatcher struct {
	http.ResponseWriter
	caught bool
	wrote  bool
	body   bytes.Buffer
}

func (c *notFoundCatcher) WriteHeader(code int) {
	if c.wrote {
		return
	}
	c.wrote = true
	if code == http.StatusNotFound {
		c.caught = true
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *notFoundCatcher) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.caught {
		return c.body.Write(p)
	}
	return c.ResponseWriter.Write(p)
}
