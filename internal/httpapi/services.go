package httpapi

import (
	"context"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/dataplane"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// The services the API serves from, each as the handlers use it. The API
// reaches storage only through them. Every method that changes something
// takes the request's audit entry (rec), which the change records in its
// own transaction.

// Tenants is the region's tenants (*directory.Directory).
type Tenants interface {
	Create(ctx context.Context, rec *audit.Entry, name string, env tenant.Environment) (tenant.Tenant, error)
	ByName(ctx context.Context, name string) (tenant.Tenant, error)
	ByID(ctx context.Context, id string) (tenant.Tenant, error)
	List(ctx context.Context) ([]tenant.Tenant, error)
	SetDerivationOptOut(ctx context.Context, rec *audit.Entry, tenantID string, allowed bool) (tenant.Tenant, error)
}

// Tokens is the region's API tokens (*auth.Tokens).
type Tokens interface {
	Authenticate(ctx context.Context, header string) (auth.Identity, error)
	Create(ctx context.Context, rec *audit.Entry, by auth.Identity, role, tenantID, name string, expires time.Time) (string, auth.Token, error)
	Revoke(ctx context.Context, rec *audit.Entry, by auth.Identity, id string) (auth.Token, []string, error)
	Token(ctx context.Context, id string) (auth.Token, error)
	List(ctx context.Context, tenantID string) ([]auth.Token, error)
	Names(ctx context.Context, ids []string) (map[string]string, error)
}

// Releases is the node's opened releases and the region's installed ones
// (*release.Ring and *release.Installer).
type Releases interface {
	Install(ctx context.Context, rec *audit.Entry, bundle []byte) (release.Meta, release.Installation, error)
	Installed(ctx context.Context) ([]release.Installation, error)
}

// Ring is what the API reads of the node's opened releases (*release.Ring).
type Ring interface {
	Releases() []release.Meta
	Meta(id string) (release.Meta, error)
	Problems() []string
}

// Keys is the key lifecycle (*lifecycle.Service).
type Keys interface {
	Generate(ctx context.Context, rec *audit.Entry, tenantID, typ string) (tenant.Key, error)
	Keys(ctx context.Context, tenantID, typ string) ([]tenant.Key, error)
	Destroy(ctx context.Context, rec *audit.Entry, ref tenant.KeyRef) (tenant.Key, error)
}

// DataPlane is encryption, decryption and DEK delivery
// (*dataplane.Service).
type DataPlane interface {
	Encrypt(ctx context.Context, rec *audit.Entry, tenantID, typ string, plaintext []byte, context map[string]string) ([]byte, tenant.Key, error)
	Decrypt(ctx context.Context, rec *audit.Entry, tenantID string, ciphertext []byte, context map[string]string) ([]byte, tenant.Key, error)
	EncryptField(ctx context.Context, rec *audit.Entry, tenantID, typ string, f dataplane.Field, plaintext []byte, context map[string]string) ([]byte, tenant.Key, error)
	DecryptField(ctx context.Context, rec *audit.Entry, tenantID, field string, ciphertext []byte, context map[string]string) ([]byte, tenant.Key, error)
	SealDEK(ctx context.Context, rec *audit.Entry, r tenant.KeyRef, kem uint16, publicKey []byte) ([]byte, tenant.Key, error)
	NewDEKBatch(kem uint16, publicKey []byte) (*dataplane.DEKBatch, []byte, error)
	Rewrap(ctx context.Context, rec *audit.Entry, tenantID string, f dataplane.Field, ciphertext []byte, context map[string]string) ([]byte, tenant.Key, tenant.Key, error)
}

// BYOK is upload certificates, uploads, export and import (*byok.Service).
type BYOK interface {
	NewCert(ctx context.Context, rec *audit.Entry, req byok.CertRequest) (uploadcert.Cert, error)
	Certs(ctx context.Context, tenantID string) ([]uploadcert.Cert, error)
	Cert(ctx context.Context, tenantID, certID string) (uploadcert.Cert, error)
	CompleteCert(ctx context.Context, rec *audit.Entry, tenantID, certID string, signed []byte) (uploadcert.Cert, error)
	RetireCert(ctx context.Context, rec *audit.Entry, tenantID, certID string) (uploadcert.Cert, error)
	Upload(ctx context.Context, rec *audit.Entry, u byok.Upload) (tenant.Key, error)
	Export(ctx context.Context, rec *audit.Entry, r tenant.KeyRef) ([]byte, tenant.Key, error)
	Import(ctx context.Context, rec *audit.Entry, tenantID string, file []byte) (tenant.Key, error)
}

// KeyServices is tenants' key services for cache-only keys
// (*cacheonly.Service).
type KeyServices interface {
	Credentials(ctx context.Context, tenantID string) (cacheonly.Credentials, error)
	Register(ctx context.Context, rec *audit.Entry, req cacheonly.Request) (tenant.Key, tenant.KeyService, error)
	List(ctx context.Context, tenantID string) ([]tenant.KeyService, error)
	Availability(ks tenant.KeyService) string
}

// KeyUsage reports what tenants' key versions were used for
// (*keyusage.Service).
type KeyUsage interface {
	Report(ctx context.Context, tenantID, typ string) ([]keyusage.Report, error)
	ReportDataAtRest(ctx context.Context, rec *audit.Entry, tenantID, typ, dataset string, rows map[uint32]uint64) ([]keyusage.Report, error)
}

// AuditLog is the region's audit log (*auditlog.Log).
type AuditLog interface {
	Append(ctx context.Context, entries ...audit.Entry) error
	AppendUsage(ctx context.Context, counts []keyusage.Count, entries ...audit.Entry) error
	Entries(ctx context.Context, f store.AuditFilter, fn func(audit.Entry) error) error
}

// Pinger is the store's readiness check (*store.Store).
type Pinger interface {
	Ping(ctx context.Context) error
}
