package exportkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/exportkey"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var ctx = context.Background()

func TestMain(m *testing.M) { nodetest.Main(m) }

func randomSecret(t *testing.T) secret.Key {
	b := make([]byte, secret.Size)
	rand.Read(b)
	k, err := secret.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// creations returns the log's export key creations of tenantID.
func creations(t *testing.T, n *nodetest.Node, tenantID string) []audit.Entry {
	t.Helper()
	var es []audit.Entry
	err := n.Audit.Entries(ctx, store.AuditFilter{Tenant: tenantID}, func(e audit.Entry) error {
		if e.Action == exportkey.ActionCreate {
			es = append(es, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestKey: a tenant's export key is made once, on first use, recorded on
// behalf of the request that needed it, and the same on every node.
func TestKey(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	if _, err := e.ExportKeys.Existing(ctx, tn.ID); !errors.Is(err, exportkey.ErrNone) {
		t.Fatalf("Existing(before any) error = %v, want ErrNone", err)
	}
	rec := nodetest.Rec(tn.ID)
	k1, err := e.ExportKeys.Key(ctx, rec, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer k1.Destroy()
	k2, err := e.ExportKeys.Key(ctx, nodetest.Rec(tn.ID), tn.ID)
	if err != nil || !k2.Equal(k1) {
		t.Fatalf("Key() again = %v, or another key", err)
	}
	k2.Destroy()
	es := creations(t, e, tn.ID)
	if len(es) != 1 || es[0].Request != rec.Request || es[0].Actor != rec.Actor || es[0].Outcome != audit.OutcomeOK {
		t.Fatalf("creation entries = %+v, want one, on behalf of the first request", es)
	}
	stored, err := e.Store.ExportKey(ctx, tn.ID)
	if err != nil || bytes.Contains(stored.Wrapped, k1.Bytes()) || stored.Release != nodetest.Release1.ID {
		t.Fatalf("the stored export key = %+v, %v: want it wrapped under release %s", stored.Release, err, nodetest.Release1.ID)
	}
	peer := e.Peer(t, e.Store)
	k3, err := peer.ExportKeys.Existing(ctx, tn.ID)
	if err != nil || !k3.Equal(k1) {
		t.Fatalf("another node's Existing() = %v, or another key", err)
	}
	k3.Destroy()
}

// TestKeyRace: nodes that make a tenant's export key at once agree on one,
// recorded once. On both engines.
func TestKeyRace(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			e := nodetest.New(t, st, nodetest.Options{Releases: []nodetest.Release{nodetest.Release1}})
			tn := e.Tenant(t, tenant.EnvProduction)
			nodes := []*nodetest.Node{e, e.Peer(t, st), e.Peer(t, st), e.Peer(t, st)}
			keys := make([]secret.Key, len(nodes))
			errs := make([]error, len(nodes))
			var wg sync.WaitGroup
			for i, n := range nodes {
				wg.Go(func() { keys[i], errs[i] = n.ExportKeys.Key(ctx, nodetest.Rec(tn.ID), tn.ID) })
			}
			wg.Wait()
			for i := range nodes {
				if errs[i] != nil || !keys[i].Equal(keys[0]) {
					t.Errorf("node %d: Key() = %v, or another key than node 0's", i, errs[i])
				}
			}
			for _, k := range keys {
				k.Destroy()
			}
			if es := creations(t, e, tn.ID); len(es) != 1 {
				t.Errorf("%d creation entries, want 1", len(es))
			}
		})
	}
}

// TestFingerprint: keyed by the tenant's export key, the fingerprint of a
// secret is the same on every node, differs between tenants and secrets,
// and is not the secret.
func TestFingerprint(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Releases: []nodetest.Release{nodetest.Release1}})
	a, b := e.Tenant(t, tenant.EnvProduction), e.Tenant(t, tenant.EnvProduction)
	s1, s2 := randomSecret(t), randomSecret(t)
	fp := func(n *nodetest.Node, tenantID string, s secret.Key) []byte {
		t.Helper()
		f, err := n.ExportKeys.Fingerprint(ctx, nodetest.Rec(tenantID), tenantID, s)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := fp(e, a.ID, s1)
	if len(f) != 32 || bytes.Equal(f, s1.Bytes()) {
		t.Fatalf("Fingerprint() = %d bytes, or the secret itself", len(f))
	}
	if !bytes.Equal(fp(e.Peer(t, e.Store), a.ID, s1), f) {
		t.Error("another node computes another fingerprint")
	}
	if bytes.Equal(fp(e, b.ID, s1), f) {
		t.Error("two tenants have the same fingerprint of a secret")
	}
	if bytes.Equal(fp(e, a.ID, s2), f) {
		t.Error("two secrets have the same fingerprint")
	}
}
