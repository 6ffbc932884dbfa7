package byok_test

import (
	"bytes"
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

	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// uploadKey returns the RSA public key of an upload certificate.
func uploadKey(t *testing.T, c uploadcert.Cert) *rsa.PublicKey {
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
func upload(t *testing.T, tenantID, typ string, pub *rsa.PublicKey, value []byte, d tenant.Derivation) byok.Upload {
	t.Helper()
	u := uploadWith(t, tenantID, typ, pub, value, hsm.OAEPSHA256)
	u.Derivation = d
	return u
}

// uploadWith is a well-formed upload of value to pub (derivation pbkdf2),
// encrypted with RSA-OAEP under oh.
func uploadWith(t *testing.T, tenantID, typ string, pub *rsa.PublicKey, value []byte, oh hsm.OAEPHash) byok.Upload {
	t.Helper()
	ct, err := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, pub, value, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(value)
	return byok.Upload{Tenant: tenantID, Type: typ, Wrapped: ct, Hash: oh, SHA256: sum[:], Derivation: tenant.DerivationPBKDF2}
}

func keysOf(t *testing.T, e *nodetest.Node, tenantID string) []tenant.Key {
	t.Helper()
	ks, err := e.Keys.Keys(ctx, tenantID, "")
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestUpload(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)

	sum := sha256.Sum256(make([]byte, 32))
	_, err := e.BYOK.Upload(ctx, nodetest.Rec(""), byok.Upload{Tenant: tn.ID, Type: tenant.TypeData, Wrapped: make([]byte, 512),
		Hash: hsm.OAEPSHA256, SHA256: sum[:], Derivation: tenant.DerivationPBKDF2})
	nodetest.WantErr(t, "Upload(before any certificate)", err, byok.ErrNoUploadCert)

	c, err := e.BYOK.NewCert(ctx, nodetest.Rec(""), byok.CertRequest{Tenant: tn.ID})
	if err != nil {
		t.Fatalf("NewCert() error = %v", err)
	}
	if c.State != uploadcert.StateActive || !c.NotAfter.Equal(store.Time(e.Clock.Now().Add(byok.DefaultCertValidity))) {
		t.Fatalf("NewCert() = %s until %s", c.State, c.NotAfter)
	}
	pub := uploadKey(t, c)

	// Mode pbkdf2: the DEK is derived from the value.
	v1 := material(t)
	k, err := e.BYOK.Upload(ctx, nodetest.Rec(""), upload(t, tn.ID, tenant.TypeData, pub, v1, tenant.DerivationPBKDF2))
	if err != nil {
		t.Fatalf("Upload(pbkdf2) error = %v", err)
	}
	if k.Version != 1 || k.State != tenant.StateActive || k.Source != tenant.SourceUploaded || k.Derivation != tenant.DerivationPBKDF2 {
		t.Fatalf("Upload(pbkdf2) = %+v", k)
	}
	dek, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dek.Bytes(), v1) {
		t.Error("mode pbkdf2: the DEK equals the uploaded value")
	}
	dek.Destroy()

	// Refusals change nothing.
	before := keysOf(t, e, tn.ID)
	e.Clock.Add(time.Hour)
	v2 := material(t)
	refuse := func(name string, u byok.Upload, want error) {
		t.Helper()
		if _, err := e.BYOK.Upload(ctx, nodetest.Rec(""), u); !errors.Is(err, want) {
			t.Errorf("Upload(%s) error = %v, want %v", name, err, want)
		}
		if got := keysOf(t, e, tn.ID); !slices.EqualFunc(got, before, keyEqual) {
			t.Errorf("Upload(%s) changed the keys: %v", name, got)
		}
	}
	wrongHash := upload(t, tn.ID, tenant.TypeData, pub, v2, tenant.DerivationPBKDF2)
	wrongHash.SHA256[0] ^= 1
	refuse("wrong hash", wrongHash, byok.ErrUploadRefused)
	for _, n := range []int{31, 33, 0} {
		u := upload(t, tn.ID, tenant.TypeData, pub, material(t)[:min(n, 32)], tenant.DerivationPBKDF2)
		if n == 33 {
			u = upload(t, tn.ID, tenant.TypeData, pub, append(material(t), 7), tenant.DerivationPBKDF2)
		}
		refuse(fmt.Sprintf("%d bytes", n), u, byok.ErrUploadRefused)
	}
	v15, err := rsa.EncryptPKCS1v15(rand.Reader, pub, v2)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := upload(t, tn.ID, tenant.TypeData, pub, v2, tenant.DerivationPBKDF2)
	pkcs1.Wrapped = v15
	refuse("PKCS#1 v1.5", pkcs1, byok.ErrUploadRefused)
	sha512 := upload(t, tn.ID, tenant.TypeData, pub, v2, tenant.DerivationPBKDF2)
	sha512.Hash = hsm.OAEPSHA512 // encrypted with SHA-256, claimed SHA-512
	refuse("hash mismatch", sha512, byok.ErrUploadRefused)
	sha1 := upload(t, tn.ID, tenant.TypeData, pub, v2, tenant.DerivationPBKDF2)
	sha1.Hash = hsm.OAEPSHA1 // the soft HSM has better: SHA-1 is refused
	refuse("SHA-1 where SHA-256 exists", sha1, hsm.ErrUnsupported)
	refuse("same value again", upload(t, tn.ID, tenant.TypeData, pub, v1, tenant.DerivationPBKDF2), byok.ErrDuplicateUpload)
	refuse("same value, other type", upload(t, tn.ID, tenant.TypeAnalytics, pub, v1, tenant.DerivationNone), byok.ErrDuplicateUpload)
	short := upload(t, tn.ID, tenant.TypeData, pub, v2, tenant.DerivationPBKDF2)
	short.Wrapped = short.Wrapped[1:]
	refuse("short ciphertext", short, byok.ErrUploadRefused)

	// The operator forbids opting out.
	if _, err := e.Tenants.SetDerivationOptOut(ctx, nodetest.Rec(tn.ID), tn.ID, false); err != nil {
		t.Fatal(err)
	}
	refuse("opt-out disabled", upload(t, tn.ID, tenant.TypeData, pub, v2, tenant.DerivationNone), byok.ErrOptOutDisabled)
	if _, err := e.Tenants.SetDerivationOptOut(ctx, nodetest.Rec(tn.ID), tn.ID, true); err != nil {
		t.Fatal(err)
	}

	// Mode none: the value is the DEK, byte for byte; v1 is archived.
	k, err = e.BYOK.Upload(ctx, nodetest.Rec(""), upload(t, tn.ID, tenant.TypeData, pub, v2, tenant.DerivationNone))
	if err != nil {
		t.Fatalf("Upload(none) error = %v", err)
	}
	if k.Version != 2 || k.Derivation != tenant.DerivationNone {
		t.Fatalf("Upload(none) = %+v", k)
	}
	dek, _, err = e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dek.Bytes(), v2) {
		t.Error("mode none: the DEK is not the uploaded value")
	}
	dek.Destroy()
	if ks := keysOf(t, e, tn.ID); len(ks) != 2 || ks[0].State != tenant.StateArchived {
		t.Errorf("keys after two uploads = %+v", ks)
	}

	// The rotation limit applies to uploads as to generate.
	_, err = e.BYOK.Upload(ctx, nodetest.Rec(""), upload(t, tn.ID, tenant.TypeData, pub, material(t), tenant.DerivationPBKDF2))
	nodetest.WantErr(t, "Upload(too soon)", err, store.ErrRateLimited)

	// Another tenant cannot use this tenant's certificate, active as it is.
	other := e.Tenant(t, tenant.EnvProduction)
	u := upload(t, other.ID, tenant.TypeData, pub, material(t), tenant.DerivationPBKDF2)
	u.Cert = c.ID
	_, err = e.BYOK.Upload(ctx, nodetest.Rec(""), u)
	nodetest.WantErr(t, "Upload(another tenant's certificate)", err, byok.ErrNoUploadCert)
	if ks := keysOf(t, e, other.ID); len(ks) != 0 {
		t.Errorf("the other tenant has keys: %+v", ks)
	}

	// A retired certificate takes no uploads; nor an expired one.
	e.Clock.Add(time.Hour)
	if _, err := e.BYOK.RetireCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.BYOK.Upload(ctx, nodetest.Rec(""), upload(t, tn.ID, tenant.TypeData, pub, material(t), tenant.DerivationPBKDF2))
	nodetest.WantErr(t, "Upload(retired certificate)", err, byok.ErrNoUploadCert)
	_, err = e.BYOK.RetireCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID)
	nodetest.WantErr(t, "RetireCert(twice)", err, byok.ErrCertState)

}

