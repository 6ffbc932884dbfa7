package tenant_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// uploadKey returns the RSA public key of an upload certificate.
func uploadKey(t *testing.T, c store.UploadCert) *rsa.PublicKey {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Certificate)
	if err != nil {
		t.Fatalf("ParseCertificate() error = %v", err)
	}
	return cert.PublicKey.(*rsa.PublicKey)
}

// material is 32 fresh random bytes.
func material(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// upload is a well-formed upload of value to pub.
func upload(t *testing.T, tenantID, typ string, pub *rsa.PublicKey, value []byte, d store.Derivation) tenant.Upload {
	t.Helper()
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, value, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(value)
	return tenant.Upload{Tenant: tenantID, Type: typ, Wrapped: ct, Hash: hsm.OAEPSHA256, SHA256: sum[:], Derivation: d}
}

func keysOf(t *testing.T, e *env, tenantID string) []store.Key {
	t.Helper()
	ks, err := e.svc.Keys(ctx, tenantID, "")
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestUpload(t *testing.T) {
	e := newEnv(t, openSQLite(t), shortPolicy(time.Hour, 50), rel1)
	tn := e.tenant(t, store.EnvProduction)

	sum := sha256.Sum256(make([]byte, 32))
	_, err := e.svc.Upload(ctx, tenant.Upload{Tenant: tn.ID, Type: store.TypeData, Wrapped: make([]byte, 512),
		Hash: hsm.OAEPSHA256, SHA256: sum[:], Derivation: store.DerivationPBKDF2})
	wantErr(t, "Upload(before any certificate)", err, tenant.ErrNoUploadCert)

	c, err := e.svc.NewCert(ctx, tenant.CertRequest{Tenant: tn.ID})
	if err != nil {
		t.Fatalf("NewCert() error = %v", err)
	}
	if c.State != store.CertActive || !c.NotAfter.Equal(store.Time(e.clock.Now().Add(tenant.DefaultCertValidity))) {
		t.Fatalf("NewCert() = %s until %s", c.State, c.NotAfter)
	}
	pub := uploadKey(t, c)

	// Mode pbkdf2: the DEK is derived from the value.
	v1 := material(t)
	k, err := e.svc.Upload(ctx, upload(t, tn.ID, store.TypeData, pub, v1, store.DerivationPBKDF2))
	if err != nil {
		t.Fatalf("Upload(pbkdf2) error = %v", err)
	}
	if k.Version != 1 || k.State != store.StateActive || k.Source != store.SourceUploaded || k.Derivation != store.DerivationPBKDF2 {
		t.Fatalf("Upload(pbkdf2) = %+v", k)
	}
	dek, _, err := e.svc.DEK(ctx, tn.ID, store.TypeData, 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dek.Bytes(), v1) {
		t.Error("mode pbkdf2: the DEK equals the uploaded value")
	}
	dek.Destroy()

	// Refusals change nothing.
	before := keysOf(t, e, tn.ID)
	e.clock.Add(time.Hour)
	v2 := material(t)
	refuse := func(name string, u tenant.Upload, want error) {
		t.Helper()
		if _, err := e.svc.Upload(ctx, u); !errors.Is(err, want) {
			t.Errorf("Upload(%s) error = %v, want %v", name, err, want)
		}
		if got := keysOf(t, e, tn.ID); !slices.EqualFunc(got, before, keyEqual) {
			t.Errorf("Upload(%s) changed the keys: %v", name, got)
		}
	}
	wrongHash := upload(t, tn.ID, store.TypeData, pub, v2, store.DerivationPBKDF2)
	wrongHash.SHA256[0] ^= 1
	refuse("wrong hash", wrongHash, tenant.ErrUploadRefused)
	for _, n := range []int{31, 33, 0} {
		u := upload(t, tn.ID, store.TypeData, pub, material(t)[:min(n, 32)], store.DerivationPBKDF2)
		if n == 33 {
			u = upload(t, tn.ID, store.TypeData, pub, append(material(t), 7), store.DerivationPBKDF2)
		}
		refuse(fmt.Sprintf("%d bytes", n), u, tenant.ErrUploadRefused)
	}
	v15, err := rsa.EncryptPKCS1v15(rand.Reader, pub, v2)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := upload(t, tn.ID, store.TypeData, pub, v2, store.DerivationPBKDF2)
	pkcs1.Wrapped = v15
	refuse("PKCS#1 v1.5", pkcs1, tenant.ErrUploadRefused)
	sha512 := upload(t, tn.ID, store.TypeData, pub, v2, store.DerivationPBKDF2)
	sha512.Hash = hsm.OAEPSHA512 // encrypted with SHA-256, claimed SHA-512
	refuse("hash mismatch", sha512, tenant.ErrUploadRefused)
	sha1 := upload(t, tn.ID, store.TypeData, pub, v2, store.DerivationPBKDF2)
	sha1.Hash = hsm.OAEPSHA1 // the soft HSM has better: SHA-1 is refused
	refuse("SHA-1 where SHA-256 exists", sha1, hsm.ErrUnsupported)
	refuse("same value again", upload(t, tn.ID, store.TypeData, pub, v1, store.DerivationPBKDF2), tenant.ErrDuplicateUpload)
	refuse("same value, other type", upload(t, tn.ID, store.TypeAnalytics, pub, v1, store.DerivationNone), tenant.ErrDuplicateUpload)
	short := upload(t, tn.ID, store.TypeData, pub, v2, store.DerivationPBKDF2)
	short.Wrapped = short.Wrapped[1:]
	refuse("short ciphertext", short, tenant.ErrUploadRefused)

	// The operator forbids opting out.
	if _, err := e.svc.SetDerivationOptOut(ctx, tn.ID, false); err != nil {
		t.Fatal(err)
	}
	refuse("opt-out disabled", upload(t, tn.ID, store.TypeData, pub, v2, store.DerivationNone), tenant.ErrOptOutDisabled)
	if _, err := e.svc.SetDerivationOptOut(ctx, tn.ID, true); err != nil {
		t.Fatal(err)
	}

	// Mode none: the value is the DEK, byte for byte; v1 is archived.
	k, err = e.svc.Upload(ctx, upload(t, tn.ID, store.TypeData, pub, v2, store.DerivationNone))
	if err != nil {
		t.Fatalf("Upload(none) error = %v", err)
	}
	if k.Version != 2 || k.Derivation != store.DerivationNone {
		t.Fatalf("Upload(none) = %+v", k)
	}
	dek, _, err = e.svc.DEK(ctx, tn.ID, store.TypeData, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dek.Bytes(), v2) {
		t.Error("mode none: the DEK is not the uploaded value")
	}
	dek.Destroy()
	if ks := keysOf(t, e, tn.ID); len(ks) != 2 || ks[0].State != store.StateArchived {
		t.Errorf("keys after two uploads = %+v", ks)
	}

	// The rotation limit applies to uploads as to generate.
	_, err = e.svc.Upload(ctx, upload(t, tn.ID, store.TypeData, pub, material(t), store.DerivationPBKDF2))
	wantErr(t, "Upload(too soon)", err, store.ErrRateLimited)

	// Another tenant cannot use this tenant's certificate, active as it is.
	other := e.tenant(t, store.EnvProduction)
	u := upload(t, other.ID, store.TypeData, pub, material(t), store.DerivationPBKDF2)
	u.Cert = c.ID
	_, err = e.svc.Upload(ctx, u)
	wantErr(t, "Upload(another tenant's certificate)", err, tenant.ErrNoUploadCert)
	if ks := keysOf(t, e, other.ID); len(ks) != 0 {
		t.Errorf("the other tenant has keys: %+v", ks)
	}

	// A retired certificate takes no uploads; nor an expired one.
	e.clock.Add(time.Hour)
	if _, err := e.svc.RetireCert(ctx, tn.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Upload(ctx, upload(t, tn.ID, store.TypeData, pub, material(t), store.DerivationPBKDF2))
	wantErr(t, "Upload(retired certificate)", err, tenant.ErrNoUploadCert)
	_, err = e.svc.RetireCert(ctx, tn.ID, c.ID)
	wantErr(t, "RetireCert(twice)", err, tenant.ErrCertState)

}

func TestUploadCertCSRFlow(t *testing.T) {
	e := newEnv(t, openSQLite(t), shortPolicy(time.Hour, 50), rel1)
	tn := e.tenant(t, store.EnvSandbox)
	c, err := e.svc.NewCert(ctx, tenant.CertRequest{Tenant: tn.ID, CSR: true})
	if err != nil {
		t.Fatalf("NewCert(CSR) error = %v", err)
	}
	if c.State != store.CertPending || c.CSR == nil || c.Certificate != nil {
		t.Fatalf("NewCert(CSR) = %+v", c)
	}
	csr, err := x509.ParseCertificateRequest(c.CSR)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("the CSR does not parse or verify: %v", err)
	}
	_, err = e.svc.Upload(ctx, upload(t, tn.ID, store.TypeData, csr.PublicKey.(*rsa.PublicKey), material(t), store.DerivationPBKDF2))
	wantErr(t, "Upload(pending certificate)", err, tenant.ErrNoUploadCert)

	// The tenant's CA signs the request.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tenant CA"},
		NotBefore: e.clock.Now().Add(-time.Hour), NotAfter: e.clock.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	sign := func(pub crypto.PublicKey) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject,
			NotBefore: e.clock.Now().Add(-time.Minute), NotAfter: e.clock.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageKeyEncipherment}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	// A certificate for another key is refused.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = e.svc.CompleteCert(ctx, tn.ID, c.ID, sign(otherKey.Public()))
	wantErr(t, "CompleteCert(another key)", err, store.ErrInvalid)

	done, err := e.svc.CompleteCert(ctx, tn.ID, c.ID, sign(csr.PublicKey))
	if err != nil {
		t.Fatalf("CompleteCert() error = %v", err)
	}
	if done.State != store.CertActive || done.Certificate == nil {
		t.Fatalf("CompleteCert() = %+v", done)
	}
	_, err = e.svc.CompleteCert(ctx, tn.ID, c.ID, sign(csr.PublicKey))
	wantErr(t, "CompleteCert(twice)", err, tenant.ErrCertState)
	if _, err := e.svc.Upload(ctx, upload(t, tn.ID, store.TypeData, csr.PublicKey.(*rsa.PublicKey), material(t), store.DerivationPBKDF2)); err != nil {
		t.Fatalf("Upload(CA-signed certificate) error = %v", err)
	}
	// Past the CA's NotAfter, the certificate takes no uploads.
	e.clock.Add(25 * time.Hour)
	_, err = e.svc.Upload(ctx, upload(t, tn.ID, store.TypeData, csr.PublicKey.(*rsa.PublicKey), material(t), store.DerivationPBKDF2))
	wantErr(t, "Upload(expired certificate)", err, tenant.ErrNoUploadCert)
}

func TestExportImport(t *testing.T) {
	e := newEnv(t, openSQLite(t), shortPolicy(time.Hour, 50), rel1)
	tn := e.tenant(t, store.EnvProduction)
	other := e.tenant(t, store.EnvProduction)
	c := map[string]string{"table": "t"}

	e.generate(t, tn.ID, store.TypeData)
	ct, _, err := e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("before the destroy"), c)
	if err != nil {
		t.Fatal(err)
	}
	file, k, err := e.svc.Export(ctx, tn.ID, store.TypeData, 1)
	if err != nil {
		t.Fatalf("Export() error = %v", err)
	}
	if k.Version != 1 {
		t.Fatalf("Export() key = %+v", k)
	}
	e.clock.Add(time.Hour)
	e.generate(t, tn.ID, store.TypeData) // v2 active, v1 archived

	// While v1 exists, its backup is refused.
	_, err = e.svc.Import(ctx, tn.ID, file)
	wantErr(t, "Import(original exists)", err, tenant.ErrImportRefused)
	// Another tenant's import is refused, destroyed or not.
	_, err = e.svc.Import(ctx, other.ID, file)
	wantErr(t, "Import(another tenant)", err, tenant.ErrImportRefused)

	if _, err := e.svc.Destroy(ctx, tn.ID, store.TypeData, 1); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Decrypt(ctx, tn.ID, ct, c)
	wantErr(t, "Decrypt(destroyed)", err, tenant.ErrKeyDestroyed)
	_, _, err = e.svc.Export(ctx, tn.ID, store.TypeData, 1)
	wantErr(t, "Export(destroyed)", err, tenant.ErrKeyDestroyed)
	_, err = e.svc.Import(ctx, other.ID, file)
	wantErr(t, "Import(another tenant, after destroy)", err, tenant.ErrImportRefused)
	tampered := bytes.Clone(file)
	tampered[len(tampered)/2] ^= 1
	if _, err := e.svc.Import(ctx, tn.ID, tampered); err == nil {
		t.Error("Import(tampered) succeeded")
	}

	got, err := e.svc.Import(ctx, tn.ID, file)
	if err != nil {
		t.Fatalf("Import() error = %v", err)
	}
	if got.Version != 1 || got.State != store.StateArchived || !got.Destroyed.IsZero() {
		t.Fatalf("Import() = %+v, want v1 archived", got)
	}
	pt, k, err := e.svc.Decrypt(ctx, tn.ID, ct, c)
	if err != nil || string(pt) != "before the destroy" || k.Version != 1 {
		t.Fatalf("Decrypt(after import) = %q, v%d, %v", pt, k.Version, err)
	}
	if a, err := e.st.ActiveKey(ctx, tn.ID, store.TypeData); err != nil || a.Version != 2 {
		t.Errorf("active key after import = v%d, %v, want v2", a.Version, err)
	}
	_, err = e.svc.Import(ctx, tn.ID, file)
	wantErr(t, "Import(twice)", err, tenant.ErrImportRefused)

	// A backup survives a new release: export a key of release 1, rotate
	// under release 2, destroy, import.
	e.load(t, rel2)
	e.clock.Add(time.Hour)
	k3 := e.generate(t, tn.ID, store.TypeData)
	if k3.Release != rel2.id {
		t.Fatalf("v3 under release %s, want %s", k3.Release, rel2.id)
	}
	file2, _, err := e.svc.Export(ctx, tn.ID, store.TypeData, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Destroy(ctx, tn.ID, store.TypeData, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Import(ctx, tn.ID, file2); err != nil {
		t.Fatalf("Import(v2 after a new release) error = %v", err)
	}
}

// TestEvictAcrossNodes: a destroy on one node evicts the DEK that another
// node sharing the database has cached, by notification.
func TestEvictAcrossNodes(t *testing.T) {
	for name, open := range map[string]func(testing.TB) (store.Store, store.Store){
		"sqlite": func(tb testing.TB) (store.Store, store.Store) { s := openSQLite(tb); return s, s },
		"postgres": func(tb testing.TB) (store.Store, store.Store) {
			dsn := storetest.Postgres(tb)
			return openPostgresDSN(tb, dsn), openPostgresDSN(tb, dsn)
		},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := open(t)
			e := newEnv(t, a, shortPolicy(time.Hour, 50), rel1)
			eb := e.nodeOn(t, b)
			watch, stop := context.WithCancel(ctx)
			defer stop()
			if err := eb.svc.EvictDestroyed(watch, time.Hour, nil); err != nil {
				t.Fatalf("EvictDestroyed() error = %v", err)
			}
			tn := e.tenant(t, store.EnvProduction)
			e.generate(t, tn.ID, store.TypeData)
			c := map[string]string{"k": "v"}
			ct, _, err := eb.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("x"), c)
			if err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("dek/%s/data/1", tn.ID)
			if _, ok := eb.cache.Get(id); !ok {
				t.Fatal("node B did not cache the DEK")
			}
			start := time.Now()
			if _, err := e.svc.Destroy(ctx, tn.ID, store.TypeData, 1); err != nil {
				t.Fatal(err)
			}
			// Node B refuses at once: it reads the key's state first.
			_, _, err = eb.svc.Decrypt(ctx, tn.ID, ct, c)
			wantErr(t, "node B Decrypt(after destroy on A)", err, tenant.ErrKeyDestroyed)
			// And its cached copy is gone by notification, well within the
			// documented bound (the re-check is an hour away here).
			for {
				if _, ok := eb.cache.Get(id); !ok {
					break
				}
				if time.Since(start) > 5*time.Second {
					t.Fatal("node B still holds the DEK 5 s after the destroy")
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("node B evicted the DEK %v after the destroy on node A", time.Since(start))
		})
	}
}

func keyEqual(a, b store.Key) bool {
	return a.Tenant == b.Tenant && a.Type == b.Type && a.Version == b.Version && a.State == b.State &&
		a.Created.Equal(b.Created)
}
