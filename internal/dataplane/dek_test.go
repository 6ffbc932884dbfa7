package dataplane_test

import (
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/derive"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// expectedDEK recomputes a key's DEK outside the services: the bundle of
// release r opened with release.Open, the stored wrapped secret unwrapped
// under its TWK, derive.Key with r's seed, salt and count.
func expectedDEK(t *testing.T, e *nodetest.Node, k tenant.Key, r nodetest.Release) secret.Key {
	t.Helper()
	stored, err := e.Store.Key(ctx, k.KeyRef())
	if err != nil {
		t.Fatal(err)
	}
	w := nodetest.World(t)
	opened := func(r nodetest.Release) *release.Release {
		x, err := release.Open(ctx, w.Regions[nodetest.Region].HSM, nodetest.Bundle(t, r), w.Trust(nodetest.Region))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Destroy)
		return x
	}
	own := opened(nodetest.Release{ID: stored.Release, Created: r.Created, Iterations: r.Iterations})
	ts, err := tenant.Unwrap(own.TWK, stored.Ref(), stored.Wrapped)
	if err != nil {
		t.Fatalf("Unwrap(stored v%d) error = %v", k.Version, err)
	}
	dek, err := derive.Key(derive.FromRelease(opened(r), k.Tenant, k.Type, k.Version, ts))
	if err != nil {
		t.Fatal(err)
	}
	return dek
}

// TestDerivationUsesTheKeysRelease: a key wrapped under release 2026-1 keeps
// deriving with 2026-1's seed, salt and count after 2026-2 is loaded and
// becomes current, warm or cold.
func TestDerivationUsesTheKeysRelease(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	v1 := e.Generate(t, tn.ID, tenant.TypeData)
	ct1, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("old"), nil)
	if err != nil {
		t.Fatal(err)
	}

	e.Install(t, nodetest.Release2)
	if cur, _ := e.Ring.Current(); cur.ID != nodetest.Release2.ID {
		t.Fatalf("Ring.Current() = %s, want %s", cur.ID, nodetest.Release2.ID)
	}
	e.Cache.EvictPrefix("dek/") // cold: derive again, with 2026-2 loaded
	e.Clock.Add(time.Hour)
	v2 := e.Generate(t, tn.ID, tenant.TypeData)
	if v1.Release != nodetest.Release1.ID || v2.Release != nodetest.Release2.ID {
		t.Fatalf("releases of v1, v2 = %s, %s, want %s, %s", v1.Release, v2.Release, nodetest.Release1.ID, nodetest.Release2.ID)
	}

	d1, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := expectedDEK(t, e, v1, nodetest.Release1); !d1.Equal(want) {
		t.Error("DEK(v1) is not derived with release 2026-1")
	}
	if newest := expectedDEK(t, e, v1, nodetest.Release2); d1.Equal(newest) {
		t.Error("DEK(v1) is derived with the newest release, 2026-2")
	}
	d2, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := expectedDEK(t, e, v2, nodetest.Release2); !d2.Equal(want) {
		t.Error("DEK(v2) is not derived with release 2026-2")
	}
	if pt, _, err := e.Data.Decrypt(ctx, nil, tn.ID, ct1, nil); err != nil || string(pt) != "old" {
		t.Errorf("Decrypt(v1 ciphertext after a new release) = %q, %v", pt, err)
	}
}

