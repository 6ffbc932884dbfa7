package client

import (
	"context"
	"strconv"

	"github.com/strongroom-kms/strongroom/api"
)

// BYOK (S10–S12): tenant settings, upload certificates, uploads, export
// and import.

// SetDerivationOptOut allows or forbids a tenant's uploads in derivation
// mode none (POST /v1/tenants/{tenant}/settings, operator).
func (c *Client) SetDerivationOptOut(ctx context.Context, tenant string, allowed bool) (api.Tenant, error) {
	var t api.Tenant
	if err := seg("tenant name", tenant); err != nil {
		return t, err
	}
	err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/settings", nil, api.SetTenantRequest{DerivationOptOut: &allowed}, &t)
	return t, err
}

// CreateUploadCert makes an upload certificate for a tenant (POST
// /v1/tenants/{tenant}/upload-certificates): self-signed and active, or with
// req.CSR a pending request for the tenant's CA to sign (see
// CompleteUploadCert).
func (c *Client) CreateUploadCert(ctx context.Context, tenant string, req api.CreateUploadCertRequest) (api.UploadCert, error) {
	var uc api.UploadCert
	if err := seg("tenant name", tenant); err != nil {
		return uc, err
	}
	err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/upload-certificates", nil, req, &uc)
	return uc, err
}

// UploadCerts lists a tenant's upload certificates, newest first.
func (c *Client) UploadCerts(ctx context.Context, tenant string) ([]api.UploadCert, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var l api.UploadCertList
	err := c.do(ctx, "GET", "/v1/tenants/"+tenant+"/upload-certificates", nil, nil, &l)
	return l.Certificates, err
}

// certPath is the path of one upload certificate, plus suffix.
func certPath(tenant, id, suffix string) (string, error) {
	if err := seg("tenant name", tenant); err != nil {
		return "", err
	}
	if err := seg("certificate id", id); err != nil {
		return "", err
	}
	return "/v1/tenants/" + tenant + "/upload-certificates/" + id + suffix, nil
}

// UploadCert shows one upload certificate.
func (c *Client) UploadCert(ctx context.Context, tenant, id string) (api.UploadCert, error) {
	var uc api.UploadCert
	p, err := certPath(tenant, id, "")
	if err != nil {
		return uc, err
	}
	err = c.do(ctx, "GET", p, nil, nil, &uc)
	return uc, err
}

// CompleteUploadCert uploads the certificate (PEM) the tenant's CA signed
// for a pending upload certificate's request; it becomes active.
func (c *Client) CompleteUploadCert(ctx context.Context, tenant, id string, certPEM []byte) (api.UploadCert, error) {
	var uc api.UploadCert
	p, err := certPath(tenant, id, "/complete")
	if err != nil {
		return uc, err
	}
	err = c.do(ctx, "POST", p, nil, api.CompleteUploadCertRequest{Certificate: string(certPEM)}, &uc)
	return uc, err
}

// RetireUploadCert retires an upload certificate.
func (c *Client) RetireUploadCert(ctx context.Context, tenant, id string) (api.UploadCert, error) {
	var uc api.UploadCert
	p, err := certPath(tenant, id, "/retire")
	if err != nil {
		return uc, err
	}
	err = c.do(ctx, "POST", p, nil, nil, &uc)
	return uc, err
}

// UploadKey uploads a tenant's own key material, encrypted with RSA-OAEP to
// an upload certificate, as the new active key of type typ (POST
// /v1/tenants/{tenant}/keys/{type}/upload).
func (c *Client) UploadKey(ctx context.Context, tenant, typ string, req api.UploadKeyRequest) (api.Key, error) {
	var k api.Key
	if err := seg("tenant name", tenant); err != nil {
		return k, err
	}
	if err := seg("key type", typ); err != nil {
		return k, err
	}
	err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/keys/"+typ+"/upload", nil, req, &k)
	return k, err
}

// ExportKey returns a backup file of one key version (POST
// /v1/tenants/{tenant}/keys/{type}/{version}/export).
func (c *Client) ExportKey(ctx context.Context, tenant, typ string, version uint32) (api.KeyBackup, error) {
	var b api.KeyBackup
	if err := seg("tenant name", tenant); err != nil {
		return b, err
	}
	if err := seg("key type", typ); err != nil {
		return b, err
	}
	p := "/v1/tenants/" + tenant + "/keys/" + typ + "/" + strconv.FormatUint(uint64(version), 10) + "/export"
	err := c.do(ctx, "POST", p, nil, nil, &b)
	return b, err
}

// ImportKey brings a destroyed key version back, archived, from its backup
// file (POST /v1/tenants/{tenant}/keys/import).
func (c *Client) ImportKey(ctx context.Context, tenant string, file []byte) (api.Key, error) {
	var k api.Key
	if err := seg("tenant name", tenant); err != nil {
		return k, err
	}
	err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/keys/import", nil, api.ImportKeyRequest{Backup: string(file)}, &k)
	return k, err
}
