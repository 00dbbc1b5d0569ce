package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/batch/dataproc"
	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/objstore/disk"
)

func newStore(t *testing.T) objstore.Store {
	t.Helper()
	st, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"bin", "bout"} {
		if err := st.CreateBucket(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func put(t *testing.T, st objstore.Store, key string, body []byte) {
	t.Helper()
	if _, err := st.Put(context.Background(), "bin", key, bytes.NewReader(body), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func get(st objstore.Store, key string) ([]byte, error) {
	rc, _, err := st.Get(context.Background(), "bout", key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

type statusErr int

func (e statusErr) Error() string { return fmt.Sprintf("status %d", int(e)) }
func (e statusErr) Status() int   { return int(e) }

func numbered(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "record-%05d\n", i)
	}
	return b.Bytes()
}

// Answers that come back out of order are written in input order, and
// no more than Slots mini-batches are ever in flight over all objects.
func TestRunOrderAndBound(t *testing.T) {
	st := newStore(t)
	inputs := map[string][]byte{"p/a": numbered(500), "p/b": numbered(37), "p/c/d": numbered(1)}
	for k, v := range inputs {
		put(t, st, k, v)
	}
	var inflight, peak atomic.Int64
	invoke := func(ctx context.Context, body []byte) ([]byte, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		return bytes.ToUpper(body), nil
	}
	job := Job{InputBucket: "bin", InputPrefix: "p/", OutputBucket: "bout", OutputPrefix: "o",
		SplitType: "Line", BatchStrategy: "MultiRecord", MaxPayload: 40, Slots: 5}
	var done sync.Map
	job.Done = func(_ context.Context, key string) error { done.Store(key, true); return nil }
	stats, err := Run(context.Background(), st, job, invoke)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Objects != 3 {
		t.Errorf("stats %+v", stats)
	}
	for k, v := range inputs {
		got, err := get(st, "o/"+strings.TrimPrefix(k, "p/")+".out")
		if err != nil || !bytes.Equal(got, bytes.ToUpper(v)) {
			t.Errorf("%s: %d bytes (want %d), %v", k, len(got), len(v), err)
		}
		if _, ok := done.Load(k); !ok {
			t.Errorf("%s not reported done", k)
		}
	}
	if p := peak.Load(); p > 5 {
		t.Errorf("%d mini-batches in flight at once, Slots is 5", p)
	}
}

// 5xx and retryable errors are retried up to MaxRetries; a 4xx is not.
func TestRunRetries(t *testing.T) {
	st := newStore(t)
	put(t, st, "p/x", []byte("a\nb\n"))
	job := Job{InputBucket: "bin", InputPrefix: "p/", OutputBucket: "bout", SplitType: "Line", BatchStrategy: "SingleRecord",
		MaxPayload: 10, Slots: 1, MaxRetries: 2, RetryBackoff: time.Millisecond}
	var calls atomic.Int32
	flaky := func(ctx context.Context, body []byte) ([]byte, error) {
		switch calls.Add(1) {
		case 1:
			return nil, statusErr(503)
		case 2:
			return nil, &RetryableError{Err: errors.New("connection refused")}
		}
		return body, nil
	}
	if _, err := Run(context.Background(), st, job, flaky); err != nil {
		t.Fatalf("two failures within MaxRetries 2: %v", err)
	}
	if got, _ := get(st, "x.out"); string(got) != "a\nb\n" {
		t.Errorf("output %q", got)
	}

	calls.Store(0)
	always := func(ctx context.Context, body []byte) ([]byte, error) { calls.Add(1); return nil, statusErr(500) }
	_, err := Run(context.Background(), st, job, always)
	var f *Failure
	if !errors.As(err, &f) || !strings.Contains(f.Reason, "s3://bin/p/x, record 1") || calls.Load() != 3 {
		t.Fatalf("after MaxRetries: %v (%d calls, want 3)", err, calls.Load())
	}

	calls.Store(0)
	reject := func(ctx context.Context, body []byte) ([]byte, error) { calls.Add(1); return nil, statusErr(415) }
	if _, err := Run(context.Background(), st, job, reject); !errors.As(err, &f) || calls.Load() != 1 {
		t.Fatalf("a 4xx: %v after %d calls, want a failure after 1", err, calls.Load())
	}
}

// A large object streams through in bounded memory: the runner never
// holds more than Slots payloads, however long the object.
func TestRunLargeObjectBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MB")
	}
	st := newStore(t)
	const size = 64 << 20
	line := bytes.Repeat([]byte("z"), 1023)
	line = append(line, '\n')
	pr, pw := io.Pipe()
	go func() {
		for written := 0; written < size; written += len(line) {
			pw.Write(line)
		}
		pw.Close()
	}()
	if _, err := st.Put(context.Background(), "bin", "big/one", pr, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	job := Job{InputBucket: "bin", InputPrefix: "big/", OutputBucket: "bout", SplitType: "Line", BatchStrategy: "MultiRecord",
		MaxPayload: 1 << 20, Slots: 4}
	var bytesIn atomic.Int64
	invoke := func(ctx context.Context, body []byte) ([]byte, error) {
		bytesIn.Add(int64(len(body)))
		return []byte{'.'}, nil
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := heapPeak()
	if _, err := Run(context.Background(), st, job, invoke); err != nil {
		t.Fatal(err)
	}
	peak := stop()
	if bytesIn.Load() != size {
		t.Fatalf("sent %d bytes, want %d", bytesIn.Load(), size)
	}
	if grew := int64(peak) - int64(base.HeapInuse); grew > 32<<20 {
		t.Errorf("heap grew by %d MB for a 64 MB object with 4 × 1 MB in flight", grew>>20)
	}
}

// With DataProcessing, each batch carries its original records while in
// flight: rows filtered before batching, answered out of order, joined
// back to the right input rows, with a row held over between batches.
func TestRunDataProcessingJoin(t *testing.T) {
	st := newStore(t)
	var in, want bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&in, "id%d,v%d,%s\n", i, i, strings.Repeat("w", i%5))
		fmt.Fprintf(&want, "id%d,%s\n", i, strings.ToUpper(strings.Repeat("w", i%5)))
	}
	put(t, st, "p/rows.csv", in.Bytes())
	proc, err := dataproc.New(dataproc.Config{InputFilter: "$[1:]", OutputFilter: "$[0,-1]", JoinSource: "Input", ContentType: "text/csv"})
	if err != nil {
		t.Fatal(err)
	}
	var batches atomic.Int64
	invoke := func(ctx context.Context, body []byte) ([]byte, error) {
		batches.Add(1)
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		return bytes.ToUpper(body), nil
	}
	job := Job{InputBucket: "bin", InputPrefix: "p/", OutputBucket: "bout", OutputPrefix: "o",
		SplitType: "Line", BatchStrategy: "MultiRecord", AssembleWith: "Line",
		MaxPayload: 40, Slots: 8, Process: proc}
	if _, err := Run(context.Background(), st, job, invoke); err != nil {
		t.Fatal(err)
	}
	got, err := get(st, "o/rows.csv.out")
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("output %q (%v)\nwant %q", got, err, want.Bytes())
	}
	if batches.Load() < 50 {
		t.Fatalf("only %d batches: the test does not hold rows over between batches", batches.Load())
	}
}
