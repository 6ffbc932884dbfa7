package byok

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/lifecycle"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// The errors of BYOK uploads and upload certificates, for errors.Is.
var (
	// ErrUploadRefused: uploaded key material was refused: it does not
	// decrypt to exactly 32 bytes with RSA-OAEP under the certificate, or
	// its SHA-256 is not the one given. Nothing was stored.
	ErrUploadRefused = errors.New("byok: the uploaded key material was refused")
	// ErrDuplicateUpload: the tenant had this exact value before (in any
	// key type and state): a value is never accepted twice.
	ErrDuplicateUpload = errors.New("byok: this key material was uploaded before: the same value is never accepted twice for a tenant")
	// ErrOptOutDisabled: the tenant asked for derivation mode none, which an
	// operator has disabled for it.
	ErrOptOutDisabled = errors.New("byok: derivation opt-out (mode none) is disabled for this tenant by an operator")
	// ErrNoUploadCert: no active, unexpired upload certificate (or not the
	// one named).
	ErrNoUploadCert = errors.New("byok: no usable upload certificate")
	// ErrCertState: the upload certificate is not in the state the
	// operation needs (for example, completing one that is not pending).
	ErrCertState = errors.New("byok: the upload certificate is not in a state that allows this")
)

// DefaultCertValidity is how long an upload certificate is valid by default.
const DefaultCertValidity = 365 * 24 * time.Hour

// MaxCertValidity is the longest validity an upload certificate may have.
const MaxCertValidity = 2 * 365 * 24 * time.Hour

// MaxLiveCerts is how many pending or active upload certificates a tenant
// may hold at once.
const MaxLiveCerts = 5

// The failed-upload limit: at most MaxFailedUploads uploads of a tenant
// that cost the regional HSM a private-key operation and installed no key
// (they did not decrypt to 32 bytes with the given SHA-256, or were a
// duplicate, or lost a race for the rotation limit) in any
// FailedUploadWindow. Beyond it, uploads are refused before the HSM is
// asked (a *store.UploadLimitedError, which says when the next may start).
const (
	MaxFailedUploads   = 10
	FailedUploadWindow = 10 * time.Minute
)

// uploadKeyLabel is the regional HSM label of an upload certificate's key.
func uploadKeyLabel(certID string) string { return "strongroom-upload/" + certID }

// CertRequest asks for a new upload certificate.
type CertRequest struct {
	Tenant string // tenant ID
	// CSR: issue a certificate request for the tenant's CA to sign instead
	// of a self-signed certificate; the certificate stays pending until
	// CompleteCert.
	CSR bool
	// Validity of a self-signed certificate; 0 = DefaultCertValidity. At
	// most MaxCertValidity.
	Validity time.Duration
}

// NewCert makes an upload certificate for a tenant: an RSA-4096 key pair in
// the regional HSM (its private half never leaves it) and either a
// certificate self-signed by it (active at once) or a CSR signed by it
// (pending until the CA-signed certificate is uploaded with CompleteCert).
//
// A tenant holds at most MaxLiveCerts pending or active certificates
// (store.ErrTooManyCerts): the count is checked before the key pair is made,
// under a lock of the tenant on this node, and again by the store in the
// creating transaction, which holds across nodes. A key pair whose
// certificate is not stored, for whatever reason, is deleted again.
//
// rec is the request's audit entry; the store appends it with the new
// certificate.
func (s *Service) NewCert(ctx context.Context, rec *audit.Entry, req CertRequest) (uploadcert.Cert, error) {
	if err := store.ValidID("tenant", req.Tenant); err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: %w", err)
	}
	validity := req.Validity
	if validity == 0 {
		validity = DefaultCertValidity
	}
	if validity < time.Hour || validity > MaxCertValidity {
		return uploadcert.Cert{}, reason.New(store.ErrInvalid, "an upload certificate is valid for 1 hour to %d days, not %v",
			int(MaxCertValidity/(24*time.Hour)), validity)
	}
	t, err := s.st.TenantByID(ctx, req.Tenant)
	if err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: %w", err)
	}
	// Each certificate is a key pair in the shared regional HSM: bound how
	// many a tenant holds at once, before the slow key generation.
	unlock, err := s.certs.Lock(ctx, t.ID)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	defer unlock()
	if err := s.checkLiveCerts(ctx, t.ID); err != nil {
		return uploadcert.Cert{}, err
	}
	id := tenant.NewID()
	label := uploadKeyLabel(id)
	key, err := s.h.GenerateEncryptionKey(ctx, label, hsm.UseDecrypt)
	if err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: making the upload key pair in the HSM: %w", err)
	}
	c, err := s.storeCert(ctx, rec, t, id, key, req.CSR, validity)
	if err != nil {
		// The key pair is of no use without its certificate.
		if derr := key.Destroy(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, fmt.Errorf("byok: deleting the unused key pair %q from the HSM: %w", label, derr))
		}
		return uploadcert.Cert{}, err
	}
	return c, nil
}

