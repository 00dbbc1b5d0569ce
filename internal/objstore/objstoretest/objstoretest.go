// Package objstoretest is the conformance suite every objstore.Store
// implementation passes: buckets, objects, metadata, listing, errors and
// atomic replacement under concurrency.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/objstore"
)

// Run runs the suite. newStore returns a store for one subtest; stores may
// share state between calls (for example one server behind them), as every
// subtest uses bucket names of its own.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"Buckets", testBuckets},
		{"InvalidBucketNames", testInvalidBucketNames},
		{"PutGetHead", testPutGetHead},
		{"EmptyObject", testEmptyObject},
		{"LargeObject", testLargeObject},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"MissingBucket", testMissingBucket},
		{"DeleteNonEmptyBucket", testDeleteNonEmptyBucket},
		{"Keys", testKeys},
		{"List", testList},
		{"ListPaging", testListPaging},
		{"ConcurrentPuts", testConcurrentPuts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// bucketName returns a bucket name unique to the running subtest.
func bucketName(t *testing.T, suffix string) string {
	t.Helper()
	name := strings.ToLower(t.Name())
	var b strings.Builder
	for _, c := range name {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	name = strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	name = strings.Trim(name, "-")
	return fmt.Sprintf("ost-%s-%s", name, suffix)
}

func mustCreateBucket(t *testing.T, s objstore.Store, suffix string) string {
	t.Helper()
	b := bucketName(t, suffix)
	if err := s.CreateBucket(context.Background(), b); err != nil {
		t.Fatalf("CreateBucket(%q): %v", b, err)
	}
	return b
}

func mustPut(t *testing.T, s objstore.Store, bucket, key string, data []byte, opts objstore.PutOptions) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(context.Background(), bucket, key, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Put(%q, %q): %v", bucket, key, err)
	}
	return info
}

func mustGet(t *testing.T, s objstore.Store, bucket, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), bucket, key)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", bucket, key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %q): reading: %v", bucket, key, err)
	}
	return data, info
}

