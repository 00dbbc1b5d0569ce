package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.r == s.w {
		t.Fatal("reads share the writer's connection")
	}
	for _, c := range []struct {
		db           string
		pragma, want string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "busy_timeout", "10000"},
		{"writer", "query_only", "0"},
		{"reader", "journal_mode", "wal"},
		{"reader", "busy_timeout", "10000"},
		{"reader", "query_only", "1"},
	} {
		db := s.w
		if c.db == "reader" {
			db = s.r
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", c.db, c.pragma, got, c.want)
		}
	}
	if got := s.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer allows %d connections, want 1", got)
	}
	_, err = s.r.ExecContext(ctx, `INSERT INTO resources (kind, name, created, modified, body) VALUES ('x', 'y', 0, 0, '')`)
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_READONLY {
		t.Errorf("write through a reader: %v, want SQLITE_READONLY", err)
	}
}

// TestConcurrentReadersAndWriter runs readers against a writer (under
// -race in CI): every write is visible to the next read of the caller
// that made it, and no read fails while writes go on.
func TestConcurrentReadersAndWriter(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const writes = 90
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	var reads atomic.Int64
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load(); i++ {
				recs, err := s.List(ctx, "endpoint")
				if err != nil {
					report(fmt.Errorf("list: %w", err))
					return
				}
				if len(recs) > 0 {
					name := recs[i%len(recs)].Name
					if _, err := s.Get(ctx, "endpoint", name); err != nil && !errors.Is(err, ErrNotFound) {
						report(fmt.Errorf("get %s: %w", name, err))
						return
					}
				}
				reads.Add(1)
				// A breath between reads, so that on a busy machine the
				// readers overlap the writes without starving them of CPU.
				time.Sleep(50 * time.Microsecond)
			}
		}()
	}

	func() {
		defer done.Store(true)
		for i := 0; i < writes; i++ {
			name := fmt.Sprintf("ep-%03d", i)
			now := time.Now()
			if err := s.Create(ctx, Record{Kind: "endpoint", Name: name, Created: now, Modified: now, Status: "Creating", Body: []byte(`{}`)}); err != nil {
				t.Errorf("create %s: %v", name, err)
				return
			}
			if got, err := s.Get(ctx, "endpoint", name); err != nil || got.Status != "Creating" {
				t.Errorf("read after create %s: %+v, %v", name, got, err)
				return
			}
			if _, err := s.Update(ctx, "endpoint", name, func(r *Record) error {
				r.Status = "InService"
				return nil
			}); err != nil {
				t.Errorf("update %s: %v", name, err)
				return
			}
			if got, err := s.Get(ctx, "endpoint", name); err != nil || got.Status != "InService" {
				t.Errorf("read after update %s: %+v, %v", name, got, err)
				return
			}
			if i%3 == 0 {
				if err := s.Delete(ctx, "endpoint", name); err != nil {
					t.Errorf("delete %s: %v", name, err)
					return
				}
				if _, err := s.Get(ctx, "endpoint", name); !errors.Is(err, ErrNotFound) {
					t.Errorf("read after delete %s: %v", name, err)
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	recs, err := s.List(ctx, "endpoint")
	if err != nil || len(recs) != writes-writes/3 {
		t.Errorf("after the run: %d records, %v; want %d", len(recs), err, writes-writes/3)
	}
	t.Logf("%d reads alongside %d writes", reads.Load(), writes)
}

// BenchmarkGetUnderWriter measures Get while another goroutine updates
// records as fast as it can: "single-connection" is the store before the
// read pool (reads queue behind writes on one connection), "read-pool" is
// the store as it is.
func BenchmarkGetUnderWriter(b *testing.B) {
	for _, bc := range []struct {
		name    string
		readers int
	}{
		{"single-connection", 0},
		{"read-pool", readPoolSize()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := open(ctx, b.TempDir(), migrations, bc.readers)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			for _, name := range []string{"read", "written"} {
				if err := s.Create(ctx, Record{Kind: "endpoint", Name: name, Created: now, Modified: now, Body: []byte(`{"EndpointName":"x"}`)}); err != nil {
					b.Fatal(err)
				}
			}
			stop := make(chan struct{})
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.Update(ctx, "endpoint", "written", func(r *Record) error {
						r.Modified = time.Now()
						return nil
					}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctx, "endpoint", "read"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			close(stop)
			<-writerDone
		})
	}
}
