package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 5)
	rec := Record{Kind: "model", Name: "m1", Created: now, Modified: now, Status: "ok", Body: []byte(`{"a":1}`)}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	dup := rec
	dup.Name = "M1"
	if err := s.Create(ctx, dup); !errors.Is(err, ErrExists) {
		t.Fatalf("create of a name differing only in case: got %v, want ErrExists", err)
	}
	if _, err := s.Update(ctx, "model", "m1", func(r *Record) error {
		r.Status = "changed"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := s.Update(ctx, "model", "m1", func(r *Record) error {
		r.Status = "lost"
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("update error: %v", err)
	}
	s.Close()

	// Everything written before Close is there after reopening.
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, "model", "M1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "changed" || string(got.Body) != `{"a":1}` || !got.Created.Equal(now) {
		t.Fatalf("got %+v", got)
	}
	list, err := s.List(ctx, "model")
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := s.Delete(ctx, "model", "m1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "model", "m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Get(ctx, "model", "m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}
