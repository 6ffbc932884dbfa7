package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance test of WatchChanges: every write that changes a row
// nodes keep copies of announces it, to the writing store's watchers
// before the write returns, and to every other store's watchers soon
// after; a refused write announces nothing.

// changeLog records the changes a watcher heard of.
type changeLog struct {
	mu   sync.Mutex
	seen []store.Change
}

func (l *changeLog) add(c store.Change) {
	l.mu.Lock()
	l.seen = append(l.seen, c)
	l.mu.Unlock()
}

// has reports whether every change of want was heard of.
func (l *changeLog) has(want []store.Change) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range want {
		if !slices.Contains(l.seen, c) {
			return false
		}
	}
	return true
}

func (l *changeLog) reset() {
	l.mu.Lock()
	l.seen = nil
	l.mu.Unlock()
}

func watchChanges(t *testing.T, s *store.Store) *changeLog {
	t.Helper()
	l := &changeLog{}
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := s.WatchChanges(wctx, l.add); err != nil {
		t.Fatalf("WatchChanges() error = %v", err)
	}
	return l
}

// changesAcross makes each kind of change through a, and checks that a's
// watcher heard of it when the write returned, and that b's hears of it
// within watchTimeout (a and b may be one store, whose watchers may also
// hear a change again from the engine, later).
func changesAcross(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	mustRelease(t, a, "r1")
	la, lb := watchChanges(t, a), watchChanges(t, b)
	heard := func(what string, want ...store.Change) {
		t.Helper()
		if !la.has(want) {
			t.Errorf("%s: the writing store's watcher had not heard of %+v when the write returned (heard %+v)", what, want, la.seen)
		}
		deadline := time.Now().Add(watchTimeout)
		for !lb.has(want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the other store's watcher did not hear of %+v within %v (heard %+v)", what, want, watchTimeout, lb.seen)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	check := func(what string, want ...store.Change) {
		t.Helper()
		heard(what, want...)
		la.reset()
		lb.reset()
	}
	series := store.Change{Kind: store.KeysChanged, Key: tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData}}

	r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp-1"), t0)
	v1 := mustRotate(t, a, r)
	check("a rotation", series)
	r = rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp-2"), t0.Add(day))
	mustRotate(t, a, r)
	check("a second rotation", series)

	mustDestroy(t, a, v1, t0.Add(2*day))
	check("a destruction", store.Change{Kind: store.KeyDestroyed, Key: refOf(v1)})
	if _, err := a.RestoreKey(ctx, restoreReq(v1, []byte("v1 wrapped anew")), rec); err != nil {
		t.Fatalf("RestoreKey() error = %v", err)
	}
	check("a restoration", series)

	if _, err := a.SetDerivationOptOut(ctx, tn.ID, true, rec); err != nil {
		t.Fatalf("SetDerivationOptOut() error = %v", err)
	}
	check("a tenant setting", store.Change{Kind: store.TenantChanged, Tenant: tn.ID})

	admin := mustToken(t, a, auth.RoleTenantAdmin, tn.ID, "", "admin")
	app1 := mustToken(t, a, auth.RoleApp, tn.ID, admin.ID, "app1")
	app2 := mustToken(t, a, auth.RoleApp, tn.ID, admin.ID, "app2")
	if _, _, err := a.RevokeToken(ctx, admin.ID, "", t0.Add(day), rec); err != nil {
		t.Fatalf("RevokeToken() error = %v", err)
	}
	check("a revocation", store.Change{Kind: store.TokenRevoked, Token: admin.ID},
		store.Change{Kind: store.TokenRevoked, Token: app1.ID}, store.Change{Kind: store.TokenRevoked, Token: app2.ID})

	// Refused writes announce nothing.
	missing := tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 99}
	if _, err := a.DestroyKey(ctx, missing, t0.Add(3*day), rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DestroyKey(missing) error = %v, want ErrNotFound", err)
	}
	if _, _, err := a.RevokeToken(ctx, admin.ID, "", t0.Add(day), rec); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("RevokeToken(revoked) error = %v, want ErrRevoked", err)
	}
	unknown := tenant.NewID()
	if _, _, err := a.RevokeToken(ctx, unknown, "", t0.Add(day), rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RevokeToken(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := a.SetDerivationOptOut(ctx, unknown, true, rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetDerivationOptOut(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := a.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp-1"), t0.Add(3*day)), rec); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("Rotate(duplicate fingerprint) error = %v, want ErrDuplicate", err)
	}
	// Then a change made afterwards: once it is heard of, whatever the
	// refusals had announced would have been too.
	mustRotate(t, a, rotateReq(tn.ID, tenant.TypeDeterministic, newKey("r1", "fp-3"), t0.Add(2*day)))
	heard("a rotation after refusals", store.Change{Kind: store.KeysChanged, Key: tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeDeterministic}})
	refused := []store.Change{
		{Kind: store.KeyDestroyed, Key: missing},
		{Kind: store.TokenRevoked, Token: unknown},
		{Kind: store.TenantChanged, Tenant: unknown},
	}
	for _, l := range []*changeLog{la, lb} {
		for _, c := range refused {
			if l.has([]store.Change{c}) {
				t.Errorf("a refused write announced %+v", c)
			}
		}
	}

	if err := a.WatchChanges(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("WatchChanges(nil) error = %v, want ErrInvalid", err)
	}
}