func TestUploadCertCSRFlow(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvSandbox)
	c, err := e.BYOK.NewCert(ctx, nodetest.Rec(""), byok.CertRequest{Tenant: tn.ID, CSR: true})
	if err != nil {
		t.Fatalf("NewCert(CSR) error = %v", err)
	}
	if c.State != uploadcert.StatePending || c.CSR == nil || c.Certificate != nil {
		t.Fatalf("NewCert(CSR) = %+v", c)
	}
	csr, err := x509.ParseCertificateRequest(c.CSR)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("the CSR does not parse or verify: %v", err)
	}
	_, err = e.BYOK.Upload(ctx, nodetest.Rec(""), upload(t, tn.ID, tenant.TypeData, csr.PublicKey.(*rsa.PublicKey), material(t), tenant.DerivationPBKDF2))
	nodetest.WantErr(t, "Upload(pending certificate)", err, byok.ErrNoUploadCert)

	// The tenant's CA signs the request.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tenant CA"},
		NotBefore: e.Clock.Now().Add(-time.Hour), NotAfter: e.Clock.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	sign := func(pub crypto.PublicKey) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject,
			NotBefore: e.Clock.Now().Add(-time.Minute), NotAfter: e.Clock.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageKeyEncipherment}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	// A certificate for another key is refused.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = e.BYOK.CompleteCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID, sign(otherKey.Public()))
	nodetest.WantErr(t, "CompleteCert(another key)", err, store.ErrInvalid)

	done, err := e.BYOK.CompleteCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID, sign(csr.PublicKey))
	if err != nil {
		t.Fatalf("CompleteCert() error = %v", err)
	}
	if done.State != uploadcert.StateActive || done.Certificate == nil {
		t.Fatalf("CompleteCert() = %+v", done)
	}
	_, err = e.BYOK.CompleteCert(ctx, nodetest.Rec(tn.ID), tn.ID, c.ID, sign(csr.PublicKey))
	nodetest.WantErr(t, "CompleteCert(twice)", err, byok.ErrCertState)
	if _, err := e.BYOK.Upload(ctx, nodetest.Rec(""), upload(t, tn.ID, tenant.TypeData, csr.PublicKey.(*rsa.PublicKey), material(t), tenant.DerivationPBKDF2)); err != nil {
		t.Fatalf("Upload(CA-signed certificate) error = %v", err)
	}
	// Past the CA's NotAfter, the certificate takes no uploads.
	e.Clock.Add(25 * time.Hour)
	_, err = e.BYOK.Upload(ctx, nodetest.Rec(""), upload(t, tn.ID, tenant.TypeData, csr.PublicKey.(*rsa.PublicKey), material(t), tenant.DerivationPBKDF2))
	nodetest.WantErr(t, "Upload(expired certificate)", err, byok.ErrNoUploadCert)
}

