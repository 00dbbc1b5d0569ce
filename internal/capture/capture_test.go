package capture

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/objstore/disk"
	"github.com/berth-io/berth/internal/router"
	"github.com/berth-io/berth/internal/testutil"
)

// newStore returns an object store on disk holding bucket.
func newStore(t *testing.T, bucket string) *disk.Store {
	t.Helper()
	store, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateBucket(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestWriterLayout(t *testing.T) {
	ctx := context.Background()
	store := newStore(t, "cap")
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	w := New("ep", Config{
		Destination:        objstore.S3URI{Bucket: "cap", Key: "prefix/"},
		SamplingPercentage: 100,
		Input:              true,
		Output:             true,
		JSONContentTypes:   []string{"application/json"},
	}, store, Options{FlushInterval: time.Hour, Now: func() time.Time { return now }})
	events := []router.CaptureEvent{
		{Endpoint: "ep", Variant: "A", EventID: "e1", InferenceID: "i1", Time: now, RequestContentType: "text/csv", RequestBody: []byte("1,2"), ResponseContentType: "text/csv", ResponseBody: []byte("0.5")},
		{Endpoint: "ep", Variant: "A", EventID: "e2", Time: now, RequestContentType: "application/json; charset=utf-8", RequestBody: []byte(`{"x":1}`), ResponseContentType: "application/octet-stream", ResponseBody: []byte{0xff, 0x00}},
		{Endpoint: "ep", Variant: "B", EventID: "e3", Time: now, RequestContentType: "text/csv", RequestBody: []byte{0xff}},
	}
	for _, ev := range events {
		if !w.Sample() {
			t.Fatal("100% sampling skipped a request")
		}
		w.Capture(ev)
	}
	w.Close()
	if w.Written() != 3 || w.Dropped() != 0 {
		t.Fatalf("written %d dropped %d", w.Written(), w.Dropped())
	}
	list, err := store.List(ctx, "cap", objstore.ListOptions{Prefix: "prefix/ep/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Objects) != 2 {
		t.Fatalf("%d files, want one per variant: %+v", len(list.Objects), list.Objects)
	}
	if !strings.HasPrefix(list.Objects[0].Key, "prefix/ep/A/2026/03/04/05/") || !strings.HasSuffix(list.Objects[0].Key, ".jsonl") {
		t.Errorf("key %s", list.Objects[0].Key)
	}
	body, _, err := store.Get(ctx, "cap", list.Objects[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	var recs []Record
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	in, out := recs[0].CaptureData.EndpointInput, recs[0].CaptureData.EndpointOutput
	if in.Encoding != "CSV" || in.Data != "1,2" || in.Mode != "INPUT" || out.Data != "0.5" || out.Mode != "OUTPUT" {
		t.Errorf("csv record: %+v %+v", in, out)
	}
	if recs[0].EventMetadata.InferenceTime != "2026-03-04T05:06:07Z" || recs[0].EventMetadata.InferenceID != "i1" {
		t.Errorf("metadata: %+v", recs[0].EventMetadata)
	}
	in, out = recs[1].CaptureData.EndpointInput, recs[1].CaptureData.EndpointOutput
	if in.Encoding != "JSON" || in.Data != `{"x":1}` {
		t.Errorf("json input: %+v", in)
	}
	if out.Encoding != "BASE64" || out.Data != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}) {
		t.Errorf("binary output: %+v", out)
	}
}

func TestWriterDropsWhenFull(t *testing.T) {
	store, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := New("ep", Config{Destination: objstore.S3URI{Bucket: "missing"}, SamplingPercentage: 0, Input: true}, store, Options{QueueSize: 1, FlushInterval: time.Hour})
	if w.Sample() {
		t.Error("0% sampling captured a request")
	}
	for range 100 {
		w.Capture(router.CaptureEvent{Variant: "A"})
	}
	w.Close()
	// A missing bucket loses the records but never blocks or panics.
	if w.Written() != 0 || w.Dropped() != 100 {
		t.Errorf("written %d dropped %d", w.Written(), w.Dropped())
	}
}

// TestWriterFlushesOnTick: a record waits in the batch until the flush
// interval ticks, then is written without Close.
func TestWriterFlushesOnTick(t *testing.T) {
	ctx := context.Background()
	store := newStore(t, "cap")
	ticks := make(chan time.Time)
	var interval time.Duration
	stopped := make(chan struct{})
	w := New("ep", Config{Destination: objstore.S3URI{Bucket: "cap"}, SamplingPercentage: 100, Input: true}, store, Options{
		FlushInterval: 7 * time.Second,
		Ticker: func(d time.Duration) (<-chan time.Time, func()) {
			interval = d
			return ticks, func() { close(stopped) }
		},
	})
	w.Capture(router.CaptureEvent{Endpoint: "ep", Variant: "A", EventID: "e1", Time: time.Now(), RequestContentType: "text/csv", RequestBody: []byte("1")})
	// Once the writer took the event off its queue, only a tick (or
	// Close) writes it.
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := len(w.queue); n != 0 {
			return fmt.Errorf("%d events queued", n)
		}
		return nil
	})
	if n := w.Written(); n != 0 {
		t.Fatalf("%d records written before the flush interval passed", n)
	}
	ticks <- time.Now()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := w.Written(); n != 1 {
			return fmt.Errorf("%d records written after the tick", n)
		}
		return nil
	})
	list, err := store.List(ctx, "cap", objstore.ListOptions{Prefix: "ep/A/"})
	if err != nil || len(list.Objects) != 1 {
		t.Fatalf("files after the tick: %+v %v", list, err)
	}
	w.Close()
	if interval != 7*time.Second {
		t.Errorf("ticker interval %s, want the flush interval", interval)
	}
	select {
	case <-stopped:
	default:
		t.Error("Close left the ticker running")
	}
}
