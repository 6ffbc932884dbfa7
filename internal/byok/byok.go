// Package byok is tenants' control of their key material (S10–S12): upload
// certificates (RSA-4096 key pairs in the regional HSM, self-signed or
// signed by the tenant's CA), uploads of the tenant's own key material
// encrypted with RSA-OAEP to such a certificate, and backups: exporting a
// key version to a file sealed under the tenant's export key
// (internal/backup, internal/exportkey) and importing it back after the
// original was destroyed.
//
// An accepted upload becomes the active key of its type through the key
// lifecycle (internal/lifecycle), under the same rotation limits as a
// generated key. Everything refused changes nothing.
//
// The regional HSM is shared by every tenant, so what one tenant may make
// it do is bounded: at most MaxLiveCerts pending or active upload
// certificates (key pairs) at once, counted by the store in the creating
// transaction; a retired certificate's key pair is deleted from the HSM;
// and uploads that cost a private-key operation without installing a key
// are limited per tenant (MaxFailedUploads per FailedUploadWindow, across
// every node sharing the store), checked before the operation.
package byok

import (
	"context"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/lifecycle"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// Store is what BYOK reads and changes (internal/store.Store).
type Store interface {
	TenantByID(ctx context.Context, id string) (tenant.Tenant, error)
	Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error)
	RestoreKey(ctx context.Context, req store.RestoreRequest, rec audit.Entry) (tenant.Key, error)

	CreateUploadCert(ctx context.Context, c uploadcert.Cert, maxLive int, rec audit.Entry) (uploadcert.Cert, error)
	UploadCert(ctx context.Context, tenantID, id string) (uploadcert.Cert, error)
	UploadCerts(ctx context.Context, tenantID string) ([]uploadcert.Cert, error)
	ActivateUploadCert(ctx context.Context, tenantID, id string, der []byte, notBefore, notAfter time.Time, rec audit.Entry) (uploadcert.Cert, error)
	RetireUploadCert(ctx context.Context, tenantID, id string, now time.Time, rec audit.Entry) (uploadcert.Cert, error)

	BeginUpload(ctx context.Context, tenantID string, now time.Time, lim store.UploadLimit) (string, error)
	UploadAccepted(ctx context.Context, tenantID, id string) error

	AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error)
}

// HSM is the part of the regional HSM that holds upload certificates' key
// pairs (which hsm.EncryptionKey.Destroy deletes).
type HSM interface {
	Info() hsm.Info
	GenerateEncryptionKey(ctx context.Context, label string, use hsm.RSAUse) (hsm.EncryptionKey, error)
	EncryptionKey(ctx context.Context, label string) (hsm.EncryptionKey, error)
}

// Releases are the opened releases whose TWKs wrap tenant secrets
// (*release.Ring).
type Releases interface {
	Secret(ctx context.Context, releaseID, name string) (secret.Key, error)
}

// Keys is the key lifecycle that installs uploaded material
// (*lifecycle.Service).
type Keys interface {
	Check(ctx context.Context, tenantID, typ string) (tenant.Tenant, error)
	Install(ctx context.Context, rec *audit.Entry, m lifecycle.Material) (tenant.Key, error)
}

// ExportKeys are the tenants' export keys (*exportkey.Service).
type ExportKeys interface {
	Key(ctx context.Context, rec *audit.Entry, tenantID string) (secret.Key, error)
	Existing(ctx context.Context, tenantID string) (secret.Key, error)
	Fingerprint(ctx context.Context, rec *audit.Entry, tenantID string, ts secret.Key) ([]byte, error)
}

// Policy is the part of the rotation policy that imports obey: the most
// active plus archived keys per type.
type Policy interface {
	MaxKeys() int
}

// Service is BYOK at a regional node. It is safe for concurrent use.
type Service struct {
	st   Store
	ring Releases
	h    HSM
	keys Keys
	ek   ExportKeys
	pol  Policy
	now  func() time.Time
	// certs serialises a tenant's NewCerts on this node, so that
	// concurrent requests do not make key pairs the store then refuses.
	certs *lifecycle.Locks
}

// New returns a Service over the store, the opened releases, the regional
// HSM, the key lifecycle, the export keys and the rotation policy. now is
// the clock; nil means time.Now.
func New(st Store, ring Releases, h HSM, keys Keys, ek ExportKeys, pol Policy, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, ring: ring, h: h, keys: keys, ek: ek, pol: pol, now: now, certs: lifecycle.NewLocks()}
}
