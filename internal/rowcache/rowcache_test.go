package rowcache_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/rowcache"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var ctx = context.Background()

func TestMain(m *testing.M) { nodetest.Main(m) }

// counted is a real store that counts the reads the cache makes of it, and
// can stop a token read after it has read the store.
type counted struct {
	*store.Store
	reads atomic.Int32
	pause atomic.Pointer[func()]
}

func (c *counted) TokenByHash(ctx context.Context, h [32]byte) (auth.Token, bool, error) {
	c.reads.Add(1)
	tok, found, err := c.Store.TokenByHash(ctx, h)
	if f := c.pause.Swap(nil); f != nil {
		(*f)()
	}
	return tok, found, err
}

func (c *counted) TenantByName(ctx context.Context, name string) (tenant.Tenant, error) {
	c.reads.Add(1)
	return c.Store.TenantByName(ctx, name)
}

func (c *counted) TenantByID(ctx context.Context, id string) (tenant.Tenant, error) {
	c.reads.Add(1)
	return c.Store.TenantByID(ctx, id)
}

func (c *counted) Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error) {
	c.reads.Add(1)
	return c.Store.Key(ctx, ref)
}

func (c *counted) ActiveKey(ctx context.Context, tenantID, typ string) (tenant.Key, error) {
	c.reads.Add(1)
	return c.Store.ActiveKey(ctx, tenantID, typ)
}

// env is a node over a SQLite store, with a tenant, an active data key and
// an app token, and a row cache over the same store that watches it.
type env struct {
	node  *nodetest.Node
	src   *counted
	rows  *rowcache.Cache
	tn    tenant.Tenant
	key   tenant.Key
	tok   auth.Token
	token string // its secret
}