func TestExportImport(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	other := e.Tenant(t, tenant.EnvProduction)
	c := map[string]string{"table": "t"}

	e.Generate(t, tn.ID, tenant.TypeData)
	ct, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("before the destroy"), c)
	if err != nil {
		t.Fatal(err)
	}
	file, k, err := e.BYOK.Export(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	if err != nil {
		t.Fatalf("Export() error = %v", err)
	}
	if k.Version != 1 {
		t.Fatalf("Export() key = %+v", k)
	}
	e.Clock.Add(time.Hour)
	e.Generate(t, tn.ID, tenant.TypeData) // v2 active, v1 archived

	// While v1 exists, its backup is refused.
	_, err = e.BYOK.Import(ctx, nodetest.Rec(tn.ID), tn.ID, file)
	nodetest.WantErr(t, "Import(original exists)", err, byok.ErrImportRefused)
	// Another tenant's import is refused, destroyed or not.
	_, err = e.BYOK.Import(ctx, nodetest.Rec(other.ID), other.ID, file)
	nodetest.WantErr(t, "Import(another tenant)", err, byok.ErrImportRefused)

	if _, err := e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.Data.Decrypt(ctx, nil, tn.ID, ct, c)
	nodetest.WantErr(t, "Decrypt(destroyed)", err, tenant.ErrKeyDestroyed)
	_, _, err = e.BYOK.Export(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1})
	nodetest.WantErr(t, "Export(destroyed)", err, tenant.ErrKeyDestroyed)
	_, err = e.BYOK.Import(ctx, nodetest.Rec(other.ID), other.ID, file)
	nodetest.WantErr(t, "Import(another tenant, after destroy)", err, byok.ErrImportRefused)
	tampered := bytes.Clone(file)
	tampered[len(tampered)/2] ^= 1
	if _, err := e.BYOK.Import(ctx, nodetest.Rec(tn.ID), tn.ID, tampered); err == nil {
		t.Error("Import(tampered) succeeded")
	}

	got, err := e.BYOK.Import(ctx, nodetest.Rec(tn.ID), tn.ID, file)
	if err != nil {
		t.Fatalf("Import() error = %v", err)
	}
	if got.Version != 1 || got.State != tenant.StateArchived || !got.Destroyed.IsZero() {
		t.Fatalf("Import() = %+v, want v1 archived", got)
	}
	pt, k, err := e.Data.Decrypt(ctx, nil, tn.ID, ct, c)
	if err != nil || string(pt) != "before the destroy" || k.Version != 1 {
		t.Fatalf("Decrypt(after import) = %q, v%d, %v", pt, k.Version, err)
	}
	if a, err := e.Store.ActiveKey(ctx, tn.ID, tenant.TypeData); err != nil || a.Version != 2 {
		t.Errorf("active key after import = v%d, %v, want v2", a.Version, err)
	}
	_, err = e.BYOK.Import(ctx, nodetest.Rec(tn.ID), tn.ID, file)
	nodetest.WantErr(t, "Import(twice)", err, byok.ErrImportRefused)

	// A backup survives a new release: export a key of release 1, rotate
	// under release 2, destroy, import.
	e.Install(t, nodetest.Release2)
	e.Clock.Add(time.Hour)
	k3 := e.Generate(t, tn.ID, tenant.TypeData)
	if k3.Release != nodetest.Release2.ID {
		t.Fatalf("v3 under release %s, want %s", k3.Release, nodetest.Release2.ID)
	}
	file2, _, err := e.BYOK.Export(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.BYOK.Import(ctx, nodetest.Rec(tn.ID), tn.ID, file2); err != nil {
		t.Fatalf("Import(v2 after a new release) error = %v", err)
	}
}

func keyEqual(a, b tenant.Key) bool {
	return a.Tenant == b.Tenant && a.Type == b.Type && a.Version == b.Version && a.State == b.State &&
		a.Created.Equal(b.Created)
}
