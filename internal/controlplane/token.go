package controlplane

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/store"
)

// List paging is by key, not by offset: a NextToken names the last record
// returned (its sort key and name), and the next page starts after it. A
// page boundary therefore stays put when other records are created or
// deleted between calls, and every record that exists for the whole paging
// is returned exactly once.
//
// The token is opaque to clients and signed (HMAC-SHA256) with a key kept
// in the data dir's state, so a token that was changed, or that another
// berth or another List operation issued, is refused rather than read.

// kindSecret is the store kind of berth's own secrets.
const kindSecret = "berth-secret"

// tokenKeyName names the paging key among the secrets.
const tokenKeyName = "list-token-key"

// pageKey is the position a NextToken carries.
type pageKey struct {
	Version int    `json:"v"`
	Kind    string `json:"k"`
	SortBy  string `json:"s"`
	Order   string `json:"o"`
	Status  string `json:"st,omitempty"`
	Created int64  `json:"c"`
	Name    string `json:"n"`
}

// errBadToken means a NextToken is not one this berth issued for this
// listing.
var errBadToken = errors.New("next token not issued for this listing")

// tokenKey returns the data dir's paging key, creating it on first use.
func (s *Service) tokenKey(ctx context.Context) ([]byte, error) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	if s.tokenSecret != nil {
		return s.tokenSecret, nil
	}
	rec, err := s.opts.Store.Get(ctx, kindSecret, tokenKeyName)
	if errors.Is(err, store.ErrNotFound) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("paging key: %w", err)
		}
		now := time.Now()
		err = s.opts.Store.Create(ctx, store.Record{Kind: kindSecret, Name: tokenKeyName, Created: now, Modified: now, Body: key})
		if err == nil {
			s.tokenSecret = key
			return key, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("store paging key: %w", err)
		}
		rec, err = s.opts.Store.Get(ctx, kindSecret, tokenKeyName)
	}
	if err != nil {
		return nil, fmt.Errorf("read paging key: %w", err)
	}
	if len(rec.Body) < 16 {
		return nil, errors.New("paging key in the state is too short")
	}
	s.tokenSecret = rec.Body
	return rec.Body, nil
}

// encodeToken returns the NextToken for a page that ended with last.
func encodeToken(key []byte, k pageKey) string {
	k.Version = 1
	payload, _ := json.Marshal(k)
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// decodeToken checks a NextToken's signature and that it was issued for a
// listing of kind in the order sortBy/order.
func decodeToken(key []byte, tok, kind, sortBy, order string) (pageKey, error) {
	p, m, ok := strings.Cut(tok, ".")
	if !ok {
		return pageKey{}, errBadToken
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return pageKey{}, errBadToken
	}
	sum, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return pageKey{}, errBadToken
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return pageKey{}, errBadToken
	}
	var k pageKey
	if err := json.Unmarshal(payload, &k); err != nil || k.Version != 1 {
		return pageKey{}, errBadToken
	}
	if k.Kind != kind || k.SortBy != sortBy || k.Order != order {
		return pageKey{}, errBadToken
	}
	return k, nil
}
