package byok_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// TestNewCertLimit: ten concurrent NewCerts of one tenant, on two nodes
// sharing the database, leave exactly MaxLiveCerts certificates; the
// others are refused with ErrTooManyCerts, and every key pair made for a
// refused one is deleted again. Each node makes its key pairs one at a time
// and counts first, so at most one more is made than is kept. On both
// stores.
func TestNewCertLimit(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			e := nodetest.New(t, open(t), nodetest.Options{Releases: []nodetest.Release{nodetest.Release1}})
			h := &countingHSM{HSM: nodetest.World(t).Regions[nodetest.Region].HSM}
			nodes := []*byok.Service{service(e, h), service(e.Peer(t, e.Store), h)}
			tn := e.Tenant(t, tenant.EnvProduction)
			const n = 10
			errs := storetest.AtOnce(n, func(i int) error {
				_, err := nodes[i%2].NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID})
				return err
			})
			made := storetest.Succeeded(t, "NewCert", errs, store.ErrTooManyCerts)
			cs, err := e.BYOK.Certs(ctx, tn.ID)
			if made != byok.MaxLiveCerts || err != nil || len(cs) != byok.MaxLiveCerts {
				t.Errorf("%d concurrent NewCerts: %d succeeded, %d stored (%v), want %d", n, made, len(cs), err, byok.MaxLiveCerts)
			}
			if kept := h.made.Load() - h.destroyed.Load(); kept != byok.MaxLiveCerts || h.made.Load() > byok.MaxLiveCerts+1 {
				t.Errorf("%d key pairs made and %d deleted: %d left in the HSM, want %d (and at most %d made)",
					h.made.Load(), h.destroyed.Load(), kept, byok.MaxLiveCerts, byok.MaxLiveCerts+1)
			}
			for _, c := range cs {
				if _, err := h.EncryptionKey(ctx, c.KeyLabel); err != nil {
					t.Errorf("the key pair of stored certificate %s: %v", c.ID, err)
				}
			}
			// Retiring one makes room for one.
			if _, err := e.BYOK.RetireCert(ctx, nodetest.Rec(tn.ID), tn.ID, cs[0].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := e.BYOK.NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID}); err != nil {
				t.Errorf("NewCert(after a retirement) error = %v", err)
			}
			_, err = e.BYOK.NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID})
			nodetest.WantErr(t, "NewCert(at the limit again)", err, store.ErrTooManyCerts)
		})
	}
}

// TestRetireDeletesKeyPair: retiring an upload certificate deletes its key
// pair from the regional HSM, and uploads to it are refused. When the
// deletion fails, the certificate is retired all the same and the error
// says so; retiring it again deletes the key pair and records that; a
// third time is ErrCertState. On both HSM backends and both stores.
func TestRetireDeletesKeyPair(t *testing.T) {
	for hname, openHSM := range backends() {
		for sname, openStore := range nodetest.Engines() {
			t.Run(hname+"/"+sname, func(t *testing.T) {
				h := &countingHSM{HSM: openHSM(t)}
				e := nodetest.New(t, openStore(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
				b := service(e, h)
				tn := e.Tenant(t, tenant.EnvProduction)
				c, err := b.NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID})
				if err != nil {
					t.Fatalf("NewCert() error = %v", err)
				}
				pub, oh := uploadKey(t, c), h.Info().OAEPHashes[0] // SoftHSM2: SHA-1 only
				up := func() byok.Upload { return uploadWith(t, tn.ID, tenant.TypeData, pub, material(t), oh) }
				if _, err := b.Upload(ctx, nodetest.Rec(tn.ID), up()); err != nil {
					t.Fatalf("Upload() error = %v", err)
				}

				h.failDestroy.Store(true)
				_, err = b.RetireCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID)
				if !errors.Is(err, errHSMDown) {
					t.Fatalf("RetireCert(HSM down) error = %v, want the HSM's", err)
				}
				if got, err := b.Cert(ctx, tn.ID, c.ID); err != nil || got.State != uploadcert.StateRetired {
					t.Fatalf("after a failed deletion, the certificate is %s (%v), want retired", got.State, err)
				}
				if _, err := h.HSM.EncryptionKey(ctx, c.KeyLabel); err != nil {
					t.Fatalf("the key pair after a failed deletion: %v, want it still there", err)
				}
				e.Clock.Add(time.Hour)
				_, err = b.Upload(ctx, nodetest.Rec(tn.ID), up())
				nodetest.WantErr(t, "Upload(retired, key pair still there)", err, byok.ErrNoUploadCert)

				h.failDestroy.Store(false)
				before := auditSize(t, e)
				got, err := b.RetireCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID)
				if err != nil || got.State != uploadcert.StateRetired {
					t.Fatalf("RetireCert(again) = %s, %v, want the retired certificate", got.State, err)
				}
				if _, err := h.HSM.EncryptionKey(ctx, c.KeyLabel); !errors.Is(err, hsm.ErrNotFound) {
					t.Errorf("the key pair after retiring again: %v, want ErrNotFound", err)
				}
				if h.destroyed.Load() != 1 {
					t.Errorf("%d key pairs deleted, want 1", h.destroyed.Load())
				}
				if n := auditSize(t, e) - before; n != 1 {
					t.Errorf("retiring again appended %d audit entries, want 1", n)
				}
				_, err = b.RetireCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID)
				nodetest.WantErr(t, "RetireCert(a third time)", err, byok.ErrCertState)
				_, err = b.Upload(ctx, nodetest.Rec(tn.ID), up())
				nodetest.WantErr(t, "Upload(retired, key pair deleted)", err, byok.ErrNoUploadCert)

				// A retirement that goes well deletes the key pair at once.
				c2, err := b.NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID, CSR: true})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.RetireCert(ctx, nodetest.Rec(tn.ID), tn.ID, c2.ID); err != nil {
					t.Fatalf("RetireCert(pending) error = %v", err)
				}
				if _, err := h.HSM.EncryptionKey(ctx, c2.KeyLabel); !errors.Is(err, hsm.ErrNotFound) {
					t.Errorf("the key pair of a retired pending certificate: %v, want ErrNotFound", err)
				}
			})
		}
	}
}

