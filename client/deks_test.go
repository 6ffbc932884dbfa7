package client_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/envelope"
)

// TestDEKs: a batch delivers the same DEKs as one delivery each, in the
// order asked, refuses the keys it cannot deliver item by item, and records
// one audit entry per key.
func TestDEKs(t *testing.T) {
	s, app := dekServer(t)
	op := s.client(t, s.Operator)
	s.Clock.Add(24 * time.Hour) // the rate limit of a production tenant
	if k, err := op.GenerateKey(ctx, "acme", "data"); err != nil || k.Version != 2 {
		t.Fatalf("GenerateKey(acme, data) = %+v, %v, want version 2", k, err)
	}
	keys := []api.DEKKey{{Version: 0}, {Type: "data", Version: 1}, {Type: "analytics"}, {Type: "data", Version: 99}, {Type: "event_bus"}, {}}
	for _, kem := range []uint16{client.KEMX25519, client.KEMMLKEM768X25519} {
		res, err := app.DEKs(ctx, "acme", kem, keys...)
		if err != nil || len(res) != len(keys) {
			t.Fatalf("DEKs(%#04x) = %d results, %v", kem, len(res), err)
		}
		for i, want := range []struct {
			typ     string
			version uint32
			code    string
		}{{"data", 2, ""}, {"data", 1, ""}, {"analytics", 1, ""}, {"", 0, api.CodeNotFound}, {"", 0, api.CodeNoActiveKey}, {"data", 2, ""}} {
			r := res[i]
			if want.code != "" {
				if r.Error == nil || r.Error.Code != want.code {
					t.Errorf("DEKs(%#04x)[%d].Error = %+v, want %s", kem, i, r.Error, want.code)
				}
				if _, err := r.DEK.Encrypt([]byte("x"), nil); !errors.Is(err, client.ErrDestroyed) {
					t.Errorf("DEKs(%#04x)[%d] refused, yet its DEK encrypts: %v", kem, i, err)
				}
				continue
			}
			if r.Error != nil || r.DEK.Type() != want.typ || r.DEK.Version() != want.version {
				t.Fatalf("DEKs(%#04x)[%d] = %s/%d, %+v, want %s/%d", kem, i, r.DEK.Type(), r.DEK.Version(), r.Error, want.typ, want.version)
			}
			one, err := app.DEK(ctx, "acme", want.typ, want.version, kem)
			if err != nil || !bytes.Equal(one.Bytes(), r.DEK.Bytes()) {
				t.Errorf("DEKs(%#04x)[%d] is not the DEK that DEK delivers (%v)", kem, i, err)
			}
			one.Destroy()
			ct, err := r.DEK.Encrypt([]byte("card"), map[string]string{"i": "1"})
			if err != nil {
				t.Fatal(err)
			}
			dec, err := app.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: ct, Context: map[string]string{"i": "1"}})
			if err != nil || dec[0].Error != nil || string(dec[0].Plaintext) != "card" {
				t.Errorf("server Decrypt(DEKs(%#04x)[%d] ciphertext) = %+v, %v", kem, i, dec, err)
			}
			r.DEK.Destroy()
		}
	}

	// One entry per key asked for, refusals included, all in one request.
	list, err := op.Audit(ctx, "acme", client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byRequest := map[string][]string{}
	for _, e := range list.Entries {
		if e.Action == "key.deliver" {
			byRequest[e.Request] = append(byRequest[e.Request], e.Key+" "+e.Outcome+" "+e.Reason)
		}
	}
	want := []string{"data/2 ok ", "data/1 ok ", "analytics/1 ok ", "data/99 refused not_found", "event_bus refused no_active_key", "data/2 ok "}
	batches := 0
	for _, got := range byRequest {
		if len(got) > 1 {
			batches++
			if !slices.Equal(got, want) {
				t.Errorf("a batch's audit entries = %q, want %q", got, want)
			}
		}
	}
	if batches != 2 {
		t.Errorf("%d batches in the audit log, want 2 (one per KEM)", batches)
	}
}

func TestDEKsRefuses(t *testing.T) {
	_, app := dekServer(t)
	var ae *client.Error
	many := make([]api.DEKKey, envelope.MaxBatchDEKs+1)
	for _, tt := range []struct {
		name string
		kem  uint16
		keys []api.DEKKey
		code string
	}{
		{"no key", 0, nil, api.CodeBadRequest},
		{"too many keys", 0, many, api.CodeTooLarge},
		{"an unknown type", 0, []api.DEKKey{{Type: "data"}, {Type: "bogus"}}, api.CodeBadRequest},
	} {
		res, err := app.DEKs(ctx, "acme", tt.kem, tt.keys...)
		if !errors.As(err, &ae) || ae.Code != tt.code || res != nil {
			t.Errorf("DEKs(%s) = %d results, %v, want %s", tt.name, len(res), err, tt.code)
		}
	}
	if _, err := app.DEKs(ctx, "acme", 0x0010, api.DEKKey{}); err == nil {
		t.Error("DEKs(P-256 KEM) error = nil")
	}
	if _, err := app.DEKs(ctx, "nobody", 0, api.DEKKey{}); !errors.As(err, &ae) || ae.Status != 403 && ae.Status != 404 {
		t.Errorf("DEKs(another tenant) = %v, want 403 or 404", err)
	}
}

// A DEKCache prefetches with one batch request, then encrypts from it.
func TestDEKCachePrefetchBatch(t *testing.T) {
	s, app := dekServer(t)
	c, err := client.NewDEKCache(app, client.DEKCacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Prefetch(ctx, "acme", api.DEKKey{}, api.DEKKey{Type: "analytics"}); err != nil {
		t.Fatalf("Prefetch() = %v", err)
	}
	for _, typ := range []string{"data", "analytics"} {
		ct, err := c.Encrypt(ctx, "acme", typ, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if dec, err := app.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: ct}); err != nil || dec[0].Error != nil || dec[0].Type != typ {
			t.Errorf("server Decrypt(%s) = %+v, %v", typ, dec, err)
		}
	}
	list, err := s.client(t, s.Operator).Audit(ctx, "acme", client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	requests := map[string]int{}
	for _, e := range list.Entries {
		if e.Action == "key.deliver" {
			requests[e.Request]++
		}
	}
	if len(requests) != 1 {
		t.Errorf("deliveries in %d requests (%v), want both in one", len(requests), requests)
	}
	for _, n := range requests {
		if n != 2 {
			t.Errorf("%d deliveries, want 2", n)
		}
	}
}