// checkLiveCerts refuses a new certificate when the tenant holds
// MaxLiveCerts pending or active ones.
func (s *Service) checkLiveCerts(ctx context.Context, tenantID string) error {
	cs, err := s.Certs(ctx, tenantID)
	if err != nil {
		return err
	}
	live := 0
	for _, c := range cs {
		if c.State != uploadcert.StateRetired {
			live++
		}
	}
	if live >= MaxLiveCerts {
		return reason.New(store.ErrTooManyCerts, "the tenant holds %d pending or active upload certificates, the most allowed: retire one first",
			live)
	}
	return nil
}

// storeCert signs the certificate (or the request) of a new key pair and
// stores it.
func (s *Service) storeCert(ctx context.Context, rec *audit.Entry, t tenant.Tenant, id string, key hsm.EncryptionKey,
	csr bool, validity time.Duration) (uploadcert.Cert, error) {
	now := store.Time(s.now())
	c := uploadcert.Cert{ID: id, Tenant: t.ID, KeyLabel: key.Label(), Created: now}
	subj := uploadcert.Subject{TenantID: t.ID, TenantName: t.Name, CertID: id}
	var err error
	if csr {
		c.State = uploadcert.StatePending
		if c.CSR, err = uploadcert.Request(ctx, key, subj); err != nil {
			return uploadcert.Cert{}, fmt.Errorf("byok: signing the certificate request: %w", err)
		}
	} else {
		// X.509 times are whole seconds: store what the certificate says.
		c.State = uploadcert.StateActive
		c.NotBefore, c.NotAfter = now.Add(-time.Minute).Truncate(time.Second), now.Add(validity).Truncate(time.Second)
		if c.Certificate, err = uploadcert.SelfSigned(ctx, key, subj, c.NotBefore, c.NotAfter); err != nil {
			return uploadcert.Cert{}, fmt.Errorf("byok: signing the upload certificate: %w", err)
		}
	}
	c, err = s.st.CreateUploadCert(ctx, c, MaxLiveCerts, *rec)
	if err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: storing the upload certificate: %w", err)
	}
	return c, nil
}

// CompleteCert stores the certificate the tenant's CA signed for a pending
// upload certificate's request, and makes it active. The certificate must
// be for the request's key, not a CA, and valid now.
func (s *Service) CompleteCert(ctx context.Context, rec *audit.Entry, tenantID, certID string, signed []byte) (uploadcert.Cert, error) {
	c, err := s.cert(ctx, tenantID, certID)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	if c.State != uploadcert.StatePending {
		return uploadcert.Cert{}, reason.New(ErrCertState, "upload certificate %s is %s, and only a pending one (made with a CSR) takes a CA-signed certificate",
			c.ID, c.State)
	}
	key, err := s.certKey(ctx, c)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	parsed, err := uploadcert.ParseSigned(signed, key.RSAPublicKey(), s.now())
	if err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: %w: %w", store.ErrInvalid, err)
	}
	c, err = s.st.ActivateUploadCert(ctx, tenantID, certID, parsed.DER, parsed.NotBefore, parsed.NotAfter, *rec)
	if errors.Is(err, store.ErrConflict) {
		return uploadcert.Cert{}, reason.Wrap(ErrCertState, err, "upload certificate %s is no longer pending", certID)
	}
	if err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: activating upload certificate %s: %w", certID, err)
	}
	return c, nil
}

