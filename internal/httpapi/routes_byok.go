package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// BYOK routes (S10–S12): tenant settings, upload certificates, uploads,
// export and import. Their policies are in the route table (routes.go).

func (s *server) setTenant(c *Call) (any, error) {
	req := c.Body.(*api.SetTenantRequest)
	if req.DerivationOptOut == nil {
		return nil, badRequestf("nothing to change: set derivation_opt_out")
	}
	t, err := s.Tenants.SetDerivationOptOut(c.Context(), c.Audit, c.Tenant.ID, *req.DerivationOptOut)
	if err != nil {
		return nil, err
	}
	return tenantOf(t), nil
}

func certOf(t tenant.Tenant, uc uploadcert.Cert) api.UploadCert {
	out := api.UploadCert{ID: uc.ID, Tenant: t.Name, State: string(uc.State), Created: uc.Created}
	if uc.Certificate != nil {
		out.Certificate = string(uploadcert.EncodeCertificate(uc.Certificate))
		sum := sha256.Sum256(uc.Certificate)
		out.Fingerprint = hex.EncodeToString(sum[:])
	}
	if uc.CSR != nil {
		out.CSR = string(uploadcert.EncodeCSR(uc.CSR))
	}
	if !uc.NotBefore.IsZero() {
		nb, na := uc.NotBefore, uc.NotAfter
		out.NotBefore, out.NotAfter = &nb, &na
	}
	if !uc.Retired.IsZero() {
		r := uc.Retired
		out.Retired = &r
	}
	return out
}

func (s *server) createUploadCert(c *Call) (any, error) {
	req := c.Body.(*api.CreateUploadCertRequest)
	if req.ValidDays < 0 || req.ValidDays > int(byok.MaxCertValidity/(24*time.Hour)) {
		return nil, badRequestf("valid_days %d: use 1 to %d, or leave it out for %d",
			req.ValidDays, int(byok.MaxCertValidity/(24*time.Hour)), int(byok.DefaultCertValidity/(24*time.Hour)))
	}
	if req.CSR && req.ValidDays != 0 {
		return nil, badRequestf("valid_days applies to self-signed certificates; with csr, the tenant's CA sets the validity")
	}
	uc, err := s.BYOK.NewCert(c.Context(), c.Audit, byok.CertRequest{Tenant: c.Tenant.ID, CSR: req.CSR,
		Validity: time.Duration(req.ValidDays) * 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	return certOf(c.Tenant, uc), nil
}

func (s *server) uploadCerts(c *Call) (any, error) {
	cs, err := s.BYOK.Certs(c.Context(), c.Tenant.ID)
	if err != nil {
		return nil, err
	}
	out := api.UploadCertList{Certificates: []api.UploadCert{}}
	for _, uc := range cs {
		out.Certificates = append(out.Certificates, certOf(c.Tenant, uc))
	}
	return out, nil
}

// certID is the {id} of a certificate route.
func certID(c *Call) (string, error) {
	id := c.Request.PathValue("id")
	if err := validID("certificate", id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *server) uploadCert(c *Call) (any, error) {
	id, err := certID(c)
	if err != nil {
		return nil, err
	}
	uc, err := s.BYOK.Cert(c.Context(), c.Tenant.ID, id)
	if err != nil {
		return nil, err
	}
	return certOf(c.Tenant, uc), nil
}

func (s *server) completeUploadCert(c *Call) (any, error) {
	id, err := certID(c)
	if err != nil {
		return nil, err
	}
	pemText := c.Body.(*api.CompleteUploadCertRequest).Certificate
	if pemText == "" {
		return nil, badRequestf("certificate is required: the PEM certificate your CA signed for this request")
	}
	uc, err := s.BYOK.CompleteCert(c.Context(), c.Audit, c.Tenant.ID, id, []byte(pemText))
	if err != nil {
		return nil, err
	}
	return certOf(c.Tenant, uc), nil
}

func (s *server) retireUploadCert(c *Call) (any, error) {
	id, err := certID(c)
	if err != nil {
		return nil, err
	}
	uc, err := s.BYOK.RetireCert(c.Context(), c.Audit, c.Tenant.ID, id)
	if err != nil {
		return nil, err
	}
	return certOf(c.Tenant, uc), nil
}

// pathKeyType is the {type} of a key route.
func pathKeyType(c *Call) (string, error) {
	typ := c.Request.PathValue("type")
	if !tenant.ValidKeyType(typ) {
		return "", badRequestf("key type %q: use one of %q", typ, tenant.KeyTypes())
	}
	return typ, nil
}

// pathKeyVersion is the {version} of a key route.
func pathKeyVersion(c *Call) (uint32, error) {
	vs := c.Request.PathValue("version")
	v, err := strconv.ParseUint(vs, 10, 32)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != vs {
		return 0, badRequestf("key version %q: a whole number from 1", vs)
	}
	return uint32(v), nil
}

func (s *server) uploadKey(c *Call) (any, error) {
	typ, err := pathKeyType(c)
	if err != nil {
		return nil, err
	}
	req := c.Body.(*api.UploadKeyRequest)
	up := byok.Upload{Tenant: c.Tenant.ID, Type: typ, Cert: req.Certificate, Wrapped: req.Wrapped,
		Hash: hsm.OAEPSHA256, Derivation: tenant.DerivationPBKDF2}
	if req.OAEPHash != "" {
		if up.Hash, err = hsm.ParseOAEPHash(req.OAEPHash); err != nil {
			return nil, badRequestf("oaep_hash %q: use sha256 (the default), sha512 or sha1", req.OAEPHash)
		}
	}
	if req.Derivation != "" {
		up.Derivation = tenant.Derivation(req.Derivation)
		if !up.Derivation.Valid() {
			return nil, badRequestf("derivation %q: use pbkdf2 (the default) or none", req.Derivation)
		}
	}
	if req.Certificate != "" {
		if err := validID("certificate", req.Certificate); err != nil {
			return nil, err
		}
	}
	if len(req.Wrapped) == 0 {
		return nil, badRequestf("wrapped is required: the RSA-OAEP ciphertext of the 32 bytes, in base64")
	}
	if up.SHA256, err = hex.DecodeString(req.SHA256); err != nil || len(up.SHA256) != 32 {
		return nil, badRequestf("sha256 must be the SHA-256 of the 32 plaintext bytes: 64 hex digits")
	}
	k, err := s.BYOK.Upload(c.Context(), c.Audit, up)
	if err != nil {
		return nil, err
	}
	return keyOf(c.Tenant, k), nil
}

func (s *server) exportKey(c *Call) (any, error) {
	typ, err := pathKeyType(c)
	if err != nil {
		return nil, err
	}
	v, err := pathKeyVersion(c)
	if err != nil {
		return nil, err
	}
	file, k, err := s.BYOK.Export(c.Context(), c.Audit, tenant.KeyRef{Tenant: c.Tenant.ID, Type: typ, Version: v})
	if err != nil {
		return nil, err
	}
	return api.KeyBackup{Key: keyOf(c.Tenant, k), Backup: string(file)}, nil
}

func (s *server) importKey(c *Call) (any, error) {
	file := c.Body.(*api.ImportKeyRequest).Backup
	if file == "" {
		return nil, badRequestf("backup is required: the backup file (PEM) as key export wrote it")
	}
	k, err := s.BYOK.Import(c.Context(), c.Audit, c.Tenant.ID, []byte(file))
	if err != nil {
		return nil, err
	}
	return keyOf(c.Tenant, k), nil
}