// TestSealDEK: the DEK delivered with HPKE is DEK(), the same data decrypts
// both ways (server-side and locally), and nothing else opens it.
func TestSealDEK(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	e.Generate(t, tn.ID, tenant.TypeData)
	c := map[string]string{"field": "email"}
	serverCT, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("from the server"), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint16{envelope.KEMX25519, envelope.KEMMLKEM768X25519} {
		t.Run(fmt.Sprintf("%#04x", id), func(t *testing.T) {
			kem, _ := hpke.NewKEM(id)
			priv, err := kem.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			sealed, k, err := e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}, id, priv.PublicKey().Bytes())
			if err != nil || k.Version != 1 {
				t.Fatalf("SealDEK() = v%d, %v", k.Version, err)
			}
			h := envelope.Header{Tenant: tn.ID, Type: tenant.TypeData, Version: k.Version}
			dek, err := envelope.OpenDEK(priv, id, h, sealed)
			if err != nil {
				t.Fatalf("OpenDEK() error = %v", err)
			}
			want, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
			if err != nil || !dek.Equal(want) {
				t.Fatalf("OpenDEK() is not DEK() (%v)", err)
			}
			// Server-encrypted data decrypts locally…
			if pt, err := envelope.Open(dek, serverCT, c); err != nil || string(pt) != "from the server" {
				t.Errorf("envelope.Open(server ciphertext, delivered DEK) = %q, %v", pt, err)
			}
			// …and locally encrypted data decrypts on the server.
			localCT, err := envelope.Seal(dek, h, c, []byte("from the client"))
			if err != nil {
				t.Fatal(err)
			}
			if pt, _, err := e.Data.Decrypt(ctx, nil, tn.ID, localCT, c); err != nil || string(pt) != "from the client" {
				t.Errorf("Decrypt(client ciphertext) = %q, %v", pt, err)
			}
			// Nothing else opens the sealed DEK.
			stranger, _ := kem.GenerateKey()
			if _, err := envelope.OpenDEK(stranger, id, h, sealed); !errors.Is(err, envelope.ErrDecrypt) {
				t.Errorf("OpenDEK(another key pair) error = %v, want ErrDecrypt", err)
			}
			other := h
			other.Tenant = tenant.NewID()
			if _, err := envelope.OpenDEK(priv, id, other, sealed); !errors.Is(err, envelope.ErrDecrypt) {
				t.Errorf("OpenDEK(another tenant's header) error = %v, want ErrDecrypt", err)
			}
		})
	}

	// After a rotation, an explicit archived version is still delivered
	// (clients decrypt old data with it); version 0 is the new active key.
	e.Clock.Add(time.Hour)
	e.Generate(t, tn.ID, tenant.TypeData)
	priv, _ := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	sealed, k, err := e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, envelope.KEMX25519, priv.PublicKey().Bytes())
	if err != nil || k.Version != 1 || k.State != tenant.StateArchived {
		t.Fatalf("SealDEK(archived v1) = v%d %s, %v", k.Version, k.State, err)
	}
	old, err := envelope.OpenDEK(priv, envelope.KEMX25519, envelope.Header{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := envelope.Open(old, serverCT, c); err != nil || string(pt) != "from the server" {
		t.Errorf("envelope.Open(v1 data, delivered archived DEK) = %q, %v", pt, err)
	}
	if _, k, err := e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}, envelope.KEMX25519, priv.PublicKey().Bytes()); err != nil || k.Version != 2 {
		t.Errorf("SealDEK(0) after rotation = v%d, %v, want v2", k.Version, err)
	}

	_, _, err = e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}, 0x0010, priv.PublicKey().Bytes())
	nodetest.WantErr(t, "SealDEK(P-256 KEM)", err, envelope.ErrKEM)
	_, _, err = e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}, envelope.KEMMLKEM768X25519, priv.PublicKey().Bytes())
	nodetest.WantErr(t, "SealDEK(X25519 key for the hybrid KEM)", err, envelope.ErrPublicKey)
	_, _, err = e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 9}, envelope.KEMX25519, priv.PublicKey().Bytes())
	nodetest.WantErr(t, "SealDEK(missing version)", err, store.ErrNotFound)

	// Low-order X25519 points, with the DEK cached (no trial
	// encapsulation) and not: refused by the seal itself, nothing sealed.
	for _, cached := range []bool{true, false} {
		if !cached {
			e.Data.Evict(tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2})
		}
		for _, low := range [][]byte{make([]byte, 32), append([]byte{1}, make([]byte, 31)...)} {
			sealed, _, err := e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData}, envelope.KEMX25519, low)
			nodetest.WantErr(t, fmt.Sprintf("SealDEK(low-order point %x…, DEK cached %v)", low[:1], cached), err, envelope.ErrPublicKey)
			if sealed != nil {
				t.Errorf("SealDEK(low-order point) sealed %d bytes", len(sealed))
			}
		}
	}
}

// TestColdDEKOneLoad: concurrent requests for a cold DEK run one loader
// (one PBKDF2 run) between them; warm requests run none.
func TestColdDEKOneLoad(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	e.Generate(t, tn.ID, tenant.TypeData)
	before := e.Cache.Stats()
	const n = 12
	deks := make([]secret.Key, n)
	errs := storetest.AtOnce(n, func(i int) (err error) {
		deks[i], _, err = e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
		return err
	})
	for i := range n {
		if errs[i] != nil || !deks[i].Equal(deks[0]) {
			t.Fatalf("DEK() #%d = %v, or another key", i, errs[i])
		}
	}
	after := e.Cache.Stats()
	if loads := after.Loads - before.Loads; loads != 1 {
		t.Errorf("%d concurrent cold DEK() ran %d loads, want 1", n, loads)
	}
	for range 3 {
		if _, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}); err != nil {
			t.Fatal(err)
		}
	}
	if loads := e.Cache.Stats().Loads - after.Loads; loads != 0 {
		t.Errorf("warm DEK() ran %d loads, want 0", loads)
	}
}

// TestDestroyCannotBeUndoneByAnInflightRequest: a DEK request that read the
// key before a Destroy completed neither returns nor caches the DEK.
func TestDestroyCannotBeUndoneByAnInflightRequest(t *testing.T) {
	hs := &nodetest.HookStore{Store: nodetest.SQLite(t)}
	e := nodetest.New(t, hs, nodetest.Options{Policy: nodetest.ShortPolicy(time.Minute, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	for name, nth := range map[string]int32{
		// DEK reads the key (1st Key call), then the loader reads it
		// again (2nd) and derives.
		"destroyed while the loader derives": 2,
		"destroyed before the load starts":   1,
	} {
		t.Run(name, func(t *testing.T) {
			k := e.Generate(t, tn.ID, tenant.TypeData)
			e.Clock.Add(time.Minute)
			id := fmt.Sprintf("dek/%s/data/%d", tn.ID, k.Version)
			before := e.Cache.Stats()
			paused, release := hs.PauseAt(nth)
			done := make(chan error)
			go func() {
				dek, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: k.Version})
				if err == nil {
					dek.Destroy()
				}
				done <- err
			}()
			<-paused
			if _, err := e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: k.Version}); err != nil {
				t.Fatalf("Destroy() error = %v", err)
			}
			close(release)
			err := <-done
			hs.Unpause()
			nodetest.WantErr(t, "DEK() racing Destroy()", err, tenant.ErrKeyDestroyed)
			if _, ok := e.Cache.Get(id); ok {
				t.Error("the destroyed key's DEK is in the cache")
			}
			// One load ran, and failed (evicted, or found the key destroyed).
			if st := e.Cache.Stats(); st.Loads-before.Loads != 1 || st.LoadErrors-before.LoadErrors != 1 {
				t.Errorf("loads, load errors = %d, %d, want 1, 1", st.Loads-before.Loads, st.LoadErrors-before.LoadErrors)
			}
		})
	}
}
