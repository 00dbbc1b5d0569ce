package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/berth-io/berth/internal/store"
)

// decodeStoredEndpoint decodes an endpoint for Restore, strictly: a field
// this binary does not know is an error, as is anything after the JSON
// value. A lenient decode would read a renamed field as missing, and the
// next status write would store the body without it, losing it for good.
func decodeStoredEndpoint(rec store.Record) (EndpointRecord, error) {
	var ep Endpoint
	dec := json.NewDecoder(bytes.NewReader(rec.Body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&ep)
	if err == nil {
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		return EndpointRecord{}, fmt.Errorf("stored endpoint %q: %w", rec.Name, err)
	}
	return EndpointRecord{Endpoint: ep, Status: rec.Status, Created: rec.Created, Modified: rec.Modified}, nil
}
