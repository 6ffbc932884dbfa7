package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/backup"
	"github.com/strongroom-kms/strongroom/internal/derive"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The BYOK part of TestNoKeyMaterialLeaks (leak_test.go).

// byokUpload is one uploaded key version and what the test knows of it.
type byokUpload struct {
	key        api.Key
	value, dek []byte
	dec        []api.DecryptItem
	items      []api.EncryptItem
}

// byok runs the BYOK part of the lifecycle on acme: a tenant-admin token; a
// self-signed upload certificate; a value uploaded in mode pbkdf2 (data) and
// one in mode none (analytics); for each, the DEK computed here from the
// release, checked against the HPKE-delivered one and against ciphertexts
// opened here; the tenant's export key and the keys derived from it; then
// each key version exported to a backup file in the dev directory,
// destroyed, imported back, decrypted again. It returns the uploaded values
// by "acme/type/version".
func (r *leakRun) byok(op, app *client.Client, acme api.Tenant) map[string][]byte {
	t := r.t
	t.Helper()
	adminTok, err := op.CreateToken(r.ctx, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme", Name: "leak-test admin"})
	if err != nil {
		t.Fatalf("CreateToken(tenant-admin) error = %v", err)
	}
	r.addToken("acme tenant-admin token", adminTok.Secret)
	admin := r.client(adminTok.Secret)

	uc, err := admin.CreateUploadCert(r.ctx, "acme", api.CreateUploadCertRequest{ValidDays: 1})
	if err != nil {
		t.Fatalf("CreateUploadCert(acme) error = %v", err)
	}
	pub, der := parseUploadCert(t, uc)
	r.controls = append(r.controls, leakControl{leakSecret{name: "upload certificate (DER)", raw: der}, []string{"database table upload_certs "}})

	var ups []byokUpload
	uploaded := map[string][]byte{}
	for _, u := range []struct{ typ, mode string }{{"data", "pbkdf2"}, {"analytics", "none"}} {
		value := make([]byte, 32)
		rand.Read(value)
		r.add(fmt.Sprintf("uploaded value acme/%s (%s)", u.typ, u.mode), value, nil)
		k := r.upload(admin, pub, uc.ID, u.typ, u.mode, value)
		want := r.expectedDEK(acme.ID, k, value)
		if (u.mode == "none") != bytes.Equal(want, value) {
			t.Fatalf("the DEK of %s/%d in mode %s computed here equals the uploaded value: %v", k.Type, k.Version, u.mode, bytes.Equal(want, value))
		}
		r.add(fmt.Sprintf("DEK acme/%s/%d (computed in the test)", k.Type, k.Version), want, nil)
		for _, v := range []uint32{k.Version, 0} {
			if got := r.dek(app, "acme", k.Type, v); !bytes.Equal(got, want) {
				t.Fatalf("DEK(acme, %s, %d) delivered is not the DEK computed from the release and the uploaded value", k.Type, v)
			}
		}
		dec, items := r.encrypt(app, "acme", k.Type, 3)
		r.decrypt(app, "acme", dec, items)
		r.openLocally(want, dec, items)
		ups = append(ups, byokUpload{key: k, value: value, dek: want, dec: dec, items: items})
		uploaded[fmt.Sprintf("acme/%s/%d", k.Type, k.Version)] = value
	}

	ek, fileKey := r.exportKeySecrets("acme", acme.ID)
	for _, u := range ups {
		r.backupRoundTrip(admin, app, u, ek, fileKey)
	}
	return uploaded
}

// parseUploadCert returns the RSA-4096 public key and the DER of a
// self-signed upload certificate, checking its signature.
func parseUploadCert(t *testing.T, uc api.UploadCert) (*rsa.PublicKey, []byte) {
	t.Helper()
	block, _ := pem.Decode([]byte(uc.Certificate))
	if uc.State != "active" || block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CreateUploadCert() = state %q, certificate %q; want an active one with a PEM certificate", uc.State, uc.Certificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("x509.ParseCertificate(upload certificate) error = %v", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 4096 {
		t.Fatalf("the upload certificate's key is %T, want RSA-4096", cert.PublicKey)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("the upload certificate is not self-signed by its key: %v", err)
	}
	return pub, block.Bytes
}

