package store

import (
	"context"
	"time"
)

// TenantSettingStore changes a tenant's operator settings.
type TenantSettingStore interface {
	// SetDerivationOptOut sets whether the tenant may opt out of key
	// derivation, and returns the tenant as stored. An unknown tenant →
	// ErrNotFound.
	SetDerivationOptOut(ctx context.Context, tenantID string, allowed bool) (Tenant, error)
}

// ExportKey is a tenant's long-lived export key: 32 random bytes that seal
// the tenant's backup files and key the fingerprints of its secrets. It is
// stored only wrapped under the TWK of the release that was current when it
// was made, and it outlives later releases (the release stays loadable).
type ExportKey struct {
	Tenant  string // tenant ID
	Release string // the release whose TWK wraps it
	Wrapped []byte // at most MaxWrapped bytes
	Created time.Time
}

// ExportKeyStore keeps one export key per tenant. Export keys are never
// replaced nor deleted.
type ExportKeyStore interface {
	// ExportKey returns the tenant's export key, or ErrNotFound if it has
	// none yet. An unknown tenant is ErrNotFound too.
	ExportKey(ctx context.Context, tenantID string) (ExportKey, error)
	// PutExportKey stores k as its tenant's export key unless the tenant has
	// one already, and returns the one stored: k (per ExportKey.Check), or
	// the existing key when another node stored one first (first writer
	// wins, no error: the caller uses what it returns). The tenant and the
	// release must exist (ErrNotFound).
	PutExportKey(ctx context.Context, k ExportKey) (ExportKey, error)
}

// CertState is where an upload certificate is in its life.
type CertState string

// The certificate states.
const (
	// CertPending: the key pair exists and a CSR was issued; the
	// CA-signed certificate has not been uploaded yet. Not usable.
	CertPending CertState = "pending"
	// CertActive: usable for uploads until NotAfter.
	CertActive CertState = "active"
	// CertRetired: no longer accepted for uploads.
	CertRetired CertState = "retired"
)

// Valid reports whether s is one of the states.
func (s CertState) Valid() bool { return s == CertPending || s == CertActive || s == CertRetired }

// UploadCert is a tenant's BYOK upload certificate: an RSA-4096 key pair
// whose private half lives in the regional HSM under KeyLabel, and its X.509
// certificate (self-signed by that key, or signed by the tenant's CA).
type UploadCert struct {
	ID       string // as Tenant.ID
	Tenant   string // tenant ID
	KeyLabel string // the HSM label of the key pair; at most 128 bytes
	State    CertState
	// CSR is the DER certificate request (CA-signed flow); nil otherwise.
	CSR []byte
	// Certificate is the DER certificate; nil while pending.
	Certificate []byte
	// NotBefore and NotAfter are the certificate's validity (zero while
	// pending).
	NotBefore time.Time
	NotAfter  time.Time
	Created   time.Time
	Retired   time.Time // zero unless retired
}

// UploadCertStore keeps upload certificates. They are never deleted.
type UploadCertStore interface {
	// CreateUploadCert stores c (State pending or active; an empty ID is
	// filled with NewID()) after validating it (UploadCert.Check), and
	// returns it as stored. The tenant must exist (ErrNotFound); the same ID
	// or KeyLabel (of any tenant: labels are unique in the HSM) → ErrExists.
	CreateUploadCert(ctx context.Context, c UploadCert) (UploadCert, error)
	// UploadCert returns one of a tenant's certificates, or ErrNotFound
	// (also when it belongs to another tenant).
	UploadCert(ctx context.Context, tenantID, id string) (UploadCert, error)
	// UploadCerts lists a tenant's certificates, newest first (then by ID).
	// An unknown tenant → ErrNotFound.
	UploadCerts(ctx context.Context, tenantID string) ([]UploadCert, error)
	// ActivateUploadCert stores the CA-signed certificate of a pending
	// certificate and its validity (checked by CheckCertificate), makes it
	// active and returns it as stored. A missing certificate → ErrNotFound;
	// one that is not pending → ErrConflict.
	ActivateUploadCert(ctx context.Context, tenantID, id string, der []byte, notBefore, notAfter time.Time) (UploadCert, error)
	// RetireUploadCert retires a pending or active certificate at now and
	// returns it as stored. A missing certificate → ErrNotFound; one retired
	// already → ErrConflict.
	RetireUploadCert(ctx context.Context, tenantID, id string, now time.Time) (UploadCert, error)
}