// auditSize is the number of entries in the node's audit log.
func auditSize(t *testing.T, e *nodetest.Node) uint64 {
	t.Helper()
	st, err := e.Store.AuditState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestFailedUploadLimit: after MaxFailedUploads uploads that failed in the
// regional HSM within FailedUploadWindow, uploads are refused with a
// *store.UploadLimitedError before the HSM is asked; accepted uploads and
// refusals that cost the HSM nothing do not count; the limit holds for a
// second node sharing the database and lifts when the window has passed.
// On both stores.
func TestFailedUploadLimit(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			e := nodetest.New(t, open(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
			h := &countingHSM{HSM: nodetest.World(t).Regions[nodetest.Region].HSM}
			b, peer := service(e, h), service(e.Peer(t, e.Store), h)
			tn := e.Tenant(t, tenant.EnvProduction)
			c, err := b.NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID})
			if err != nil {
				t.Fatal(err)
			}
			pub := uploadKey(t, c)
			good := func() byok.Upload {
				return upload(t, tn.ID, tenant.TypeData, pub, material(t), tenant.DerivationPBKDF2)
			}
			bad := func() byok.Upload {
				u := good()
				u.SHA256[0] ^= 1
				return u
			}
			// An accepted upload does not count, nor a refusal before the HSM.
			if _, err := b.Upload(ctx, nodetest.Rec(tn.ID), good()); err != nil {
				t.Fatalf("Upload() error = %v", err)
			}
			short := bad()
			short.Wrapped = short.Wrapped[1:]
			for i := 0; i < 2*byok.MaxFailedUploads; i++ {
				_, err := b.Upload(ctx, nodetest.Rec(tn.ID), short)
				nodetest.WantErr(t, "Upload(short ciphertext)", err, byok.ErrUploadRefused)
			}
			_, err = b.Upload(ctx, nodetest.Rec(tn.ID), good())
			nodetest.WantErr(t, "Upload(too soon after the last)", err, store.ErrRateLimited)
			e.Clock.Add(time.Hour)
			first := e.Clock.Now()
			for i := range byok.MaxFailedUploads {
				_, err := []*byok.Service{b, peer}[i%2].Upload(ctx, nodetest.Rec(tn.ID), bad())
				nodetest.WantErr(t, fmt.Sprintf("Upload(wrong hash) #%d", i+1), err, byok.ErrUploadRefused)
				e.Clock.Add(time.Second)
			}
			decrypts := h.decrypts.Load()
			if decrypts != 1+byok.MaxFailedUploads {
				t.Errorf("%d decryptions in the HSM, want %d", decrypts, 1+byok.MaxFailedUploads)
			}
			for _, node := range []*byok.Service{b, peer} {
				for _, u := range []byok.Upload{bad(), good()} {
					_, err := node.Upload(ctx, nodetest.Rec(tn.ID), u)
					var ul *store.UploadLimitedError
					if !errors.As(err, &ul) {
						t.Fatalf("Upload(after %d failures) error = %v, want a *store.UploadLimitedError", byok.MaxFailedUploads, err)
					}
					if want := store.Time(first.Add(byok.FailedUploadWindow)); !ul.Next.Equal(want) {
						t.Errorf("UploadLimitedError.Next = %s, want the first failure + the window = %s", ul.Next, want)
					}
				}
			}
			if got := h.decrypts.Load(); got != decrypts {
				t.Errorf("refused uploads made %d decryptions in the HSM, want none", got-decrypts)
			}
			// Another tenant is not limited.
			other := e.Tenant(t, tenant.EnvProduction)
			oc, err := b.NewCert(ctx, nodetest.Rec(other.ID), byok.CertRequest{Tenant: other.ID})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Upload(ctx, nodetest.Rec(other.ID), upload(t, other.ID, tenant.TypeData, uploadKey(t, oc), material(t), tenant.DerivationPBKDF2)); err != nil {
				t.Errorf("Upload(another tenant) error = %v", err)
			}
			// Once the first failure leaves the window, one more may start.
			e.Clock.Set(first.Add(byok.FailedUploadWindow))
			if _, err := b.Upload(ctx, nodetest.Rec(tn.ID), good()); err != nil {
				t.Errorf("Upload(when the first failure left the window) error = %v", err)
			}
		})
	}
}