// RetireCert retires an upload certificate, then deletes its key pair from
// the regional HSM: uploads to it are refused from then on, and it holds no
// HSM key any more. If the deletion fails, the certificate stays retired
// and the error says so; retiring it again then retries the deletion (and
// records it, with rec). Retiring a certificate that is retired and whose
// key pair is gone is ErrCertState.
func (s *Service) RetireCert(ctx context.Context, rec *audit.Entry, tenantID, certID string) (uploadcert.Cert, error) {
	c, err := s.st.RetireUploadCert(ctx, tenantID, certID, s.now(), *rec)
	if errors.Is(err, store.ErrConflict) {
		return s.retireAgain(ctx, rec, tenantID, certID)
	}
	if err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: retiring upload certificate %s: %w", certID, err)
	}
	if _, err := s.destroyCertKey(context.WithoutCancel(ctx), c); err != nil {
		return uploadcert.Cert{}, err
	}
	return c, nil
}

// retireAgain is RetireCert of a retired certificate: it deletes the key
// pair an earlier retirement left in the HSM, if any.
func (s *Service) retireAgain(ctx context.Context, rec *audit.Entry, tenantID, certID string) (uploadcert.Cert, error) {
	c, err := s.cert(ctx, tenantID, certID)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	deleted, err := s.destroyCertKey(ctx, c)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	if !deleted {
		return uploadcert.Cert{}, reason.New(ErrCertState, "upload certificate %s is retired already", certID)
	}
	e := *rec
	e.Outcome = audit.OutcomeOK
	if e.Detail != "" {
		e.Detail += ": "
	}
	e.Detail += "retired already; deleted the key pair an earlier retirement left in the HSM"
	if _, err := s.st.AppendAudit(ctx, e); err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: recording the deletion of the key pair of upload certificate %s: %w", certID, err)
	}
	return c, nil
}

// destroyCertKey deletes the key pair of a retired certificate from the
// HSM, and reports whether there was one to delete.
func (s *Service) destroyCertKey(ctx context.Context, c uploadcert.Cert) (bool, error) {
	key, err := s.certKey(ctx, c)
	if errors.Is(err, hsm.ErrNotFound) {
		return false, nil
	}
	if err == nil {
		err = key.Destroy(ctx)
	}
	if errors.Is(err, hsm.ErrNotFound) {
		return false, nil // deleted meanwhile, by a concurrent retirement
	}
	if err != nil {
		return false, fmt.Errorf("byok: upload certificate %s is retired, but deleting its key pair from the HSM failed "+
			"(retire it again to retry): %w", c.ID, err)
	}
	return true, nil
}

// Certs lists a tenant's upload certificates, newest first.
func (s *Service) Certs(ctx context.Context, tenantID string) ([]uploadcert.Cert, error) {
	cs, err := s.st.UploadCerts(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("byok: listing upload certificates: %w", err)
	}
	return cs, nil
}

// Cert returns one of a tenant's upload certificates.
func (s *Service) Cert(ctx context.Context, tenantID, certID string) (uploadcert.Cert, error) {
	return s.cert(ctx, tenantID, certID)
}

// certKey returns the HSM key pair of an upload certificate. The label must
// be the one NewCert gives (a database edit cannot point an upload at
// another key of the regional HSM, such as its root key).
func (s *Service) certKey(ctx context.Context, c uploadcert.Cert) (hsm.EncryptionKey, error) {
	if c.KeyLabel != uploadKeyLabel(c.ID) {
		return nil, fmt.Errorf("byok: upload certificate %s names HSM key %q, not its own; refusing to use it", c.ID, c.KeyLabel)
	}
	key, err := s.h.EncryptionKey(ctx, c.KeyLabel)
	if err != nil {
		return nil, fmt.Errorf("byok: the key pair of upload certificate %s is not in this node's HSM: %w", c.ID, err)
	}
	return key, nil
}

