package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/store"
)

// TestRestoreKeepsUnreadableEndpoints stores endpoints whose bodies this
// binary cannot read (truncated, a renamed field, trailing data) beside a
// readable one, and restarts the control plane over a real store twice:
// start-up fails naming each of them and the decode error, and every
// record is still there byte for byte.
func TestRestoreKeepsUnreadableEndpoints(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Unix(1700000000, 0)
	recs := []store.Record{
		{Name: "truncated", Status: StatusInService, Body: []byte(`{"EndpointName":"truncated","EndpointConf`)},
		// As if a later berth renamed Deployed: a lenient decode reads
		// it as an endpoint with nothing deployed.
		{Name: "renamed", Status: StatusInService, Body: []byte(`{"EndpointName":"renamed","EndpointConfigName":"c","DeployedSnapshot":{"Config":{"EndpointConfigName":"c"},"Models":{}}}`)},
		{Name: "trailing", Status: StatusInService, Body: []byte(`{"EndpointName":"trailing","EndpointConfigName":"c"}{}`)},
		{Name: "readable", Status: StatusFailed, Body: []byte(`{"EndpointName":"readable","EndpointConfigName":"c","FailureReason":"x"}`)},
	}
	st, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Kind, r.Created, r.Modified = kindEndpoint, now, now
		if err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for restart := 0; restart < 2; restart++ {
		svc := New(Options{Store: st, Now: func() time.Time { return now.Add(time.Hour) }})
		err := svc.Restore(ctx)
		svc.Close(ctx)
		if err == nil {
			t.Fatal("Restore accepted endpoints it cannot read")
		}
		msg := err.Error()
		for _, want := range []string{
			`stored endpoint "truncated": unexpected EOF`,
			`stored endpoint "renamed": json: unknown field "DeployedSnapshot"`,
			`stored endpoint "trailing": data after the JSON value`,
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("restore error does not say %q:\n%s", want, msg)
			}
		}
		if strings.Contains(msg, `"readable"`) {
			t.Errorf("restore error names a readable endpoint: %s", msg)
		}
		for _, want := range recs {
			got, err := st.Get(ctx, kindEndpoint, want.Name)
			if err != nil {
				t.Fatalf("endpoint %s is gone after a failed restore: %v", want.Name, err)
			}
			if string(got.Body) != string(want.Body) || got.Status != want.Status || !got.Modified.Equal(now) {
				t.Errorf("endpoint %s changed: %s %s %v", want.Name, got.Status, got.Body, got.Modified)
			}
		}
		// Restart: a new store over the same file.
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if st, err = store.Open(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
}
