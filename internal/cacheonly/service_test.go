package cacheonly_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/cacheonly/cacheonlytest"
	"github.com/strongroom-kms/strongroom/internal/derive"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// registered is a tenant of node n with a key service registered for its
// data key, version 1.
type registered struct {
	n   *nodetest.Node
	tn  tenant.Tenant
	ks  *cacheonlytest.Server
	key tenant.Key
	reg tenant.KeyService
}

func (r registered) ref() tenant.KeyRef { return r.key.KeyRef() }

// newNode is a node over st with release 1, its clock at T0+1d.
func newNode(t *testing.T, st *store.Store, o nodetest.Options) *nodetest.Node {
	t.Helper()
	o.Releases = []nodetest.Release{nodetest.Release1}
	if o.Clock == nil {
		o.Clock = nodetest.NewClock(nodetest.T0.Add(24 * time.Hour))
	}
	return nodetest.New(t, st, o)
}

// register makes a tenant and registers a key service (bearer) for its
// data key, after installing the tenant's recipient key in it.
func register(t *testing.T, n *nodetest.Node) registered {
	t.Helper()
	tn := n.Tenant(t, tenant.EnvProduction)
	ks := cacheonlytest.New(t, "data-"+tn.Name)
	creds, err := n.CacheOnly.Credentials(t.Context(), tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	ks.SetRecipient(t, []byte(creds.RecipientKey))
	k, reg, err := n.CacheOnly.Register(t.Context(), nodetest.Rec(tn.ID), request(t, tn, ks))
	if err != nil {
		t.Fatalf("Register() error = %v", err)
	}
	return registered{n: n, tn: tn, ks: ks, key: k, reg: reg}
}

func request(t *testing.T, tn tenant.Tenant, ks *cacheonlytest.Server) cacheonly.Request {
	bearer, err := secret.NewText([]byte(ks.Bearer))
	if err != nil {
		t.Fatal(err)
	}
	return cacheonly.Request{Tenant: tn.ID, Type: tenant.TypeData, URL: ks.URL, KID: ks.KID, CA: ks.CA(),
		Auth: tenant.AuthBearer, Bearer: bearer}
}

// dek asks node n for the DEK of r's key (destroying it).
func (r registered) dek(t *testing.T, n *nodetest.Node) error {
	t.Helper()
	d, _, err := n.Data.DEK(t.Context(), nodetest.Rec(r.tn.ID), r.ref())
	if err == nil {
		d.Destroy()
	}
	return err
}

// fetches asserts how many fetches the key service received so far.
func (r registered) fetches(t *testing.T, want int64, when string) {
	t.Helper()
	if got := r.ks.Fetches.Load(); got != want {
		t.Fatalf("%s: the key service had %d fetches, want %d", when, got, want)
	}
}

// entries are the audit entries of action about the tenant.
func entries(t *testing.T, st *store.Store, tenantID string, action audit.Action) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := st.AuditEntries(t.Context(), store.AuditFilter{Tenant: tenantID}, func(e audit.Entry) error {
		if e.Action == action {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRegister: a registration is refused, storing nothing, when the key
// service does not answer its test fetch correctly; accepted, it is a new
// active key version of source cache-only (the recipient key pair in the
// regional HSM, the bearer secret stored only wrapped), under the rotation
// limits; each fetch is in the audit log. On both engines.
func TestRegister(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			n := newNode(t, st, nodetest.Options{})
			tn := n.Tenant(t, tenant.EnvProduction)
			ks := cacheonlytest.New(t, "acme-data-2026")

			// The key service does not know the recipient key yet.
			_, _, err := n.CacheOnly.Register(t.Context(), nodetest.Rec(tn.ID), request(t, tn, ks))
			nodetest.WantErr(t, "Register(before the recipient key is installed)", err, cacheonly.ErrRegistrationRefused)
			creds, err := n.CacheOnly.Credentials(t.Context(), tn.ID)
			if err != nil {
				t.Fatal(err)
			}
			h := nodetest.World(t).Regions[nodetest.Region].HSM
			if _, err := h.EncryptionKey(t.Context(), "strongroom-cok-"+tn.ID); err != nil {
				t.Errorf("the recipient key pair strongroom-cok-%s is not in the HSM: %v", tn.ID, err)
			}
			ks.SetRecipient(t, []byte(creds.RecipientKey))
			// An answer that fails a check: refused with its reason.
			ks.Set(cacheonlytest.Behaviour{KID: "other"})
			_, _, err = n.CacheOnly.Register(t.Context(), nodetest.Rec(tn.ID), request(t, tn, ks))
			nodetest.WantErr(t, "Register(wrong kid)", err, cacheonly.ErrRegistrationRefused)
			if err == nil || !strings.Contains(err.Error(), "wrong_kid") {
				t.Errorf("Register(wrong kid) error = %v, want it to name wrong_kid", err)
			}
			if ks, _ := n.Keys.Keys(t.Context(), tn.ID, ""); len(ks) != 0 {
				t.Fatalf("refused registrations stored %d keys", len(ks))
			}
			if kss, _ := n.CacheOnly.List(t.Context(), tn.ID); len(kss) != 0 {
				t.Fatalf("refused registrations stored %d registrations", len(kss))
			}
			ks.Set(cacheonlytest.Behaviour{})

			k, reg, err := n.CacheOnly.Register(t.Context(), nodetest.Rec(tn.ID), request(t, tn, ks))
			if err != nil {
				t.Fatalf("Register() error = %v", err)
			}
			if k.Source != tenant.SourceCacheOnly || k.Version != 1 || k.State != tenant.StateActive || k.Wrapped != nil {
				t.Errorf("Register() key = %+v", k)
			}
			stored, err := st.KeyService(t.Context(), k.KeyRef())
			if err != nil {
				t.Fatal(err)
			}
			if len(stored.Bearer) == 0 || bytes.Contains(stored.Bearer, []byte(ks.Bearer)) || reg.Bearer != nil {
				t.Errorf("the stored bearer secret is not (only) wrapped")
			}
			// The rotation limits of the tenant's environment apply.
			_, _, err = n.CacheOnly.Register(t.Context(), nodetest.Rec(tn.ID), request(t, tn, ks))
			var rl *store.RateLimitedError
			if !errors.As(err, &rl) {
				t.Errorf("Register() again at once error = %v, want *store.RateLimitedError", err)
			}

			got := map[string]int{}
			for _, e := range entries(t, st, tn.ID, cacheonly.ActionFetch) {
				got[string(e.Outcome)+" "+e.Reason+" "+e.Key]++
			}
			for _, want := range []string{"error http_status data", "refused wrong_kid data", "ok  data"} {
				if got[want] == 0 {
					t.Errorf("no key.fetch entry %q (have %v)", want, got)
				}
			}
		})
	}
}

// TestDEK: a cache-only key's DEK is derived from the fetched material as
// from any tenant secret (PBKDF2 with its release's seed and salt), and
// encrypts and decrypts.
func TestDEK(t *testing.T) {
	n := newNode(t, nodetest.SQLite(t), nodetest.Options{})
	r := register(t, n)
	d, k, err := n.Data.DEK(t.Context(), nil, r.ref())
	if err != nil {
		t.Fatalf("DEK() error = %v", err)
	}
	defer d.Destroy()
	ts, _ := secret.New(r.ks.Material())
	m, err := n.Ring.Meta(k.Release)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := n.Ring.Secret(t.Context(), m.ID, release.SecretKDFSeed)
	salt, _ := n.Ring.Secret(t.Context(), m.ID, release.SecretKDFSalt)
	want, err := derive.DEK(derive.ModePBKDF2, derive.Input{TenantID: r.tn.ID, KeyType: k.Type, Version: k.Version, TenantSecret: ts,
		Release: m.ID, Iterations: m.Iterations, Seed: seed, Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Equal(want) {
		t.Errorf("DEK() is not the PBKDF2 derivation of the key service's material")
	}
	ct, _, err := n.Data.Encrypt(t.Context(), nodetest.Rec(r.tn.ID), r.tn.ID, tenant.TypeData, []byte("hello"), map[string]string{"f": "1"})
	if err != nil {
		t.Fatal(err)
	}
	pt, _, err := n.Data.Decrypt(t.Context(), nodetest.Rec(r.tn.ID), r.tn.ID, ct, map[string]string{"f": "1"})
	if err != nil || string(pt) != "hello" {
		t.Errorf("Decrypt() = %q, %v", pt, err)
	}
}

// TestUnavailable: after a failed fetch the key is unavailable
// (tenant.ErrKeyUnavailable) and the key service is not asked again until
// the schedule's next retry; the node retries by itself when one is due;
// a success makes the key available at once.
func TestUnavailable(t *testing.T) {
	n := newNode(t, nodetest.SQLite(t), nodetest.Options{})
	r := register(t, n)
	r.fetches(t, 1, "after the registration")
	r.ks.Set(cacheonlytest.Behaviour{Status: http.StatusInternalServerError})
	n.Data.Evict(r.ref())

	nodetest.WantErr(t, "DEK() with the service failing", r.dek(t, n), tenant.ErrKeyUnavailable)
	r.fetches(t, 2, "the first failure")
	for _, step := range []time.Duration{time.Second, 29 * time.Second, 29 * time.Second} {
		n.Clock.Add(step)
		nodetest.WantErr(t, "DEK() between retries", r.dek(t, n), tenant.ErrKeyUnavailable)
		r.fetches(t, 2, "between retries")
	}
	n.Clock.Add(time.Second) // t0+1m: a retry is due; a request makes it
	nodetest.WantErr(t, "DEK() at the first retry", r.dek(t, n), tenant.ErrKeyUnavailable)
	r.fetches(t, 3, "the first retry")
	if ks, _ := n.CacheOnly.List(t.Context(), r.tn.ID); len(ks) != 1 || n.CacheOnly.Availability(ks[0]) != cacheonly.Unavailable {
		t.Errorf("Availability() = %v, want unavailable", ks)
	}

	// The node retries by itself when the retry is due, not before.
	r.ks.Set(cacheonlytest.Behaviour{})
	n.Clock.Add(59 * time.Second)
	n.Data.RetryUnavailable(t.Context())
	r.fetches(t, 3, "a background retry before it is due")
	n.Clock.Add(time.Second)
	n.Data.RetryUnavailable(t.Context())
	r.fetches(t, 4, "the background retry at t0+2m")
	if err := r.dek(t, n); err != nil {
		t.Fatalf("DEK() after the successful retry error = %v", err)
	}
	r.fetches(t, 4, "a DEK after the retry (from the cache)")
	if ks, _ := n.CacheOnly.List(t.Context(), r.tn.ID); n.CacheOnly.Availability(ks[0]) != cacheonly.Available {
		t.Errorf("Availability() after the retry = %s, want available", n.CacheOnly.Availability(ks[0]))
	}

	// A slow service is unavailable too (the node's fetch timeout).
	slow := newNode(t, nodetest.SQLite(t), nodetest.Options{CacheOnly: cacheonly.Options{Fetcher: &cacheonly.Fetcher{Timeout: 200 * time.Millisecond}}})
	rs := register(t, slow)
	rs.ks.Set(cacheonlytest.Behaviour{Delay: 5 * time.Second})
	slow.Data.Evict(rs.ref())
	nodetest.WantErr(t, "DEK() from a slow service", rs.dek(t, slow), tenant.ErrKeyUnavailable)
	var timeouts int
	for _, e := range entries(t, slow.Store.(*store.Store), rs.tn.ID, cacheonly.ActionFetch) {
		if e.Outcome == audit.OutcomeRefused && e.Reason == "timeout" {
			timeouts++
		}
	}
	if timeouts != 1 {
		t.Errorf("%d key.fetch entries refused for timeout, want 1", timeouts)
	}
}

// TestMaxAge: a cache-only key's DEK stays cached at most
// min(cache TTL, cache_only.max_age), 72 h by default, and is fetched again
// after.
func TestMaxAge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxAge time.Duration
		lives  time.Duration
	}{
		{"default 72h", 0, 72 * time.Hour},
		{"configured 1h", time.Hour, time.Hour},
		{"never over 72h", 100 * time.Hour, 72 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, nodetest.SQLite(t), nodetest.Options{CacheOnly: cacheonly.Options{MaxAge: tc.maxAge}})
			r := register(t, n)
			if err := r.dek(t, n); err != nil {
				t.Fatal(err)
			}
			r.fetches(t, 2, "the first DEK")
			n.Clock.Add(tc.lives - time.Second)
			if err := r.dek(t, n); err != nil {
				t.Fatal(err)
			}
			r.fetches(t, 2, "a DEK within the max age")
			n.Clock.Add(time.Second)
			if err := r.dek(t, n); err != nil {
				t.Fatal(err)
			}
			r.fetches(t, 3, "a DEK at the max age")
		})
	}
}

