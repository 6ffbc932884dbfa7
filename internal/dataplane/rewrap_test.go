package dataplane_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/dataplane"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Rewrap moves data to the active key, bound to the same context, and
// changes nothing the second time; what Decrypt refuses, Rewrap refuses.
func TestRewrap(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) { testRewrap(t, open(t)) })
	}
}

// Deterministic data stays deterministic in its field across a rewrap:
// equal values still give equal ciphertexts under the new version; a
// format 1 ciphertext of a deterministic key becomes format 2 in the field
// given; a field for a data key is refused.
func TestRewrapDeterministic(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	e.Generate(t, tn.ID, tenant.TypeDeterministic)
	e.Generate(t, tn.ID, tenant.TypeData)
	email := dataplane.Field{Name: "email", CaseInsensitive: true}
	a, _, err := e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeDeterministic, email, []byte("Alice@Example.com"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeDeterministic, email, []byte("alice@example.com"), nil)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("equal values differ before the rewrap: %v", err)
	}
	// A format 1 ciphertext under the deterministic key, as before format 2.
	dek, k1, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeDeterministic})
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := envelope.Seal(dek, envelope.Header{Tenant: tn.ID, Type: tenant.TypeDeterministic, Version: k1.Version}, nil, []byte("ALICE@example.com"))
	dek.Destroy()
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Add(time.Hour)
	e.Generate(t, tn.ID, tenant.TypeDeterministic)

	ra, from, to, err := e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{}, a, nil)
	if err != nil || from.Version != 1 || to.Version != 2 || envelope.FormatOf(ra) != envelope.FormatDeterministic {
		t.Fatalf("Rewrap(deterministic) = v%d→v%d, format %d, %v", from.Version, to.Version, envelope.FormatOf(ra), err)
	}
	rb, _, _, err := e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{Name: "email"}, b, nil)
	if err != nil || !bytes.Equal(ra, rb) {
		t.Errorf("equal values differ after the rewrap: %v", err)
	}
	fresh, _, err := e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeDeterministic, email, []byte("ALICE@example.COM"), nil)
	if err != nil || !bytes.Equal(ra, fresh) {
		t.Errorf("a rewrapped value differs from the same value encrypted under v2: %v", err)
	}
	_, _, _, err = e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{Name: "name"}, a, nil)
	nodetest.WantErr(t, "Rewrap(another field)", err, envelope.ErrDecrypt)

	_, _, _, err = e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{}, legacy, nil)
	nodetest.WantErr(t, "Rewrap(format 1 deterministic, no field)", err, envelope.ErrField)
	up, _, to, err := e.Data.Rewrap(ctx, nil, tn.ID, email, legacy, nil)
	if err != nil || to.Version != 2 || !bytes.Equal(up, fresh) {
		t.Errorf("Rewrap(format 1 deterministic, field email) = v%d, equal to a fresh one %v, %v", to.Version, bytes.Equal(up, fresh), err)
	}

	data, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{Name: "email"}, data, nil)
	nodetest.WantErr(t, "Rewrap(data key, with a field)", err, envelope.ErrField)
}

func testRewrap(t *testing.T, st *store.Store) {
	e := nodetest.New(t, st, nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	other := e.Tenant(t, tenant.EnvProduction)
	c := map[string]string{"table": "accounts", "field": "ssn"}
	e.Generate(t, tn.ID, tenant.TypeData)
	ct1, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("under v1"), c)
	if err != nil {
		t.Fatal(err)
	}

	// Under the active key already: checked, and returned as it is.
	same, from, to, err := e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{}, ct1, c)
	if err != nil || !bytes.Equal(same, ct1) || from.Version != 1 || to.Version != 1 {
		t.Fatalf("Rewrap(active) = v%d→v%d, changed %v, %v; want v1→v1 unchanged", from.Version, to.Version, !bytes.Equal(same, ct1), err)
	}

	e.Clock.Add(time.Hour)
	e.Generate(t, tn.ID, tenant.TypeData)
	ct2, from, to, err := e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{}, ct1, c)
	if err != nil || from.Version != 1 || to.Version != 2 {
		t.Fatalf("Rewrap(v1) = v%d→v%d, %v; want v1→v2", from.Version, to.Version, err)
	}
	if h, err := envelope.ParseHeader(ct2); err != nil || h != (envelope.Header{Tenant: tn.ID, Type: tenant.TypeData, Version: 2}) {
		t.Errorf("the rewrapped header is %+v, %v", h, err)
	}
	pt, k, err := e.Data.Decrypt(ctx, nil, tn.ID, ct2, c)
	if err != nil || string(pt) != "under v1" || k.Version != 2 {
		t.Errorf("Decrypt(rewrapped) = %q, v%d, %v", pt, k.Version, err)
	}
	_, _, err = e.Data.Decrypt(ctx, nil, tn.ID, ct2, map[string]string{"table": "accounts"})
	nodetest.WantErr(t, "Decrypt(rewrapped, another context)", err, envelope.ErrDecrypt)
	again, from, to, err := e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{}, ct2, c)
	if err != nil || !bytes.Equal(again, ct2) || from.Version != 2 || to.Version != 2 {
		t.Errorf("Rewrap(rewrapped) = v%d→v%d, changed %v, %v; want unchanged", from.Version, to.Version, !bytes.Equal(again, ct2), err)
	}

	// Refused as Decrypt refuses: another context, another tenant, an
	// altered ciphertext; nothing comes back.
	altered := bytes.Clone(ct1)
	altered[len(altered)-1] ^= 1
	for name, tc := range map[string]struct {
		tenant string
		ct     []byte
		ctx    map[string]string
	}{
		"another context": {tn.ID, ct1, map[string]string{"field": "ssn"}},
		"another tenant":  {other.ID, ct1, c},
		"altered":         {tn.ID, altered, c},
		"empty":           {tn.ID, nil, c},
	} {
		out, _, _, err := e.Data.Rewrap(ctx, nil, tc.tenant, dataplane.Field{}, tc.ct, tc.ctx)
		nodetest.WantErr(t, "Rewrap("+name+")", err, envelope.ErrDecrypt)
		if out != nil {
			t.Errorf("Rewrap(%s) returned %d bytes", name, len(out))
		}
	}

	// A destroyed version's data cannot be moved.
	if _, err := e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = e.Data.Rewrap(ctx, nil, tn.ID, dataplane.Field{}, ct1, c)
	nodetest.WantErr(t, "Rewrap(destroyed v1)", err, tenant.ErrKeyDestroyed)
}
