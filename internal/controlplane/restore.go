package controlplane

import (
	"context"
	"errors"
	"fmt"
)

// Restore brings back every persisted endpoint after a restart: it hands
// each to the reconcile loop, which starts what its desired state says
// (the Deployed config and, for an update in flight, the Pending one from
// its persisted step) and finishes deletions in flight. Endpoints that
// were InService show SystemUpdating until they serve again; Creating and
// Updating ones keep their status.
//
// The instances recorded in the endpoint (Instances) did not outlive the
// berth that started them: the process runtime stops strays at start-up.
// The loop starts new ones, and its first write replaces the record. A
// runtime that can adopt instances across a restart would be asked about
// those IDs here, before the loop starts.
//
// Every stored endpoint is decoded, strictly, before anything starts. If
// one cannot be read, Restore fails naming each such endpoint and the
// decode error, and has started and written nothing, so berth does not
// come up. Failing beats serving the others and skipping it: a skipped
// endpoint would stay listed as InService while nothing serves it, and the
// first status write would re-encode it without the fields this binary
// does not know. Records only stop decoding through a berth upgrade that
// lacks a migration or a hand-edited database; both are fixed offline (run
// the berth that wrote the record, or repair the row), and the record is
// kept untouched for that.
func (s *Service) Restore(ctx context.Context) error {
	recs, err := s.opts.Store.List(ctx, kindEndpoint)
	if err != nil {
		return err
	}
	decoded := make([]EndpointRecord, len(recs))
	var unreadable []error
	for i, rec := range recs {
		if decoded[i], err = decodeStoredEndpoint(rec); err != nil {
			unreadable = append(unreadable, err)
		}
	}
	if len(unreadable) > 0 {
		return fmt.Errorf("cannot read %d stored endpoint(s), so nothing was started or changed; run the berth that wrote them, or repair them in berth.db in the data dir: %w", len(unreadable), errors.Join(unreadable...))
	}
	for i, rec := range recs {
		switch decoded[i].Status {
		case StatusFailed:
			continue
		case StatusInService:
			err := s.changeEndpoint(ctx, rec.Name, func(status string, ep *Endpoint) (string, error) {
				return StatusSystemUpdating, nil
			})
			if err != nil {
				return fmt.Errorf("restore endpoint %q: %w", rec.Name, err)
			}
		}
		s.loop.notify(loopKey(rec.Name))
	}
	return s.restoreJobs(ctx)
}