// TestRevocationAcrossNodes: two nodes on one PostgreSQL database. A 410
// marks the key revoked in the store (audited once) and both nodes evict
// it (the destroy notification) and answer tenant.ErrKeyRevoked; each asks
// the key service again at most once a minute; the key service's answer
// with the key lifts the revocation for both.
func TestRevocationAcrossNodes(t *testing.T) {
	dsn := nodetest.PostgresDSN(t)
	stA, stB := nodetest.Postgres(t, dsn), nodetest.Postgres(t, dsn)
	a := newNode(t, stA, nodetest.Options{})
	b := a.Peer(t, stB)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, n := range []*nodetest.Node{a, b} {
		if err := n.Data.EvictDestroyed(ctx, time.Hour, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := register(t, a)
	for _, n := range []*nodetest.Node{a, b} {
		if err := r.dek(t, n); err != nil {
			t.Fatal(err)
		}
	}
	r.fetches(t, 3, "the registration and a DEK on each node")
	cached := func(n *nodetest.Node) bool {
		d, ok := n.Cache.Get("dek/" + r.ref().String())
		if ok {
			d.Destroy()
		}
		return ok
	}
	if !cached(b) {
		t.Fatal("node b has not cached the DEK")
	}

	// The key service revokes; node a hears it on its next fetch.
	r.ks.Set(cacheonlytest.Behaviour{Status: http.StatusGone})
	a.Data.Evict(r.ref())
	nodetest.WantErr(t, "DEK() on a after the 410", r.dek(t, a), tenant.ErrKeyRevoked)
	r.fetches(t, 4, "a's fetch")
	if ks, _ := stA.KeyService(t.Context(), r.ref()); ks.Revoked.IsZero() {
		t.Fatal("the revocation is not in the store")
	}
	if n := len(entries(t, stA, r.tn.ID, cacheonly.ActionRevokeDetected)); n != 1 {
		t.Errorf("%d key.revoke-detected entries, want 1", n)
	}
	// b evicts on the notification.
	deadline := time.Now().Add(10 * time.Second)
	for cached(b) {
		if time.Now().After(deadline) {
			t.Fatal("node b still caches the revoked key's DEK 10 s after the revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	nodetest.WantErr(t, "DEK() on b after the revocation", r.dek(t, b), tenant.ErrKeyRevoked)
	r.fetches(t, 5, "b asks once")
	for _, n := range []*nodetest.Node{a, b} {
		nodetest.WantErr(t, "DEK() within the minute", r.dek(t, n), tenant.ErrKeyRevoked)
	}
	r.fetches(t, 5, "no node asks again within a minute")
	if n := len(entries(t, stA, r.tn.ID, cacheonly.ActionRevokeDetected)); n != 1 {
		t.Errorf("%d key.revoke-detected entries after b's 410, want 1", n)
	}

	// The key service gives the key again: a asks after a minute and lifts
	// the revocation; b then fetches as usual.
	r.ks.Set(cacheonlytest.Behaviour{})
	a.Clock.Add(59 * time.Second)
	nodetest.WantErr(t, "DEK() on a at 59 s", r.dek(t, a), tenant.ErrKeyRevoked)
	r.fetches(t, 5, "a at 59 s")
	a.Clock.Add(time.Second)
	if err := r.dek(t, a); err != nil {
		t.Fatalf("DEK() on a a minute later error = %v", err)
	}
	if ks, _ := stB.KeyService(t.Context(), r.ref()); !ks.Revoked.IsZero() {
		t.Fatal("the revocation was not lifted in the store")
	}
	if n := len(entries(t, stA, r.tn.ID, cacheonly.ActionRevokeLifted)); n != 1 {
		t.Errorf("%d key.revoke-lifted entries, want 1", n)
	}
	if err := r.dek(t, b); err != nil {
		t.Fatalf("DEK() on b after the lift error = %v", err)
	}
}