func (s *Service) cert(ctx context.Context, tenantID, certID string) (uploadcert.Cert, error) {
	if err := store.ValidID("certificate", certID); err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: %w", err)
	}
	c, err := s.st.UploadCert(ctx, tenantID, certID)
	if errors.Is(err, store.ErrNotFound) {
		return uploadcert.Cert{}, reason.Wrap(store.ErrNotFound, err, "the tenant has no upload certificate %s", certID)
	}
	if err != nil {
		return uploadcert.Cert{}, fmt.Errorf("byok: upload certificate %s: %w", certID, err)
	}
	return c, nil
}

// usableCert is the certificate an upload goes to: the one named (it must
// be active and valid now), or else the newest such one.
func (s *Service) usableCert(ctx context.Context, tenantID, certID string) (uploadcert.Cert, error) {
	now := s.now()
	usable := func(c uploadcert.Cert) error {
		switch {
		case c.State != uploadcert.StateActive:
			return reason.New(ErrNoUploadCert, "upload certificate %s is %s: uploads go to an active one", c.ID, c.State)
		case now.Before(c.NotBefore):
			return reason.New(ErrNoUploadCert, "upload certificate %s is not valid before %s", c.ID, c.NotBefore.Format(time.RFC3339))
		case !now.Before(c.NotAfter):
			return reason.New(ErrNoUploadCert, "upload certificate %s expired at %s: make a new one", c.ID, c.NotAfter.Format(time.RFC3339))
		}
		return nil
	}
	if certID != "" {
		c, err := s.cert(ctx, tenantID, certID)
		if errors.Is(err, store.ErrNotFound) {
			return uploadcert.Cert{}, reason.Wrap(ErrNoUploadCert, err, "the tenant has no upload certificate %s", certID)
		}
		if err != nil {
			return uploadcert.Cert{}, err
		}
		return c, usable(c)
	}
	cs, err := s.Certs(ctx, tenantID)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	for _, c := range cs {
		if usable(c) == nil {
			return c, nil
		}
	}
	return uploadcert.Cert{}, reason.New(ErrNoUploadCert, "the tenant has no active, unexpired upload certificate: make one first")
}

// Upload is a tenant's own key material, encrypted to an upload
// certificate.
type Upload struct {
	Tenant string // tenant ID
	Type   string // key type
	// Cert is the upload certificate's ID; "" = the newest usable one.
	Cert string
	// Wrapped is RSA-OAEP(certificate key, 32 bytes), with Hash as both the
	// OAEP and the MGF1 hash.
	Wrapped []byte
	Hash    hsm.OAEPHash
	// SHA256 is the SHA-256 of the 32 plaintext bytes.
	SHA256 []byte
	// Derivation: tenant.DerivationPBKDF2 (the value is a tenant secret the
	// DEK is derived from) or tenant.DerivationNone (the value is the DEK).
	Derivation tenant.Derivation
}