// upload uploads value as acme's new key of type typ in derivation mode
// mode, encrypted here with RSA-OAEP SHA-256 to the upload certificate.
func (r *leakRun) upload(admin *client.Client, pub *rsa.PublicKey, certID, typ, mode string, value []byte) api.Key {
	r.t.Helper()
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, value, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.informational = append(r.informational, leakSecret{name: "RSA-OAEP ciphertext of the " + typ + " upload", raw: wrapped})
	sum := sha256.Sum256(value)
	k, err := admin.UploadKey(r.ctx, "acme", typ, api.UploadKeyRequest{
		Certificate: certID, Wrapped: wrapped, OAEPHash: "sha256", SHA256: hex.EncodeToString(sum[:]), Derivation: mode,
	})
	if err != nil {
		r.t.Fatalf("UploadKey(acme, %s, %s) error = %v", typ, mode, err)
	}
	if k.State != "active" || k.Source != "uploaded" || k.Derivation != mode {
		r.t.Fatalf("UploadKey(acme, %s, %s) = %+v, want an active uploaded key in mode %s", typ, mode, k, mode)
	}
	return k
}

// expectedDEK computes the DEK of key version k with tenant secret ts from
// the opened release, as the server must: PBKDF2 with its seed, salt and
// count, or ts itself in mode none.
func (r *leakRun) expectedDEK(tenantID string, k api.Key, ts []byte) []byte {
	r.t.Helper()
	if k.Release != r.rel.ID {
		r.t.Fatalf("key %s/%d names release %s, the test opened %s", k.Type, k.Version, k.Release, r.rel.ID)
	}
	mode, err := derive.ParseMode(k.Derivation)
	if err != nil {
		r.t.Fatal(err)
	}
	s, err := secret.New(ts)
	if err != nil {
		r.t.Fatal(err)
	}
	defer s.Destroy()
	d, err := derive.DEK(mode, derive.FromRelease(r.rel, tenantID, k.Type, k.Version, s))
	if err != nil {
		r.t.Fatalf("derive.DEK(%v) error = %v", mode, err)
	}
	defer d.Destroy()
	return bytes.Clone(d.Bytes())
}

// openLocally opens each ciphertext here with dek: the data is under it.
func (r *leakRun) openLocally(dek []byte, dec []api.DecryptItem, items []api.EncryptItem) {
	r.t.Helper()
	k, err := secret.New(dek)
	if err != nil {
		r.t.Fatal(err)
	}
	defer k.Destroy()
	for i, d := range dec {
		pt, err := envelope.Open(k, d.Ciphertext, d.Context)
		if err != nil || !bytes.Equal(pt, items[i].Plaintext) {
			r.t.Fatalf("envelope.Open(the DEK computed here, item %d) = %v, want the plaintext", i, err)
		}
	}
}