func etagOf(data []byte) string {
	sum := md5.Sum(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func testBuckets(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b1, b2 := bucketName(t, "one"), bucketName(t, "two")
	before := time.Now().Add(-time.Hour)
	for _, b := range []string{b2, b1} {
		if err := s.CreateBucket(ctx, b); err != nil {
			t.Fatalf("CreateBucket(%q): %v", b, err)
		}
	}
	wantErr(t, "CreateBucket of an existing bucket", s.CreateBucket(ctx, b1), objstore.ErrBucketExists)

	for _, b := range []string{b1, b2} {
		ok, err := s.BucketExists(ctx, b)
		if err != nil || !ok {
			t.Errorf("BucketExists(%q) = %v, %v; want true", b, ok, err)
		}
	}
	if ok, err := s.BucketExists(ctx, bucketName(t, "nope")); err != nil || ok {
		t.Errorf("BucketExists(missing) = %v, %v; want false", ok, err)
	}

	list, err := s.ListBuckets(ctx)
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	var names []string
	for _, bi := range list {
		names = append(names, bi.Name)
		if bi.Name == b1 && (bi.Created.Before(before) || bi.Created.After(time.Now().Add(time.Hour))) {
			t.Errorf("bucket %q created at %v, want about now", bi.Name, bi.Created)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("ListBuckets not sorted: %q", names)
	}
	if !slices.Contains(names, b1) || !slices.Contains(names, b2) {
		t.Errorf("ListBuckets = %q, want %q and %q among them", names, b1, b2)
	}

	if err := s.DeleteBucket(ctx, b1); err != nil {
		t.Fatalf("DeleteBucket: %v", err)
	}
	if ok, err := s.BucketExists(ctx, b1); err != nil || ok {
		t.Errorf("BucketExists after delete = %v, %v; want false", ok, err)
	}
	wantErr(t, "DeleteBucket of a deleted bucket", s.DeleteBucket(ctx, b1), objstore.ErrNoSuchBucket)
	// The name can be used again.
	if err := s.CreateBucket(ctx, b1); err != nil {
		t.Fatalf("CreateBucket after delete: %v", err)
	}
}

func testInvalidBucketNames(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	for _, name := range []string{
		"ab",
		strings.Repeat("a", 64),
		"Upper-case",
		"under_score",
		"-starts-with-hyphen",
		"ends-with-hyphen-",
		"two..dots",
		"192.168.1.1",
		"slash/inside",
		"../escape",
	} {
		err := s.CreateBucket(ctx, name)
		wantErr(t, fmt.Sprintf("CreateBucket(%q)", name), err, objstore.ErrInvalidName)
		if ok, _ := s.BucketExists(ctx, name); ok {
			t.Errorf("BucketExists(%q) = true after failed create", name)
		}
	}
}

func testPutGetHead(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := mustCreateBucket(t, s, "b")
	data := []byte("hello, berth\n")
	start := time.Now().Add(-time.Hour)
	opts := objstore.PutOptions{
		ContentType: "text/plain",
		Metadata:    map[string]string{"model": "xgboost", "run-id": "42"},
	}
	put := mustPut(t, s, b, "dir/hello.txt", data, opts)
	if put.Size != int64(len(data)) || put.ETag != etagOf(data) || put.Key != "dir/hello.txt" || put.Bucket != b {
		t.Errorf("Put returned %+v, want size %d etag %s", put, len(data), etagOf(data))
	}

	got, info := mustGet(t, s, b, "dir/hello.txt")
	if !bytes.Equal(got, data) {
		t.Errorf("Get body = %q, want %q", got, data)
	}
	head, err := s.Head(ctx, b, "dir/hello.txt")
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	for what, oi := range map[string]objstore.ObjectInfo{"Get": info, "Head": head} {
		if oi.Size != int64(len(data)) {
			t.Errorf("%s size = %d, want %d", what, oi.Size, len(data))
		}
		if oi.ETag != etagOf(data) {
			t.Errorf("%s etag = %s, want %s", what, oi.ETag, etagOf(data))
		}
		if oi.ContentType != "text/plain" {
			t.Errorf("%s content type = %q, want text/plain", what, oi.ContentType)
		}
		if oi.Metadata["model"] != "xgboost" || oi.Metadata["run-id"] != "42" || len(oi.Metadata) != 2 {
			t.Errorf("%s metadata = %v, want %v", what, oi.Metadata, opts.Metadata)
		}
		if oi.LastModified.Before(start) || oi.LastModified.After(time.Now().Add(time.Hour)) {
			t.Errorf("%s last modified = %v, want about now", what, oi.LastModified)
		}
		if oi.Key != "dir/hello.txt" || oi.Bucket != b {
			t.Errorf("%s names %s/%s, want %s/dir/hello.txt", what, oi.Bucket, oi.Key, b)
		}
	}
	if _, err := s.Head(ctx, b, "dir"); !errors.Is(err, objstore.ErrNoSuchKey) {
		t.Errorf("Head of a key prefix: got %v, want ErrNoSuchKey", err)
	}
}

func testEmptyObject(t *testing.T, s objstore.Store) {
	b := mustCreateBucket(t, s, "b")
	mustPut(t, s, b, "empty", nil, objstore.PutOptions{})
	got, info := mustGet(t, s, b, "empty")
	if len(got) != 0 || info.Size != 0 || info.ETag != etagOf(nil) {
		t.Errorf("empty object: body %d bytes, info %+v", len(got), info)
	}
}

func testLargeObject(t *testing.T, s objstore.Store) {
	b := mustCreateBucket(t, s, "b")
	data := pattern(9<<20+123, 7)
	// A reader that hides its length and is not seekable, as a network
	// stream would be.
	info, err := s.Put(context.Background(), b, "big/blob.bin", struct{ io.Reader }{bytes.NewReader(data)}, objstore.PutOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Put size = %d, want %d", info.Size, len(data))
	}
	got, ginfo := mustGet(t, s, b, "big/blob.bin")
	if !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	if ginfo.Size != int64(len(data)) {
		t.Errorf("Get size = %d, want %d", ginfo.Size, len(data))
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	b := mustCreateBucket(t, s, "b")
	mustPut(t, s, b, "k", []byte("first version"), objstore.PutOptions{ContentType: "text/plain", Metadata: map[string]string{"old": "1"}})
	second := []byte("second, longer version of the object")
	mustPut(t, s, b, "k", second, objstore.PutOptions{ContentType: "application/json", Metadata: map[string]string{"new": "2"}})
	got, info := mustGet(t, s, b, "k")
	if !bytes.Equal(got, second) {
		t.Errorf("after overwrite Get = %q, want %q", got, second)
	}
	if info.ETag != etagOf(second) || info.ContentType != "application/json" {
		t.Errorf("after overwrite info = %+v", info)
	}
	if _, ok := info.Metadata["old"]; ok || info.Metadata["new"] != "2" {
		t.Errorf("after overwrite metadata = %v, want only new=2", info.Metadata)
	}
	res, err := s.List(context.Background(), b, objstore.ListOptions{})
	if err != nil || len(res.Objects) != 1 {
		t.Errorf("List after overwrite = %+v, %v; want one object", res, err)
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := mustCreateBucket(t, s, "b")
	mustPut(t, s, b, "a/b/c", []byte("x"), objstore.PutOptions{})
	mustPut(t, s, b, "a/b/d", []byte("y"), objstore.PutOptions{})
	if err := s.Delete(ctx, b, "a/b/c"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Head(ctx, b, "a/b/c")
	wantErr(t, "Head after Delete", err, objstore.ErrNoSuchKey)
	_, _, err = s.Get(ctx, b, "a/b/c")
	wantErr(t, "Get after Delete", err, objstore.ErrNoSuchKey)
	if got, _ := mustGet(t, s, b, "a/b/d"); string(got) != "y" {
		t.Errorf("sibling after Delete = %q, want y", got)
	}
	if err := s.Delete(ctx, b, "a/b/c"); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	if err := s.Delete(ctx, b, "never/was"); err != nil {
		t.Errorf("Delete of a never-existing key = %v, want nil", err)
	}
	if err := s.Delete(ctx, b, "a/b/d"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// A key can be written again after its neighbours went.
	mustPut(t, s, b, "a/b/c", []byte("z"), objstore.PutOptions{})
	if got, _ := mustGet(t, s, b, "a/b/c"); string(got) != "z" {
		t.Errorf("re-put after Delete = %q, want z", got)
	}
}

func testMissingBucket(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := bucketName(t, "missing")
	_, err := s.Put(ctx, b, "k", strings.NewReader("x"), objstore.PutOptions{})
	wantErr(t, "Put", err, objstore.ErrNoSuchBucket)
	_, _, err = s.Get(ctx, b, "k")
	wantErr(t, "Get", err, objstore.ErrNoSuchBucket)
	_, err = s.Head(ctx, b, "k")
	wantErr(t, "Head", err, objstore.ErrNoSuchBucket)
	wantErr(t, "Delete", s.Delete(ctx, b, "k"), objstore.ErrNoSuchBucket)
	_, err = s.List(ctx, b, objstore.ListOptions{})
	wantErr(t, "List", err, objstore.ErrNoSuchBucket)
	wantErr(t, "DeleteBucket", s.DeleteBucket(ctx, b), objstore.ErrNoSuchBucket)

	real := mustCreateBucket(t, s, "real")
	_, _, err = s.Get(ctx, real, "no/such/key")
	wantErr(t, "Get of a missing key", err, objstore.ErrNoSuchKey)
	_, err = s.Head(ctx, real, "no/such/key")
	wantErr(t, "Head of a missing key", err, objstore.ErrNoSuchKey)
}

func testDeleteNonEmptyBucket(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := mustCreateBucket(t, s, "b")
	mustPut(t, s, b, "deep/down/there", []byte("x"), objstore.PutOptions{})
	wantErr(t, "DeleteBucket of a non-empty bucket", s.DeleteBucket(ctx, b), objstore.ErrBucketNotEmpty)
	if got, _ := mustGet(t, s, b, "deep/down/there"); string(got) != "x" {
		t.Errorf("object after failed DeleteBucket = %q", got)
	}
	if err := s.Delete(ctx, b, "deep/down/there"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.DeleteBucket(ctx, b); err != nil {
		t.Errorf("DeleteBucket once empty: %v", err)
	}
}

// oddKeys are keys whose characters need care in paths and URLs.
var oddKeys = []string{
	"plain",
	"with/slashes/in/it.txt",
	"trailing/slash/",
	"double//slash",
	"with space and+plus",
	"percent%20and%2Fescapes",
	"question?mark&amp=1",
	"hash#fragment",
	"tilde~caret^backtick`",
	"quotes'and\"double",
	"brackets[]{}()<>",
	"semi;colon:comma,equals=",
	"dots.../x/.hidden",
	"UPPER/Mixed/lower",
	"ünïcødé/日本語/файл.txt",
	"emoji/🦀🚀",
	"tab\tand-control",
	strings.Repeat("long-key-segment/", 40) + "end",
	strings.Repeat("ü", 300),
}

func testKeys(t *testing.T, s objstore.Store) {
	b := mustCreateBucket(t, s, "b")
	for i, k := range oddKeys {
		mustPut(t, s, b, k, []byte(fmt.Sprintf("body %d", i)), objstore.PutOptions{})
	}
	for i, k := range oddKeys {
		got, info := mustGet(t, s, b, k)
		if want := fmt.Sprintf("body %d", i); string(got) != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
		if info.Key != k {
			t.Errorf("Get(%q) info key = %q", k, info.Key)
		}
	}
	res, err := s.List(context.Background(), b, objstore.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := slices.Clone(oddKeys)
	slices.Sort(want)
	if got := keysOf(res.Objects); !slices.Equal(got, want) {
		t.Errorf("List keys =\n%q\nwant\n%q", got, want)
	}
}

func keysOf(objs []objstore.ObjectInfo) []string {
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// listKeys are chosen so that byte order differs from what a walk of
// "/"-separated directories would give, and so that keys share long
// prefixes.
var listKeys = []string{
	"a",
	"a-b",
	"a.c",
	"a/",
	"a/b",
	"a/b/c",
	"a/bb",
	"a0",
	"b",
	"data/part-0001.csv",
	"data/part-0002.csv",
	"data/part-0010.csv",
	"data/sub/x.csv",
	"data2/y",
	"datum",
	"Z-upper",
	"zz",
	"ü",
	strings.Repeat("p", 31) + "/tail",
	strings.Repeat("p", 32),
	strings.Repeat("p", 32) + "-",
	strings.Repeat("p", 32) + "/",
	strings.Repeat("p", 32) + "0",
	strings.Repeat("p", 33),
	strings.Repeat("p", 64) + "x",
}

func testList(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := mustCreateBucket(t, s, "b")
	for _, k := range listKeys {
		mustPut(t, s, b, k, []byte(k), objstore.PutOptions{ContentType: "text/plain"})
	}
	sorted := slices.Clone(listKeys)
	slices.Sort(sorted)

	filter := func(keep func(string) bool) []string {
		var out []string
		for _, k := range sorted {
			if keep(k) {
				out = append(out, k)
			}
		}
		return out
	}
	cases := []struct {
		name string
		opts objstore.ListOptions
		want []string
	}{
		{"all", objstore.ListOptions{}, sorted},
		{"prefix a/", objstore.ListOptions{Prefix: "a/"}, filter(func(k string) bool { return strings.HasPrefix(k, "a/") })},
		{"prefix data", objstore.ListOptions{Prefix: "data"}, filter(func(k string) bool { return strings.HasPrefix(k, "data") })},
		{"prefix data/part-00", objstore.ListOptions{Prefix: "data/part-00"}, filter(func(k string) bool { return strings.HasPrefix(k, "data/part-00") })},
		{"prefix long", objstore.ListOptions{Prefix: strings.Repeat("p", 32)}, filter(func(k string) bool { return strings.HasPrefix(k, strings.Repeat("p", 32)) })},
		{"prefix none", objstore.ListOptions{Prefix: "nothing"}, nil},
		{"prefix is whole key", objstore.ListOptions{Prefix: "a/b/c"}, []string{"a/b/c"}},
		{"start after a/b", objstore.ListOptions{StartAfter: "a/b"}, filter(func(k string) bool { return k > "a/b" })},
		{"start after non-key", objstore.ListOptions{StartAfter: "c"}, filter(func(k string) bool { return k > "c" })},
		{"start after long", objstore.ListOptions{StartAfter: strings.Repeat("p", 32) + "-"}, filter(func(k string) bool { return k > strings.Repeat("p", 32)+"-" })},
		{"start after last", objstore.ListOptions{StartAfter: "ü"}, nil},
		{"prefix and start after", objstore.ListOptions{Prefix: "data/", StartAfter: "data/part-0002.csv"}, []string{"data/part-0010.csv", "data/sub/x.csv"}},
		{"max keys", objstore.ListOptions{MaxKeys: 3}, sorted[:3]},
		{"max keys with prefix", objstore.ListOptions{Prefix: "data/", MaxKeys: 2}, []string{"data/part-0001.csv", "data/part-0002.csv"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.List(ctx, b, tc.opts)
			if err != nil {
				t.Fatalf("List(%+v): %v", tc.opts, err)
			}
			if got := keysOf(res.Objects); !slices.Equal(got, tc.want) {
				t.Errorf("List(%+v) =\n%q\nwant\n%q", tc.opts, got, tc.want)
			}
			wantTrunc := tc.opts.MaxKeys > 0 && len(tc.want) == tc.opts.MaxKeys
			if res.IsTruncated != wantTrunc {
				t.Errorf("List(%+v) truncated = %v, want %v", tc.opts, res.IsTruncated, wantTrunc)
			}
			for _, o := range res.Objects {
				if o.Size != int64(len(o.Key)) || o.ETag != etagOf([]byte(o.Key)) || o.LastModified.IsZero() || o.Bucket != b {
					t.Errorf("listed object %+v: wrong size, etag, time or bucket", o)
				}
			}
		})
	}

	// Exactly MaxKeys matching objects: not truncated.
	res, err := s.List(ctx, b, objstore.ListOptions{Prefix: "a/b", MaxKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(res.Objects); !slices.Equal(got, []string{"a/b", "a/b/c", "a/bb"}) || res.IsTruncated {
		t.Errorf("List exactly MaxKeys = %q truncated %v", got, res.IsTruncated)
	}

	empty := mustCreateBucket(t, s, "empty")
	res, err = s.List(ctx, empty, objstore.ListOptions{})
	if err != nil || len(res.Objects) != 0 || res.IsTruncated {
		t.Errorf("List of an empty bucket = %+v, %v", res, err)
	}
}

func testListPaging(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := mustCreateBucket(t, s, "b")
	var want []string
	for i := range 45 {
		k := fmt.Sprintf("page/%02d/item-%d", i%9, i)
		want = append(want, k)
		mustPut(t, s, b, k, []byte{byte(i)}, objstore.PutOptions{})
	}
	mustPut(t, s, b, "other", nil, objstore.PutOptions{})
	slices.Sort(want)
	for _, pageSize := range []int{1, 7, 45, 100} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("page size %d: listing does not end", pageSize)
			}
			res, err := s.List(ctx, b, objstore.ListOptions{Prefix: "page/", StartAfter: after, MaxKeys: pageSize})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(res.Objects) > pageSize {
				t.Fatalf("page size %d: got %d objects", pageSize, len(res.Objects))
			}
			got = append(got, keysOf(res.Objects)...)
			if !res.IsTruncated {
				break
			}
			after = res.Objects[len(res.Objects)-1].Key
		}
		if !slices.Equal(got, want) {
			t.Errorf("page size %d: paged listing =\n%q\nwant\n%q", pageSize, got, want)
		}
	}
}

// pattern returns n bytes that depend on seed, so that a mix of two
// versions shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := mustCreateBucket(t, s, "b")
	const (
		writers = 4
		rounds  = 6
		readers = 3
		size    = 300 << 10
	)
	versions := make(map[string]int) // etag -> version
	var bodies [][]byte
	for v := range writers {
		body := pattern(size+v*1000, byte(v*50))
		bodies = append(bodies, body)
		versions[etagOf(body)] = v
	}
	mustPut(t, s, b, "contended", bodies[0], objstore.PutOptions{})

	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, writers*rounds+readers*1000)
	for v := range writers {
		wg.Go(func() {
			for range rounds {
				if _, err := s.Put(ctx, b, "contended", bytes.NewReader(bodies[v]), objstore.PutOptions{Metadata: map[string]string{"version": fmt.Sprint(v)}}); err != nil {
					errs <- fmt.Errorf("writer %d: %w", v, err)
					return
				}
			}
		})
	}
	var readerWG sync.WaitGroup
	for r := range readers {
		readerWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					if i > 0 {
						return
					}
				default:
				}
				rc, info, err := s.Get(ctx, b, "contended")
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				data, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				v, ok := versions[etagOf(data)]
				if !ok {
					errs <- fmt.Errorf("reader %d: read %d bytes that are no version that was written", r, len(data))
					return
				}
				if info.Size != int64(len(data)) || info.ETag != etagOf(data) {
					errs <- fmt.Errorf("reader %d: info %+v does not describe the body read (version %d)", r, info, v)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readerWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, info := mustGet(t, s, b, "contended")
	v, ok := versions[etagOf(got)]
	if !ok || info.Metadata["version"] != fmt.Sprint(v) {
		t.Errorf("final object: version %d (known %v) with metadata %v", v, ok, info.Metadata)
	}
}