func newEnv(t *testing.T, o rowcache.Options) *env {
	t.Helper()
	st := nodetest.SQLite(t)
	n := nodetest.New(t, st, nodetest.Options{Policy: nodetest.ShortPolicy(time.Minute, 50), Releases: []nodetest.Release{nodetest.Release1}})
	e := &env{node: n, src: &counted{Store: st}}
	if o.Now == nil {
		o.Now = n.Clock.Now
	}
	e.rows = rowcache.New(e.src, o)
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := e.rows.Watch(wctx, st); err != nil {
		t.Fatal(err)
	}
	e.tn = n.Tenant(t, tenant.EnvProduction)
	e.key = n.Generate(t, e.tn.ID, tenant.TypeData)
	var err error
	e.token, e.tok, err = n.Tokens.Create(ctx, nodetest.Rec(e.tn.ID), auth.Identity{}, "app", e.tn.ID, "app", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reads runs fn and returns how many store reads it made.
func (e *env) reads(t *testing.T, fn func() error) int32 {
	t.Helper()
	before := e.src.reads.Load()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	return e.src.reads.Load() - before
}

// lookups reads each kind of row once.
func (e *env) lookups() error {
	if _, found, err := e.rows.TokenByHash(ctx, e.tok.Hash); err != nil || !found {
		return fmt.Errorf("TokenByHash() = %v, %v", found, err)
	}
	if _, err := e.rows.TenantByName(ctx, e.tn.Name); err != nil {
		return err
	}
	if _, err := e.rows.TenantByID(ctx, e.tn.ID); err != nil {
		return err
	}
	if _, err := e.rows.ActiveKey(ctx, e.tn.ID, tenant.TypeData); err != nil {
		return err
	}
	_, err := e.rows.Key(ctx, e.key.KeyRef())
	return err
}

// TestWarmReadsNoStore: the second lookup of each row is answered from the
// copy, until the copy is MaxAge old.
func TestWarmReadsNoStore(t *testing.T) {
	e := newEnv(t, rowcache.Options{})
	if n := e.reads(t, e.lookups); n != 5 {
		t.Errorf("cold lookups read the store %d times, want 5", n)
	}
	for range 3 {
		if n := e.reads(t, e.lookups); n != 0 {
			t.Errorf("warm lookups read the store %d times, want 0", n)
		}
	}
	e.node.Clock.Add(rowcache.DefaultMaxAge - time.Millisecond)
	if n := e.reads(t, e.lookups); n != 0 {
		t.Errorf("lookups just under MaxAge read the store %d times, want 0", n)
	}
	e.node.Clock.Add(time.Millisecond)
	if n := e.reads(t, e.lookups); n != 5 {
		t.Errorf("lookups at MaxAge read the store %d times, want 5 (each copy read again)", n)
	}
	// A clock that went back reads again too.
	e.node.Clock.Add(-time.Minute)
	if n := e.reads(t, e.lookups); n != 5 {
		t.Errorf("lookups after the clock went back read the store %d times, want 5", n)
	}
	if st := e.rows.Stats(); st.Hits == 0 || st.Misses == 0 {
		t.Errorf("Stats() = %+v, want hits and misses", st)
	}
}

// TestMissesNotKept: rows that are not found, and errors, are asked of the
// store every time.
func TestMissesNotKept(t *testing.T) {
	e := newEnv(t, rowcache.Options{})
	other := e.node.Tenant(t, tenant.EnvSandbox) // no keys
	for range 2 {
		n := e.reads(t, func() error {
			if _, found, err := e.rows.TokenByHash(ctx, [32]byte{1}); err != nil || found {
				return fmt.Errorf("TokenByHash(unknown) = %v, %v", found, err)
			}
			if _, err := e.rows.TenantByName(ctx, "nobody"); err == nil {
				return fmt.Errorf("TenantByName(unknown) succeeded")
			}
			if _, err := e.rows.ActiveKey(ctx, other.ID, tenant.TypeData); err == nil {
				return fmt.Errorf("ActiveKey(none) succeeded")
			}
			if _, err := e.rows.Key(ctx, tenant.KeyRef{Tenant: e.tn.ID, Type: tenant.TypeData, Version: 9}); err == nil {
				return fmt.Errorf("Key(unknown version) succeeded")
			}
			return nil
		})
		if n != 4 {
			t.Errorf("misses read the store %d times, want 4", n)
		}
	}
	// A row created since is found at once.
	tn, err := e.node.Tenants.Create(ctx, nodetest.Rec(""), "nobody", tenant.EnvSandbox)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.rows.TenantByName(ctx, "nobody"); err != nil || got.ID != tn.ID {
		t.Errorf("TenantByName(created since) = %+v, %v", got, err)
	}
}

// TestChangesDropCopies: each change made through the store is seen by the
// next lookup, without waiting.
func TestChangesDropCopies(t *testing.T) {
	e := newEnv(t, rowcache.Options{})
	if err := e.lookups(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.node.Tokens.Revoke(ctx, nodetest.Rec(e.tn.ID), auth.Identity{}, e.tok.ID); err != nil {
		t.Fatal(err)
	}
	if tok, _, err := e.rows.TokenByHash(ctx, e.tok.Hash); err != nil || tok.Revoked.IsZero() {
		t.Errorf("TokenByHash(revoked) = %+v, %v: not revoked", tok, err)
	}

	if _, err := e.node.Tenants.SetDerivationOptOut(ctx, nodetest.Rec(""), e.tn.ID, !e.tn.DerivationOptOut); err != nil {
		t.Fatal(err)
	}
	for what, read := range map[string]func() (tenant.Tenant, error){
		"TenantByName": func() (tenant.Tenant, error) { return e.rows.TenantByName(ctx, e.tn.Name) },
		"TenantByID":   func() (tenant.Tenant, error) { return e.rows.TenantByID(ctx, e.tn.ID) },
	} {
		if got, err := read(); err != nil || got.DerivationOptOut == e.tn.DerivationOptOut {
			t.Errorf("%s after the setting changed = %+v, %v: the old setting", what, got, err)
		}
	}

	e.node.Clock.Add(time.Minute)
	v2 := e.node.Generate(t, e.tn.ID, tenant.TypeData)
	if got, err := e.rows.ActiveKey(ctx, e.tn.ID, tenant.TypeData); err != nil || got.Version != v2.Version {
		t.Errorf("ActiveKey() after a rotation = v%d, %v; want v%d", got.Version, err, v2.Version)
	}
	if got, err := e.rows.Key(ctx, e.key.KeyRef()); err != nil || got.State != tenant.StateArchived {
		t.Errorf("Key(v1) after a rotation = %s, %v; want archived", got.State, err)
	}
	if _, err := e.node.Keys.Destroy(ctx, nodetest.Rec(e.tn.ID), e.key.KeyRef()); err != nil {
		t.Fatal(err)
	}
	if got, err := e.rows.Key(ctx, e.key.KeyRef()); err != nil || got.State != tenant.StateDestroyed || got.Wrapped != nil {
		t.Errorf("Key(v1) after its destruction = %s, %v; want destroyed, without material", got.State, err)
	}
	if st := e.rows.Stats(); st.Invalidations == 0 {
		t.Errorf("Stats() = %+v, want invalidations", st)
	}
}

// TestFillRacingChange: a row read before a change, and kept after it,
// would be stale: the change's generation makes the fill drop it.
func TestFillRacingChange(t *testing.T) {
	e := newEnv(t, rowcache.Options{})
	pause := func() {
		// The row is read; the token is revoked before it is kept.
		if _, _, err := e.node.Tokens.Revoke(ctx, nodetest.Rec(e.tn.ID), auth.Identity{}, e.tok.ID); err != nil {
			t.Error(err)
		}
	}
	e.src.pause.Store(&pause)
	if tok, _, err := e.rows.TokenByHash(ctx, e.tok.Hash); err != nil || !tok.Revoked.IsZero() {
		t.Fatalf("TokenByHash() racing a revocation = %+v, %v: want the row as read, before it", tok, err)
	}
	if tok, _, err := e.rows.TokenByHash(ctx, e.tok.Hash); err != nil || tok.Revoked.IsZero() {
		t.Errorf("TokenByHash() after the race = %+v, %v: the stale row was kept", tok, err)
	}
}

// TestTouched: a use recorded updates the copy, so that the next request
// of the minute does not record it again.
func TestTouched(t *testing.T) {
	e := newEnv(t, rowcache.Options{})
	if _, _, err := e.rows.TokenByHash(ctx, e.tok.Hash); err != nil {
		t.Fatal(err)
	}
	at := e.node.Clock.Now().Truncate(time.Minute)
	e.rows.Touched(e.tok.ID, at)
	e.rows.Touched(e.tok.ID, at.Add(-time.Hour)) // never backwards
	e.rows.Touched(tenant.NewID(), at)           // another token: nothing
	if tok, _, err := e.rows.TokenByHash(ctx, e.tok.Hash); err != nil || !tok.LastUsed.Equal(at) {
		t.Errorf("TokenByHash() after Touched = last used %v, %v; want %v", tok.LastUsed, err, at)
	}
}

// TestBounded: each map keeps at most MaxEntries rows.
func TestBounded(t *testing.T) {
	const max = 16
	e := newEnv(t, rowcache.Options{MaxEntries: max})
	for i := range 5 * max {
		_, tok, err := e.node.Tokens.Create(ctx, nodetest.Rec(e.tn.ID), auth.Identity{}, "app", e.tn.ID, fmt.Sprint("app", i), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, found, err := e.rows.TokenByHash(ctx, tok.Hash); err != nil || !found {
			t.Fatalf("TokenByHash() = %v, %v", found, err)
		}
		tn := e.node.Tenant(t, tenant.EnvSandbox)
		if _, err := e.rows.TenantByID(ctx, tn.ID); err != nil {
			t.Fatal(err)
		}
		if tokens, tenants, _ := e.rows.Len(); tokens > max || tenants > max {
			t.Fatalf("Len() = %d tokens, %d tenants; want at most %d each", tokens, tenants, max)
		}
	}
	// Key rows, counted across series: the versions and active keys of
	// many tenants.
	for i := range 3 * max {
		tn := e.node.Tenant(t, tenant.EnvSandbox)
		k := e.node.Generate(t, tn.ID, tenant.TypeData)
		if _, err := e.rows.Key(ctx, k.KeyRef()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rows.ActiveKey(ctx, tn.ID, tenant.TypeData); err != nil {
			t.Fatal(err)
		}
		if _, _, keys := e.rows.Len(); keys > max {
			t.Fatalf("after %d tenants' keys, Len() = %d key rows, want at most %d", i+1, keys, max)
		}
	}
}

// TestCopiesOwned: a caller that changes a key row it was given changes
// nobody else's.
func TestCopiesOwned(t *testing.T) {
	e := newEnv(t, rowcache.Options{})
	k, err := e.rows.Key(ctx, e.key.KeyRef())
	if err != nil {
		t.Fatal(err)
	}
	want := string(k.Wrapped)
	clear(k.Wrapped)
	again, err := e.rows.Key(ctx, e.key.KeyRef())
	if err != nil || string(again.Wrapped) != want {
		t.Errorf("Key() after a caller cleared its copy = %x, %v; want the row", again.Wrapped, err)
	}
}