// exportKeySecrets unwraps a tenant's stored export key with the release's
// TWK, in the format internal/tenant/exportkey.go documents,
//
//	u8 version = 1 || u8<> release id || AES-256-GCM(TWK, export key, aad)
//	aad = u8<> "strongroom tenant export key v1" || u8<> tenant id || u8<> release id
//
// and records it and the keys derived from it (docs/backup-format.md,
// exportkey.go): the backup file key and the fingerprint key. It checks the
// fingerprint key against the stored fingerprint of every tenant secret
// the tenant has now. It returns the export key and the file key.
func (r *leakRun) exportKeySecrets(name, tenantID string) (ek, fileKey []byte) {
	t := r.t
	t.Helper()
	row, err := r.st.ExportKey(r.ctx, tenantID)
	if err != nil {
		t.Fatalf("ExportKey(%s) error = %v", name, err)
	}
	rel, err := tenant.WrappedRelease(row.Wrapped)
	if err != nil || rel != row.Release || rel != r.rel.ID {
		t.Fatalf("the stored export key of %s names release %q (%v), the row %q, the test opened %q", name, rel, err, row.Release, r.rel.ID)
	}
	var aad cryptobyte.Builder
	for _, f := range []string{"strongroom tenant export key v1", tenantID, rel} {
		aad.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(f)) })
	}
	ek, err = primitive.Open(r.rel.TWK, row.Wrapped[2+len(rel):], aad.BytesOrPanic())
	if err != nil || len(ek) != secret.Size {
		t.Fatalf("opening the stored export key of %s with the TWK: %d bytes, %v", name, len(ek), err)
	}
	r.add(name+" export key", ek, nil)
	r.controls = append(r.controls, leakControl{leakSecret{name: name + " export key, wrapped as stored", raw: row.Wrapped}, []string{"database table export_keys "}})

	fileKey, err = primitive.HKDF(ek, nil, []byte("strongroom key backup file key v1"), secret.Size)
	if err != nil {
		t.Fatal(err)
	}
	r.add(name+" backup file key", fileKey, nil)
	fpKey, err := primitive.HKDF(ek, []byte(tenantID), []byte("strongroom tenant secret fingerprint v1"), secret.Size)
	if err != nil {
		t.Fatal(err)
	}
	r.add(name+" fingerprint key", fpKey, nil)

	secrets := map[string][]byte{}
	r.collect(name, tenantID, secrets)
	ks, err := r.st.Keys(r.ctx, tenantID, "")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, k := range ks {
		if s, ok := secrets[fmt.Sprintf("%s/%s/%d", name, k.Type, k.Version)]; ok && k.Fingerprint != nil {
			checked++
			if !bytes.Equal(k.Fingerprint, primitive.HMAC(fpKey, s)) {
				t.Errorf("the stored fingerprint of %s/%s/%d is not HMAC(fingerprint key, secret): the export key or its labels are not what the test derives",
					name, k.Type, k.Version)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no stored fingerprint of %s to check the fingerprint key against", name)
	}
	return ek, fileKey
}

// backupRoundTrip exports an uploaded key version to a backup file in the
// dev directory, checks the file with the export key and, independently,
// with the file key, destroys the version, imports the file back and
// decrypts its data again.
func (r *leakRun) backupRoundTrip(admin, app *client.Client, u byokUpload, ek, fileKey []byte) {
	t := r.t
	t.Helper()
	typ, v := u.key.Type, u.key.Version
	b, err := admin.ExportKey(r.ctx, "acme", typ, v)
	if err != nil {
		t.Fatalf("ExportKey(acme, %s, %d) error = %v", typ, v, err)
	}
	name := fmt.Sprintf("acme-%s-%d.backup", typ, v)
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, []byte(b.Backup), 0o600); err != nil {
		t.Fatal(err)
	}
	r.backups = append(r.backups, name)
	kid := r.checkBackup([]byte(b.Backup), u.value, ek, fileKey)
	r.controls = append(r.controls, leakControl{leakSecret{name: "export key id in " + name, raw: kid[:]},
		[]string{"file " + name + " (while running)", "file " + name + " (after shutdown)"}})

	if _, err := admin.DestroyKey(r.ctx, "acme", typ, v, fmt.Sprintf("acme/%s/%d", typ, v)); err != nil {
		t.Fatalf("DestroyKey(acme/%s/%d) error = %v", typ, v, err)
	}
	r.decryptFails(app, "acme", u.dec, api.CodeKeyDestroyed)
	if _, err := app.DEK(r.ctx, "acme", typ, v, 0); err == nil {
		t.Errorf("DEK(acme/%s/%d) after destroy succeeded, want an error", typ, v)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := admin.ImportKey(r.ctx, "acme", file)
	if err != nil {
		t.Fatalf("ImportKey(%s) error = %v", name, err)
	}
	if k.Type != typ || k.Version != v || k.State != "archived" {
		t.Fatalf("ImportKey(%s) = %+v, want %s/%d archived", name, k, typ, v)
	}
	r.decrypt(app, "acme", u.dec, u.items)
	if got := r.dek(app, "acme", typ, v); !bytes.Equal(got, u.dek) {
		t.Fatalf("DEK(acme, %s, %d) after import is not the DEK before", typ, v)
	}
}

// checkBackup opens a backup file with the export key (backup.Open) and,
// independently, with the file key and the associated data of
// docs/backup-format.md (domain || 0x00 || binary header), and wants the
// uploaded value in both. It returns the file's export key id.
func (r *leakRun) checkBackup(file, value, ek, fileKey []byte) [8]byte {
	t := r.t
	t.Helper()
	f, err := backup.Parse(file)
	if err != nil {
		t.Fatalf("backup.Parse(exported file) error = %v", err)
	}
	ekKey, err := secret.New(ek)
	if err != nil {
		t.Fatal(err)
	}
	defer ekKey.Destroy()
	s, err := backup.Open(ekKey, f)
	if err != nil || !bytes.Equal(s.Bytes(), value) {
		t.Fatalf("backup.Open(the export key unwrapped here) = %v; want the uploaded value", err)
	}
	s.Destroy()
	block, _ := pem.Decode(file)
	header := block.Bytes[:len(block.Bytes)-len(f.Sealed)]
	aad := append([]byte("strongroom key backup v1\x00"), header...)
	fk, err := secret.New(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	defer fk.Destroy()
	pt, err := primitive.Open(fk, f.Sealed, aad)
	if err != nil || !bytes.Equal(pt, value) {
		t.Fatalf("opening the backup with the file key derived here: %v; want the uploaded value", err)
	}
	return f.Header.KeyID
}
