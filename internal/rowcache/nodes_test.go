package rowcache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/rowcache"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// deaf is a node's store that hears of no change: every notification
// lost, as when its connection to the database drops.
type deaf struct{ *store.Store }

func (deaf) WatchChanges(context.Context, func(store.Change)) error { return nil }

// soon polls ok until it holds, failing the test if it does not within
// the row cache's MaxAge (which the test clock never reaches here: only a
// notification can make it hold).
func soon(t *testing.T, what string, ok func() bool) {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > rowcache.DefaultMaxAge {
			t.Fatalf("%s: not within %v", what, rowcache.DefaultMaxAge)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("%s: after %v", what, time.Since(start).Round(time.Millisecond))
}

// TestAcrossNodes: two nodes on one database (PostgreSQL: two stores, as
// two processes; SQLite: one store, as one process's nodes). A token
// revoked, a key rotated or destroyed, a tenant's setting changed on node
// A is seen by node B, which had each row cached, within milliseconds (the
// store's notification); and by node C, which hears no notification,
// once its copies are MaxAge old, and not before.
func TestAcrossNodes(t *testing.T) {
	for name, open := range nodetest.SharedStores() {
		t.Run(name, func(t *testing.T) {
			sa, sb := open(t)
			a := nodetest.New(t, sa, nodetest.Options{Policy: nodetest.ShortPolicy(time.Second, 50), Releases: []nodetest.Release{nodetest.Release1}})
			b, c := a.Peer(t, sb), a.Peer(t, deaf{sb})
			tn := a.Tenant(t, tenant.EnvProduction)
			v1 := a.Generate(t, tn.ID, tenant.TypeData)
			secret, tok, err := a.Tokens.Create(ctx, nodetest.Rec(tn.ID), auth.Identity{}, "app", tn.ID, "app", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			header := "Bearer " + secret
			a.Clock.Add(time.Second) // v2 may be made: the clock stays still from here
			data := map[string]string{"row": "1"}
			var ct []byte
			// B and C cache every row a request reads.
			for _, n := range []*nodetest.Node{b, c} {
				if _, err := n.Tokens.Authenticate(ctx, header); err != nil {
					t.Fatal(err)
				}
				if _, err := n.Tenants.ByName(ctx, tn.Name); err != nil {
					t.Fatal(err)
				}
				if ct, _, err = n.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("x"), data); err != nil {
					t.Fatal(err)
				}
				if _, _, err := n.Data.Decrypt(ctx, nil, tn.ID, ct, data); err != nil {
					t.Fatal(err)
				}
			}

			// A rotation: B encrypts under v2 soon; C keeps v1 until
			// its copy is old.
			v2 := a.Generate(t, tn.ID, tenant.TypeData)
			encryptsUnder := func(n *nodetest.Node) uint32 {
				_, k, err := n.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("x"), data)
				if err != nil {
					t.Fatal(err)
				}
				return k.Version
			}
			soon(t, "B encrypts under the new version", func() bool { return encryptsUnder(b) == v2.Version })
			if v := encryptsUnder(c); v != v1.Version {
				t.Errorf("C, deaf, encrypts under v%d at once: want v%d until its copy is %v old", v, v1.Version, rowcache.DefaultMaxAge)
			}

			// A setting.
			if _, err := a.Tenants.SetDerivationOptOut(ctx, nodetest.Rec(""), tn.ID, !tn.DerivationOptOut); err != nil {
				t.Fatal(err)
			}
			soon(t, "B sees the tenant's new setting", func() bool {
				got, err := b.Tenants.ByName(ctx, tn.Name)
				return err == nil && got.DerivationOptOut != tn.DerivationOptOut
			})

			// A destruction: B refuses v1's ciphertext soon.
			if _, err := a.Keys.Destroy(ctx, nodetest.Rec(tn.ID), v1.KeyRef()); err != nil {
				t.Fatal(err)
			}
			soon(t, "B refuses data under the destroyed version", func() bool {
				_, _, err := b.Data.Decrypt(ctx, nil, tn.ID, ct, data)
				return errors.Is(err, tenant.ErrKeyDestroyed)
			})

			// A revocation: B refuses the token soon; C, deaf, still
			// accepts it (its copy is fresh).
			if _, _, err := a.Tokens.Revoke(ctx, nodetest.Rec(tn.ID), auth.Identity{}, tok.ID); err != nil {
				t.Fatal(err)
			}
			soon(t, "B refuses the revoked token", func() bool {
				_, err := b.Tokens.Authenticate(ctx, header)
				return errors.Is(err, auth.ErrRevoked)
			})
			if _, err := c.Tokens.Authenticate(ctx, header); err != nil {
				t.Errorf("C, deaf, refused the token at once (%v): its copy should still be fresh", err)
			}

			// C's copies are MaxAge old: every change is seen.
			a.Clock.Add(rowcache.DefaultMaxAge)
			if _, err := c.Tokens.Authenticate(ctx, header); !errors.Is(err, auth.ErrRevoked) {
				t.Errorf("C after MaxAge: Authenticate(revoked) error = %v, want ErrRevoked", err)
			}
			if _, _, err := c.Data.Decrypt(ctx, nil, tn.ID, ct, data); !errors.Is(err, tenant.ErrKeyDestroyed) {
				t.Errorf("C after MaxAge: Decrypt(destroyed version) error = %v, want ErrKeyDestroyed", err)
			}
			if v := encryptsUnder(c); v != v2.Version {
				t.Errorf("C after MaxAge encrypts under v%d, want v%d", v, v2.Version)
			}
			if got, err := c.Tenants.ByName(ctx, tn.Name); err != nil || got.DerivationOptOut == tn.DerivationOptOut {
				t.Errorf("C after MaxAge: the tenant's setting = %+v, %v; want the new one", got, err)
			}
		})
	}
}
