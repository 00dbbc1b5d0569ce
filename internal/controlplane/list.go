package controlplane

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/store"
)

// ListQuery holds the filters, order and page of a List call.
type ListQuery struct {
	NameContains           string
	StatusEquals           string
	CreationTimeBefore     *time.Time
	CreationTimeAfter      *time.Time
	LastModifiedTimeBefore *time.Time
	LastModifiedTimeAfter  *time.Time
	// SortBy is Name, CreationTime (the default) or Status.
	SortBy string
	// SortOrder is Ascending or Descending (the default).
	SortOrder  string
	MaxResults *int32
	NextToken  string
}

// listSpec says which filters and sort keys a kind supports.
type listSpec struct {
	kind     string
	sortKeys []string
	statuses []string
}

// list filters, sorts and pages the records of a kind.
func (s *Service) list(ctx context.Context, spec listSpec, q ListQuery) ([]store.Record, string, error) {
	var v validator
	if err := validateNameContains(q.NameContains); err != nil {
		return nil, "", err
	}
	v.enum("sortBy", q.SortBy, spec.sortKeys...)
	v.enum("sortOrder", q.SortOrder, "Ascending", "Descending")
	if spec.statuses != nil {
		v.enum("statusEquals", q.StatusEquals, spec.statuses...)
	}
	limit := 10
	if q.MaxResults != nil {
		if *q.MaxResults < 1 || *q.MaxResults > 100 {
			v.add("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", *q.MaxResults)
		}
		limit = int(*q.MaxResults)
	}
	sortBy, order := q.SortBy, q.SortOrder
	if sortBy == "" {
		sortBy = "CreationTime"
	}
	if order == "" {
		order = "Descending"
	}
	if err := v.err(); err != nil {
		return nil, "", err
	}
	key, err := s.tokenKey(ctx)
	if err != nil {
		return nil, "", err
	}
	var after *store.Record
	if q.NextToken != "" {
		k, err := decodeToken(key, q.NextToken, spec.kind, sortBy, order)
		if err != nil {
			v.add("Value at 'nextToken' failed to satisfy constraint: the token is not one berth issued for this listing; pass the NextToken of the previous response unchanged, with the same SortBy and SortOrder")
			return nil, "", v.err()
		}
		after = &store.Record{Name: k.Name, Status: k.Status, Created: time.Unix(0, k.Created)}
	}

	recs, err := s.opts.Store.List(ctx, spec.kind)
	if err != nil {
		return nil, "", err
	}
	needle := strings.ToLower(q.NameContains)
	kept := recs[:0]
	for _, r := range recs {
		switch {
		case needle != "" && !strings.Contains(strings.ToLower(r.Name), needle),
			q.StatusEquals != "" && r.Status != q.StatusEquals,
			q.CreationTimeBefore != nil && !r.Created.Before(*q.CreationTimeBefore),
			q.CreationTimeAfter != nil && !r.Created.After(*q.CreationTimeAfter),
			q.LastModifiedTimeBefore != nil && !r.Modified.Before(*q.LastModifiedTimeBefore),
			q.LastModifiedTimeAfter != nil && !r.Modified.After(*q.LastModifiedTimeAfter):
			continue
		}
		kept = append(kept, r)
	}
	// cmp orders by the sort key, then creation time, then name: the name
	// is unique, so the order is total and a record's position is a key.
	cmp := func(a, b store.Record) int {
		c := 0
		switch sortBy {
		case "Name":
			c = strings.Compare(a.Name, b.Name)
		case "Status":
			c = strings.Compare(a.Status, b.Status)
		}
		if c == 0 {
			c = a.Created.Compare(b.Created)
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		if order == "Descending" {
			c = -c
		}
		return c
	}
	slices.SortFunc(kept, cmp)
	page := kept
	if after != nil {
		i, _ := slices.BinarySearchFunc(kept, *after, cmp)
		for i < len(kept) && cmp(kept[i], *after) <= 0 {
			i++
		}
		page = kept[i:]
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		last := page[len(page)-1]
		next = encodeToken(key, pageKey{Kind: spec.kind, SortBy: sortBy, Order: order, Status: last.Status, Created: last.Created.UnixNano(), Name: last.Name})
	}
	return page, next, nil
}

var (
	modelList          = listSpec{kind: kindModel, sortKeys: []string{"Name", "CreationTime"}}
	endpointConfigList = listSpec{kind: kindEndpointConfig, sortKeys: []string{"Name", "CreationTime"}}
	endpointList       = listSpec{kind: kindEndpoint, sortKeys: []string{"Name", "CreationTime", "Status"},
		statuses: []string{"OutOfService", StatusCreating, StatusUpdating, StatusSystemUpdating, StatusRollingBack, StatusInService, StatusDeleting, StatusFailed}}
)

// ListModels lists models.
func (s *Service) ListModels(ctx context.Context, q ListQuery) ([]ModelRecord, string, error) {
	q.StatusEquals, q.LastModifiedTimeAfter, q.LastModifiedTimeBefore = "", nil, nil
	recs, next, err := s.list(ctx, modelList, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]ModelRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, ModelRecord{Model: Model{ModelName: r.Name}, Created: r.Created})
	}
	return out, next, nil
}

// ListEndpointConfigs lists endpoint configs.
func (s *Service) ListEndpointConfigs(ctx context.Context, q ListQuery) ([]EndpointConfigRecord, string, error) {
	q.StatusEquals, q.LastModifiedTimeAfter, q.LastModifiedTimeBefore = "", nil, nil
	recs, next, err := s.list(ctx, endpointConfigList, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]EndpointConfigRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, EndpointConfigRecord{EndpointConfig: EndpointConfig{EndpointConfigName: r.Name}, Created: r.Created})
	}
	return out, next, nil
}

// ListEndpoints lists endpoints.
func (s *Service) ListEndpoints(ctx context.Context, q ListQuery) ([]EndpointRecord, string, error) {
	recs, next, err := s.list(ctx, endpointList, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]EndpointRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, EndpointRecord{Endpoint: Endpoint{EndpointName: r.Name}, Status: r.Status, Created: r.Created, Modified: r.Modified})
	}
	return out, next, nil
}
