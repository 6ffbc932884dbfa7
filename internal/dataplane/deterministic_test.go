package dataplane_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/dataplane"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// TestDeterministic: keys of type deterministic give equal ciphertexts for
// equal plaintexts of one field — on this node after its cache dropped the
// DEK, and on another node over the same database (a restart) — and
// unrelated ones for another field, flag, version or tenant; data keys stay
// probabilistic. On each engine.
func TestDeterministic(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			e := nodetest.New(t, st, nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
			tn := e.Tenant(t, tenant.EnvProduction)
			other := e.Tenant(t, tenant.EnvProduction)
			e.Generate(t, tn.ID, tenant.TypeDeterministic)
			e.Generate(t, other.ID, tenant.TypeDeterministic)
			e.Generate(t, tn.ID, tenant.TypeData)
			c := map[string]string{"table": "users"}
			email := dataplane.Field{Name: "users.email"}
			pt := []byte("alice@example.com")

			enc := func(n *nodetest.Node, tenantID string, f dataplane.Field, pt []byte) []byte {
				t.Helper()
				ct, k, err := n.Data.EncryptField(ctx, nil, tenantID, tenant.TypeDeterministic, f, pt, c)
				if err != nil || k.Type != tenant.TypeDeterministic {
					t.Fatalf("EncryptField(%+v) = %s, %v", f, k.Type, err)
				}
				return ct
			}
			ct := enc(e, tn.ID, email, pt)
			if again := enc(e, tn.ID, email, pt); !bytes.Equal(again, ct) {
				t.Errorf("EncryptField() twice = %x, %x, want equal", ct, again)
			}
			e.Cache.Evict(fmt.Sprintf("dek/%s/deterministic/1", tn.ID))
			if again := enc(e, tn.ID, email, pt); !bytes.Equal(again, ct) {
				t.Errorf("EncryptField() after the DEK was evicted = %x, want %x", again, ct)
			}
			peer := e.Peer(t, st)
			if again := enc(peer, tn.ID, email, pt); !bytes.Equal(again, ct) {
				t.Errorf("EncryptField() on a fresh node = %x, want %x", again, ct)
			}
			if got, k, err := peer.Data.DecryptField(ctx, nil, tn.ID, email.Name, ct, c); err != nil || !bytes.Equal(got, pt) || k.Version != 1 {
				t.Errorf("DecryptField() on a fresh node = %q, v%d, %v, want %q", got, k.Version, err, pt)
			}

			differ := map[string][]byte{
				"another field":  enc(e, tn.ID, dataplane.Field{Name: "users.backup_email"}, pt),
				"another tenant": enc(e, other.ID, email, pt),
				"the fold flag":  enc(e, tn.ID, dataplane.Field{Name: email.Name, CaseInsensitive: true}, pt),
			}
			e.Clock.Add(time.Hour)
			e.Generate(t, tn.ID, tenant.TypeDeterministic)
			v2 := enc(e, tn.ID, email, pt)
			differ["another version"] = v2
			if h, err := envelope.ParseFieldHeader(v2); err != nil || h.Version != 2 {
				t.Errorf("ParseFieldHeader(after rotation) = %+v, %v, want version 2", h, err)
			}
			for what, ct2 := range differ {
				if bytes.Contains(ct2, ct[len(ct)-len(pt)-16:]) {
					t.Errorf("%s gave the same AES-SIV output", what)
				}
			}
			// v1's ciphertext still decrypts after the rotation.
			if got, _, err := e.Data.DecryptField(ctx, nil, tn.ID, email.Name, ct, c); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("DecryptField(v1 after rotation) = %q, %v", got, err)
			}

			// Case-insensitive: one ciphertext for every case, the folded
			// form back.
			ci := dataplane.Field{Name: "users.login", CaseInsensitive: true}
			a, b := enc(e, tn.ID, ci, []byte("Alice")), enc(e, tn.ID, ci, []byte("ALICE"))
			if !bytes.Equal(a, b) {
				t.Error("case-insensitive EncryptField(Alice) != EncryptField(ALICE)")
			}
			if got, _, err := e.Data.DecryptField(ctx, nil, tn.ID, ci.Name, a, c); err != nil || string(got) != "alice" {
				t.Errorf("DecryptField(case-insensitive) = %q, %v, want the folded \"alice\"", got, err)
			}
			if bytes.Equal(enc(e, tn.ID, dataplane.Field{Name: ci.Name}, []byte("Alice")), enc(e, tn.ID, dataplane.Field{Name: ci.Name}, []byte("alice"))) {
				t.Error("case-sensitive EncryptField(Alice) = EncryptField(alice)")
			}

			// Opaque failures: wrong field, wrong context, other tenant.
			for name, try := range map[string]func() error{
				"wrong field":   func() error { _, _, err := e.Data.DecryptField(ctx, nil, tn.ID, "users.name", ct, c); return err },
				"wrong context": func() error { _, _, err := e.Data.DecryptField(ctx, nil, tn.ID, email.Name, ct, nil); return err },
				"other tenant":  func() error { _, _, err := e.Data.DecryptField(ctx, nil, other.ID, email.Name, ct, c); return err },
			} {
				nodetest.WantErr(t, "DecryptField("+name+")", try(), envelope.ErrDecrypt)
			}
			// Clear refusals: no field where one is needed, one where none
			// belongs.
			_, _, err := e.Data.Decrypt(ctx, nil, tn.ID, ct, c)
			nodetest.WantErr(t, "Decrypt(deterministic, no field)", err, envelope.ErrField)
			_, _, err = e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeDeterministic, pt, c)
			nodetest.WantErr(t, "Encrypt(deterministic, no field)", err, envelope.ErrField)
			_, _, err = e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeData, email, pt, c)
			nodetest.WantErr(t, "EncryptField(data key, a field)", err, envelope.ErrField)
			_, _, err = e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeData, dataplane.Field{CaseInsensitive: true}, pt, c)
			nodetest.WantErr(t, "EncryptField(data key, case-insensitive)", err, envelope.ErrField)
			_, _, err = e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeDeterministic, dataplane.Field{Name: "a b"}, pt, c)
			nodetest.WantErr(t, "EncryptField(invalid field)", err, envelope.ErrField)
			_, _, err = e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeDeterministic, ci, []byte{0xff}, c)
			nodetest.WantErr(t, "EncryptField(case-insensitive, not UTF-8)", err, envelope.ErrFold)

			// Data keys stay probabilistic, and refuse a field on decrypt.
			d1, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, pt, c)
			if err != nil {
				t.Fatal(err)
			}
			d2, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, pt, c)
			if err != nil || bytes.Equal(d1, d2) || envelope.FormatOf(d1) != envelope.Format {
				t.Errorf("Encrypt(data) twice = %x, %x, %v: want two different format 1 ciphertexts", d1, d2, err)
			}
			_, _, err = e.Data.DecryptField(ctx, nil, tn.ID, email.Name, d1, c)
			nodetest.WantErr(t, "DecryptField(format 1, a field)", err, envelope.ErrField)

			// A format 2 ciphertext naming a data key is opaque, even one
			// sealed right under that key's DEK.
			dek, dk, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData})
			if err != nil {
				t.Fatal(err)
			}
			forged, err := envelope.SealDeterministic(dek, envelope.FieldHeader{Header: envelope.Header{Tenant: tn.ID, Type: tenant.TypeData, Version: dk.Version}, Field: email.Name}, c, pt)
			dek.Destroy()
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = e.Data.DecryptField(ctx, nil, tn.ID, email.Name, forged, c)
			nodetest.WantErr(t, "DecryptField(format 2 under a data key)", err, envelope.ErrDecrypt)
		})
	}
}

// TestDeterministicLegacy: a format 1 ciphertext of a deterministic key
// (what Encrypt made before format 2) still decrypts, without a field.
func TestDeterministicLegacy(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	e.Generate(t, tn.ID, tenant.TypeDeterministic)
	dek, k, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeDeterministic})
	if err != nil {
		t.Fatal(err)
	}
	old, err := envelope.Seal(dek, envelope.Header{Tenant: tn.ID, Type: k.Type, Version: k.Version}, nil, []byte("old"))
	dek.Destroy()
	if err != nil {
		t.Fatal(err)
	}
	if pt, _, err := e.Data.Decrypt(ctx, nil, tn.ID, old, nil); err != nil || string(pt) != "old" {
		t.Errorf("Decrypt(format 1 of a deterministic key) = %q, %v, want \"old\"", pt, err)
	}
}