// Upload accepts a tenant's own key material (BYOK, S11) and makes it the
// active key of its type, under the same rotation limits as Generate. It is
// accepted only if it decrypts, inside the regional HSM's key, to exactly 32
// bytes whose SHA-256 is u.SHA256 (compared in constant time), and only if
// the tenant never had the same value (keyed fingerprint). Anything refused
// changes nothing.
func (s *Service) Upload(ctx context.Context, rec *audit.Entry, u Upload) (tenant.Key, error) {
	if !u.Derivation.Valid() {
		return tenant.Key{}, reason.New(store.ErrInvalid, "derivation must be pbkdf2 or none, not %q", u.Derivation)
	}
	if len(u.SHA256) != sha256.Size {
		return tenant.Key{}, reason.New(store.ErrInvalid, "the SHA-256 of the key material is %d bytes, not %d", len(u.SHA256), sha256.Size)
	}
	if !u.Hash.Valid() {
		return tenant.Key{}, reason.New(store.ErrInvalid, "unknown RSA-OAEP hash: use sha256, sha512 or sha1")
	}
	if len(u.Wrapped) != hsm.RSABits/8 {
		return tenant.Key{}, reason.New(ErrUploadRefused, "the uploaded key material was refused: it is %d bytes; RSA-4096 ciphertexts are %d bytes",
			len(u.Wrapped), hsm.RSABits/8)
	}
	// The rotation limit, before the HSM's private-key operation (the
	// store decides again, under its lock).
	t, err := s.keys.Check(ctx, u.Tenant, u.Type)
	if err != nil {
		return tenant.Key{}, err
	}
	if u.Derivation == tenant.DerivationNone && !t.DerivationOptOut {
		return tenant.Key{}, reason.New(ErrOptOutDisabled, "derivation mode none is disabled for this tenant by an operator: upload with derivation pbkdf2")
	}
	info := s.h.Info()
	switch {
	case !info.SupportsOAEP(u.Hash):
		return tenant.Key{}, reason.New(hsm.ErrUnsupported, "this region's HSM cannot decrypt RSA-OAEP with %s; it supports %s",
			u.Hash, hashList(info.OAEPHashes))
	case u.Hash == hsm.OAEPSHA1 && (info.SupportsOAEP(hsm.OAEPSHA256) || info.SupportsOAEP(hsm.OAEPSHA512)):
		return tenant.Key{}, reason.New(hsm.ErrUnsupported, "RSA-OAEP with SHA-1 is accepted only where the HSM has nothing better; this one supports %s",
			hashList(info.OAEPHashes))
	}
	c, err := s.usableCert(ctx, u.Tenant, u.Cert)
	if err != nil {
		return tenant.Key{}, err
	}
	key, err := s.certKey(ctx, c)
	if err != nil {
		return tenant.Key{}, err
	}
	// The private-key operation below counts as a failure until a key is
	// installed; too many failures and the HSM is not asked.
	attempt, err := s.st.BeginUpload(ctx, u.Tenant, s.now(), store.UploadLimit{Max: MaxFailedUploads, Window: FailedUploadWindow})
	if err != nil {
		return tenant.Key{}, fmt.Errorf("byok: %w", err)
	}
	ts, err := decryptUpload(key, u, c.ID)
	if err != nil {
		return tenant.Key{}, err
	}
	defer ts.Destroy()
	k, err := s.keys.Install(ctx, rec, lifecycle.Material{Tenant: u.Tenant, Type: u.Type, Secret: ts,
		Source: tenant.SourceUploaded, Derivation: u.Derivation})
	if errors.Is(err, store.ErrDuplicate) {
		return tenant.Key{}, reason.Wrap(ErrDuplicateUpload, err, "this key material was uploaded to this tenant before: the same value is never accepted twice")
	}
	if err != nil {
		return tenant.Key{}, err
	}
	// Not a failure. If forgetting it fails, it counts as one until it
	// leaves the window: the key is installed all the same.
	_ = s.st.UploadAccepted(context.WithoutCancel(ctx), u.Tenant, attempt)
	return k, nil
}

// decryptUpload decrypts uploaded key material and checks its length and
// hash. Its errors say which check failed, never anything about the value:
// OAEP decryption is CCA-secure, so saying that it failed leaks nothing an
// attacker can use (unlike PKCS#1 v1.5, which is never tried).
func decryptUpload(key hsm.EncryptionKey, u Upload, certID string) (secret.Key, error) {
	pt, err := key.Decrypt(nil, u.Wrapped, &rsa.OAEPOptions{Hash: u.Hash.Hash(), MGFHash: u.Hash.Hash()})
	if err != nil {
		return secret.Key{}, reason.New(ErrUploadRefused, "the uploaded key material was refused: it does not decrypt with RSA-OAEP (%s, MGF1-%s) under upload certificate %s: "+
			"check the certificate, the hash, and that the padding is OAEP (PKCS#1 v1.5 is refused)", u.Hash, u.Hash, certID)
	}
	defer clear(pt)
	if len(pt) != secret.Size {
		return secret.Key{}, reason.New(ErrUploadRefused, "the uploaded key material was refused: it decrypts to %d bytes; it must be exactly %d", len(pt), secret.Size)
	}
	sum := sha256.Sum256(pt)
	defer clear(sum[:])
	if subtle.ConstantTimeCompare(sum[:], u.SHA256) != 1 {
		return secret.Key{}, reason.New(ErrUploadRefused, "the uploaded key material was refused: its SHA-256 is not the one given with it")
	}
	return secret.New(pt)
}

// hashList names OAEP hashes for a message: "sha256, sha512".
func hashList(hs []hsm.OAEPHash) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.String()
	}
	return strings.Join(names, ", ")
}