// RestoreRequest brings a destroyed key version back, archived, from a
// backup.
type RestoreRequest struct {
	Tenant  string
	Type    string
	Version uint32
	// Release and Wrapped are the key's wrapped material; Release must be
	// the key's recorded release.
	Release string
	Wrapped []byte
	// Fingerprint must equal the stored fingerprint when the key has one
	// (nil or empty: none). The stored fingerprint is kept as it is.
	Fingerprint []byte
	// MaxKeys is the most active+archived keys of this tenant and type,
	// counting the restored one (≥ 1): ErrTooManyKeys beyond it.
	MaxKeys int
	// Now is the time of the request. It is checked but not stored: the
	// restored key keeps its Created, and the audit log records the
	// restoration.
	Now time.Time
}

// KeyRestorer restores keys from backups.
type KeyRestorer interface {
	// RestoreKey makes a destroyed key version archived again with
	// req.Wrapped, serialised with Rotate and DestroyKey (the same lock),
	// after validating req (RestoreRequest.Check). A missing key →
	// ErrNotFound; then RestoreRequest.Decide's checks, in order: a key that
	// is not destroyed → ErrConflict; another release or fingerprint than
	// the key's → ErrConflict; MaxKeys → ErrTooManyKeys. The returned key
	// has State archived, req.Wrapped and a zero Destroyed; a restored key
	// is never made active (Rotate makes a new one).
	RestoreKey(ctx context.Context, req RestoreRequest) (Key, error)
}

// DestroyWatcher tells KMS nodes that keys were destroyed, so that each can
// evict its cached copies.
type DestroyWatcher interface {
	// DestroyedSince lists the keys destroyed at or after since (a zero
	// since: every destroyed key), across all tenants, ordered by Destroyed
	// then tenant, type and version, without Wrapped or Fingerprint: the
	// periodic re-check behind WatchDestroyed. A key restored since is not
	// listed (it is no longer destroyed).
	//
	// Destroyed is the time DestroyKey was given, not the commit time: a
	// destruction can commit after a re-check that asked for times after
	// its own. Callers overlap their windows (since = the previous check's
	// start minus a margin for clock skew and transaction length).
	DestroyedSince(ctx context.Context, since time.Time) ([]Key, error)
	// WatchDestroyed starts watching and returns: it then calls fn (from
	// one goroutine of its own, one call at a time, in order) for each key
	// destroyed after it returned, until ctx is done. A nil fn →
	// ErrInvalid. On PostgreSQL
	// every node sharing the database hears of every destroy (LISTEN/NOTIFY
	// on a dedicated connection, the notification sent in the destroying
	// transaction, so delivered only if it commits); the SQLite driver
	// tells the watchers of the same Store (one Store per process; another
	// process on the same file is not told). Delivery is best effort: a
	// lost connection is re-established (with backoff, until ctx is done),
	// the SQLite driver drops what a watcher too slow to keep up has no
	// room for, and what was missed is what DestroyedSince is for. It
	// returns an error only if it cannot start (ctx done already, the
	// store closed, the first LISTEN failed).
	//
	// Callers cancel ctx before closing the store. Close ends the watchers
	// anyway (waiting a few seconds at most for a running fn to return), so
	// that it never hangs on one.
	WatchDestroyed(ctx context.Context, fn func(KeyRef)) error
}

// KeyRef names one key version.
type KeyRef struct {
	Tenant  string
	Type    string
	Version uint32
}
