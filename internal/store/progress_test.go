package store

import (
	"context"
	"testing"
	"time"
)

// A database at version 1 with resources in it gains the transform
// checkpoint table and keeps its rows.
func TestMigrateToTransformProgress(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := open(ctx, dir, migrations[:1], 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Create(ctx, Record{Kind: "model", Name: "m", Created: now, Modified: now, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := userVersion(t, s.w); v != 2 {
		t.Fatalf("user_version %d, want 2", v)
	}
	if _, err := s.Get(ctx, "model", "m"); err != nil {
		t.Fatalf("row lost by the migration: %v", err)
	}
	for _, o := range []string{"a/1.csv", "a/2.csv", "a/1.csv"} {
		if err := s.MarkObjectDone(ctx, "Job", o); err != nil {
			t.Fatal(err)
		}
	}
	done, err := s.DoneObjects(ctx, "job") // names are case-insensitive
	if err != nil || len(done) != 2 || !done["a/1.csv"] || !done["a/2.csv"] {
		t.Fatalf("DoneObjects = %v, %v", done, err)
	}
	if err := s.ClearProgress(ctx, "JOB"); err != nil {
		t.Fatal(err)
	}
	if done, _ := s.DoneObjects(ctx, "job"); len(done) != 0 {
		t.Fatalf("after ClearProgress: %v", done)
	}
}
