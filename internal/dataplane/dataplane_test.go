package dataplane_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func TestEncryptDecryptAcrossRotationAndDestruction(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	other := e.Tenant(t, tenant.EnvProduction)
	c := map[string]string{"table": "accounts", "field": "ssn"}

	_, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("x"), c)
	nodetest.WantErr(t, "Encrypt(before any key)", err, tenant.ErrNoActiveKey)

	e.Generate(t, tn.ID, tenant.TypeData)
	ct1, k1, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("under v1"), c)
	if err != nil || k1.Version != 1 {
		t.Fatalf("Encrypt() = v%d, %v, want v1", k1.Version, err)
	}
	e.Clock.Add(time.Hour)
	e.Generate(t, tn.ID, tenant.TypeData)
	ct2, k2, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("under v2"), c)
	if err != nil || k2.Version != 2 {
		t.Fatalf("Encrypt() after rotation = v%d, %v, want v2", k2.Version, err)
	}
	for ct, want := range map[*[]byte]envelope.Header{
		&ct1: {Tenant: tn.ID, Type: tenant.TypeData, Version: 1},
		&ct2: {Tenant: tn.ID, Type: tenant.TypeData, Version: 2},
	} {
		if h, err := envelope.ParseHeader(*ct); err != nil || h != want {
			t.Errorf("ParseHeader() = %+v, %v, want %+v", h, err, want)
		}
	}
	for _, tc := range []struct {
		ct      []byte
		pt      string
		version uint32
	}{{ct1, "under v1", 1}, {ct2, "under v2", 2}} {
		pt, k, err := e.Data.Decrypt(ctx, nil, tn.ID, tc.ct, c)
		if err != nil || string(pt) != tc.pt || k.Version != tc.version {
			t.Errorf("Decrypt(v%d ciphertext) = %q, v%d, %v, want %q", tc.version, pt, k.Version, err, tc.pt)
		}
	}

	// Opaque failures.
	altered := bytes.Clone(ct2)
	altered[len(altered)-1] ^= 1
	relabelled, _ := envelope.ParseHeader(ct2)
	relabelled.Version = 99
	hb, _ := relabelled.Marshal()
	v99 := append(hb, ct2[len(hb):]...)
	for name, try := range map[string]func() error{
		"other context": func() error { _, _, err := e.Data.Decrypt(ctx, nil, tn.ID, ct2, nil); return err },
		"other tenant":  func() error { _, _, err := e.Data.Decrypt(ctx, nil, other.ID, ct2, c); return err },
		"altered":       func() error { _, _, err := e.Data.Decrypt(ctx, nil, tn.ID, altered, c); return err },
		"no such key":   func() error { _, _, err := e.Data.Decrypt(ctx, nil, tn.ID, v99, c); return err },
		"garbage":       func() error { _, _, err := e.Data.Decrypt(ctx, nil, tn.ID, []byte("hello"), c); return err },
	} {
		nodetest.WantErr(t, "Decrypt("+name+")", try(), envelope.ErrDecrypt)
	}

	// Destroy v1: its data is gone, v2's is not.
	d, err := e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	if err != nil || d.State != tenant.StateDestroyed || !d.Destroyed.Equal(e.Clock.Now()) {
		t.Fatalf("Destroy(v1) = %s at %s, %v", d.State, d.Destroyed, err)
	}
	if _, ok := e.Cache.Get(fmt.Sprintf("dek/%s/data/1", tn.ID)); ok {
		t.Error("v1's DEK is still cached after Destroy")
	}
	_, _, err = e.Data.Decrypt(ctx, nil, tn.ID, ct1, c)
	nodetest.WantErr(t, "Decrypt(v1 ciphertext after Destroy)", err, tenant.ErrKeyDestroyed)
	_, _, err = e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	nodetest.WantErr(t, "DEK(destroyed v1)", err, tenant.ErrKeyDestroyed)
	_, _, err = e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, envelope.KEMX25519, x25519Public(t))
	nodetest.WantErr(t, "SealDEK(destroyed v1)", err, tenant.ErrKeyDestroyed)
	if pt, _, err := e.Data.Decrypt(ctx, nil, tn.ID, ct2, c); err != nil || string(pt) != "under v2" {
		t.Errorf("Decrypt(v2 ciphertext after destroying v1) = %q, %v", pt, err)
	}
	if _, k, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("more"), c); err != nil || k.Version != 2 {
		t.Errorf("Encrypt() after destroying v1 = v%d, %v, want v2", k.Version, err)
	}
	_, err = e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	nodetest.WantErr(t, "Destroy(v1 again)", err, tenant.ErrKeyDestroyed)
	nodetest.WantErr(t, "Destroy(v1 again)", err, store.ErrDestroyed)
	_, err = e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 7})
	nodetest.WantErr(t, "Destroy(missing version)", err, store.ErrNotFound)
	e.CheckStates(t, tn.ID, tenant.TypeData, tenant.StateDestroyed, tenant.StateActive)
}

func TestDestroyActiveKey(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvSandbox)
	e.Generate(t, tn.ID, tenant.TypeData)
	ct, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("p"), nil)
	nodetest.WantErr(t, "Encrypt(active key destroyed)", err, tenant.ErrNoActiveKey)
	_, _, err = e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
	nodetest.WantErr(t, "DEK(0, active key destroyed)", err, tenant.ErrNoActiveKey)
	_, _, err = e.Data.SealDEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}, envelope.KEMX25519, x25519Public(t))
	nodetest.WantErr(t, "SealDEK(0, active key destroyed)", err, tenant.ErrNoActiveKey)
	_, _, err = e.Data.Decrypt(ctx, nil, tn.ID, ct, nil)
	nodetest.WantErr(t, "Decrypt(under the destroyed key)", err, tenant.ErrKeyDestroyed)

	// The rate limit still counts from v1's creation.
	_, err = e.Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, tenant.TypeData)
	nodetest.WantErr(t, "Generate(too soon after v1)", err, store.ErrRateLimited)
	e.Clock.Add(time.Hour)
	if k := e.Generate(t, tn.ID, tenant.TypeData); k.Version != 2 {
		t.Errorf("Generate() after destroying v1 = v%d, want v2", k.Version)
	}
	ct2, k, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("p"), nil)
	if err != nil || k.Version != 2 {
		t.Fatalf("Encrypt() after a new Generate = v%d, %v, want v2", k.Version, err)
	}
	if pt, _, err := e.Data.Decrypt(ctx, nil, tn.ID, ct2, nil); err != nil || string(pt) != "p" {
		t.Errorf("Decrypt(v2) = %q, %v", pt, err)
	}

	// An unknown tenant is not found, not "no active key".
	_, _, err = e.Data.Encrypt(ctx, nil, tenant.NewID(), tenant.TypeData, []byte("p"), nil)
	nodetest.WantErr(t, "Encrypt(unknown tenant)", err, store.ErrNotFound)
	_, _, err = e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, nil, map[string]string{"": "x"})
	nodetest.WantErr(t, "Encrypt(invalid context)", err, envelope.ErrContext)
}

// x25519Public is a fresh, valid X25519 public key for SealDEK calls that
// must fail for other reasons than the key.
func x25519Public(t *testing.T) []byte {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv.PublicKey().Bytes()
}
