// Package api holds the wire types of Strongroom's HTTP/JSON API under /v1.
// The server (internal/httpapi) and the Go client (package client) share
// them. Byte strings travel as standard base64 (encoding/json's []byte).
//
// Every error answer is an Error with an HTTP status of 4xx or 5xx.
package api

import "time"

// Error is the body of every error answer.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// NextAllowed is set on rate_limited answers: when the next rotation of
	// that tenant and key type is allowed, or the tenant's next upload after
	// too many failed ones (also in the Retry-After header).
	NextAllowed *time.Time `json:"next_allowed,omitempty"`
}

// Error codes.
const (
	CodeBadRequest        = "bad_request"       // malformed JSON, unknown field, bad value
	CodeUnauthenticated   = "unauthenticated"   // no, malformed or unknown token
	CodeTokenRevoked      = "token_revoked"     // the token was revoked (HTTP 401; the message says when)
	CodeTokenExpired      = "token_expired"     // the token has expired (HTTP 401; the message says when)
	CodeForbidden         = "forbidden"         // the token's role or tenant scope does not allow it
	CodeNotFound          = "not_found"         // no such tenant, key or route
	CodeExists            = "exists"            // the name is taken
	CodeConflict          = "conflict"          // a different release bundle under an installed id
	CodeRateLimited       = "rate_limited"      // rotation too soon, or too many failed uploads (HTTP 429)
	CodeTooManyKeys       = "too_many_keys"     // the type's active+archived limit is reached
	CodeKeyDestroyed      = "key_destroyed"     // the key was destroyed: its data is gone
	CodeKeyArchived       = "key_archived"      // an archived key decrypts only
	CodeNoActiveKey       = "no_active_key"     // generate or upload a key first
	CodeDecrypt           = "decryption_failed" // altered ciphertext or wrong context
	CodeInvalidBundle     = "invalid_bundle"    // a release bundle failed verification
	CodeTooLarge          = "too_large"         // body or batch over the limit
	CodeNotReady          = "not_ready"         // a release failed to validate
	CodeInternal          = "internal"          // a server fault; details are in its log
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeUnsupportedMedia  = "unsupported_media_type"      // a body that is not application/json (HTTP 415)
	CodeTimeout           = "timeout"                     // the request took longer than limits.request_timeout (HTTP 503)
	CodeUploadRefused     = "upload_refused"              // uploaded key material does not decrypt to 32 bytes with the given SHA-256
	CodeDuplicateKey      = "duplicate_key"               // the tenant had this exact key material before
	CodeOptOutDisabled    = "derivation_opt_out_disabled" // an operator disabled derivation mode none for this tenant
	CodeNoUploadCert      = "no_upload_certificate"       // no active, unexpired upload certificate (or not the one named)
	CodeCertState         = "certificate_state"           // the upload certificate's state does not allow this
	CodeTooManyCerts      = "too_many_certificates"       // the tenant holds the most pending or active upload certificates
	CodeTooManyTokens     = "too_many_tokens"             // the tenant has the most live app tokens its tenant-admins may make
	CodeAlreadyRevoked    = "already_revoked"             // the token to revoke was revoked before (HTTP 409; the message says when)
	CodeImportRefused     = "import_refused"              // a backup file was refused; the reason says why
	CodeUnsupported       = "unsupported"                 // this region's HSM cannot do what was asked (e.g. an OAEP hash)
	CodeKeyUnavailable    = "key_unavailable"             // a cache-only key's service did not give the key (HTTP 503, or per item); retried on a schedule
	CodeKeyRevoked        = "key_revoked"                 // a cache-only key was revoked by the tenant's key service
	CodeKeyServiceRefused = "key_service_refused"         // a key service to register did not answer its test fetch correctly; the message says why
)

// Roles of API tokens.
const (
	RoleOperator    = "operator"     // tenants, tokens, releases; all tenants
	RoleTenantAdmin = "tenant-admin" // one tenant's keys
	RoleApp         = "app"          // one tenant's data plane
	RoleAuditor     = "auditor"      // read-only, all tenants
)

// Health is the answer of GET /v1/health.
type Health struct {
	Status string `json:"status"` // "ok"
	Region string `json:"region,omitempty"`
}

// Ready is the answer of GET /v1/ready, which needs no token: whether the
// node is ready, and counts only (Status says what is behind them).
type Ready struct {
	Status   string `json:"status"` // "ok" or "not_ready"
	Region   string `json:"region,omitempty"`
	Releases int    `json:"releases"` // the releases this node has loaded
	Problems int    `json:"problems"` // what keeps it from being ready
}

// Status is the answer of GET /v1/status (operators, auditors): the node's
// readiness with its releases and its problems spelled out.
type Status struct {
	Status   string    `json:"status"` // "ok" or "not_ready"
	Region   string    `json:"region,omitempty"`
	Releases []Release `json:"releases"`
	Problems []string  `json:"problems"`
}

// Release is an installed release, without secrets.
type Release struct {
	ID         string    `json:"id"`
	Iterations uint32    `json:"iterations"`
	Created    time.Time `json:"created"`
	// Installed is when the bundle was installed at this region (GET
	// /v1/releases only).
	Installed time.Time `json:"installed,omitzero"`
	// Loaded says whether this node verified and opened the bundle; an
	// installed bundle that is not loaded keeps the node not ready.
	Loaded bool `json:"loaded"`
}

// ReleaseList is GET /v1/releases: the installed releases, oldest first.
type ReleaseList struct {
	Releases []Release `json:"releases"`
}

// InstallReleaseRequest is POST /v1/releases: a bundle file (PEM).
type InstallReleaseRequest struct {
	Bundle []byte `json:"bundle"`
}

// Tenant is a tenant.
type Tenant struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Env              string    `json:"env"` // production, developer, sandbox
	Created          time.Time `json:"created"`
	DerivationOptOut bool      `json:"derivation_opt_out"`
}

// TenantList is GET /v1/tenants, ordered by name.
type TenantList struct {
	Tenants []Tenant `json:"tenants"`
}

// CreateTenantRequest is POST /v1/tenants.
type CreateTenantRequest struct {
	Name string `json:"name"`
	Env  string `json:"env"`
}

// CreateTokenRequest is POST /v1/tokens.
type CreateTokenRequest struct {
	Role   string `json:"role"`
	Tenant string `json:"tenant,omitempty"` // tenant name; required for tenant-admin and app
	Name   string `json:"name,omitempty"`   // a label for humans
	TTL    string `json:"ttl,omitempty"`    // whole days ("30d") or a Go duration ("720h"); empty = no expiry
}

// Token is a created token. Secret is shown once and never stored.
type Token struct {
	ID      string     `json:"id"`
	Role    string     `json:"role"`
	Tenant  string     `json:"tenant,omitempty"` // tenant name; "" for operator and auditor tokens
	Name    string     `json:"name,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
	Secret  string     `json:"secret,omitempty"`
}

// The states of a token (TokenInfo.State).
const (
	TokenLive    = "live"    // it authenticates
	TokenExpired = "expired" // its expiry has passed
	TokenRevoked = "revoked" // it was revoked
)

// TokenInfo is what the server keeps of a token: never its secret, nor
// anything derived from it.
type TokenInfo struct {
	ID      string     `json:"id"`
	Name    string     `json:"name,omitempty"`
	Role    string     `json:"role"`
	Tenant  string     `json:"tenant,omitempty"` // tenant name; "" for operator and auditor tokens
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	// Parent is the id of the token that made this one; "" if none did
	// (strongroom server --init, strongroom dev).
	Parent string `json:"parent,omitempty"`
	// LastUsed is the minute in which the token last authenticated a
	// request (recorded at most once a minute, best effort); absent if
	// never.
	LastUsed *time.Time `json:"last_used,omitempty"`
	State    string     `json:"state"` // live, expired or revoked
	// Revoked and RevokedBy say when the token was revoked, and the id of
	// the token that revoked it (absent if none did).
	Revoked   *time.Time `json:"revoked,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// TokenList is GET /v1/tokens (?tenant= a tenant's name, ?state= live,
// expired or revoked), oldest first.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// Revocation is the answer of POST /v1/tokens/{id}/revoke and POST
// /v1/tokens/self/revoke: the token as revoked, and the ids of the tokens
// revoked with it (those it made, and theirs, that were live).
type Revocation struct {
	Token    TokenInfo `json:"token"`
	Cascaded []string  `json:"cascaded"`
}

// Key is one version of a tenant's key, without material.
type Key struct {
	Tenant     string     `json:"tenant"` // the tenant's name
	Type       string     `json:"type"`
	Version    uint32     `json:"version"`
	State      string     `json:"state"`      // active, archived, destroyed
	Source     string     `json:"source"`     // hsm, uploaded, cache-only
	Derivation string     `json:"derivation"` // pbkdf2, none
	Release    string     `json:"release"`
	Created    time.Time  `json:"created"`
	Destroyed  *time.Time `json:"destroyed,omitempty"`
	// Availability is a cache-only key's, at the node that answered:
	// available, unavailable (its last fetch failed) or revoked (GET
	// /v1/tenants/{tenant}/keys only).
	Availability string `json:"availability,omitempty"`
}

// RegisterKeyServiceRequest is POST /v1/tenants/{tenant}/key-services: a
// tenant's key service for a new cache-only key version of Type
// (docs/cache-only.md).
type RegisterKeyServiceRequest struct {
	Type string `json:"type,omitempty"` // default "data"
	URL  string `json:"url"`            // https://host[:port][/path]
	KID  string `json:"kid"`
	CA   string `json:"ca"`   // the CA certificate (or the service's self-signed certificate), PEM
	Auth string `json:"auth"` // bearer or mtls
	// Bearer is the bearer secret (auth bearer only): kept wrapped, never
	// shown again.
	Bearer string `json:"bearer,omitempty"`
	// OAEP is sha256 (the default: RSA-OAEP-256) or sha1 (RSA-OAEP).
	OAEP string `json:"oaep,omitempty"`
}

// KeyService is a registration of a tenant's key service, without its
// bearer secret.
type KeyService struct {
	ID           string     `json:"id"`
	Tenant       string     `json:"tenant"` // the tenant's name
	Type         string     `json:"type"`
	Version      uint32     `json:"version"`
	URL          string     `json:"url"`
	KID          string     `json:"kid"`
	Auth         string     `json:"auth"`
	OAEP         string     `json:"oaep"`
	Created      time.Time  `json:"created"`
	Revoked      *time.Time `json:"revoked,omitempty"`
	Availability string     `json:"availability"` // available, unavailable, revoked (at the node that answered)
}

// KeyServiceCredentials are what a tenant installs in its key services:
// Strongroom's recipient public key (PEM, PUBLIC KEY), which every answer
// is encrypted to, and its TLS client certificate (PEM), for auth mtls.
type KeyServiceCredentials struct {
	RecipientKey      string `json:"recipient_key"`
	ClientCertificate string `json:"client_certificate"`
}

// KeyServiceRegistration answers POST /v1/tenants/{tenant}/key-services:
// the new key version, its registration and the tenant's credentials.
type KeyServiceRegistration struct {
	Key         Key                   `json:"key"`
	Service     KeyService            `json:"service"`
	Credentials KeyServiceCredentials `json:"credentials"`
}

// KeyServiceList is GET /v1/tenants/{tenant}/key-services, by type and
// version.
type KeyServiceList struct {
	Services []KeyService `json:"services"`
}

// KeyList is GET /v1/tenants/{tenant}/keys (?type= to list one type),
// ordered by type then version.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// KeyUsage is what one key version was used for (GET
// /v1/tenants/{tenant}/keys/usage, docs/keys-usage.md). Counts of the last
// minutes may be missing: the node adds the data plane's counts when it
// flushes its audit aggregate.
type KeyUsage struct {
	Tenant  string `json:"tenant"` // the tenant's name
	Type    string `json:"type"`
	Version uint32 `json:"version"`
	State   string `json:"state"` // active, archived, destroyed
	// Encryptions and Decryptions are the server's; Deliveries counts the
	// DEKs delivered to clients, which may seal and open any number of
	// messages the server cannot count.
	Encryptions uint64 `json:"encryptions"`
	Decryptions uint64 `json:"decryptions"`
	Deliveries  uint64 `json:"deliveries"`
	// Sealed counts the messages the server sealed under the version's
	// DEK with AES-256-GCM and a random nonce; Nonces is ok, warning (at
	// or past 2^30) or exhausted (at or past 2^32, the bound of NIST SP
	// 800-38D): rotate; none for a deterministic key (AES-SIV, no nonce).
	Sealed       uint64     `json:"sealed"`
	Nonces       string     `json:"nonces"`
	LastEncrypt  *time.Time `json:"last_encrypt,omitempty"` // the minute of the last encryption
	LastDecrypt  *time.Time `json:"last_decrypt,omitempty"` // the minute of the last decryption
	LastDelivery *time.Time `json:"last_delivery,omitempty"`
	// RowsLeft is what the last data-at-rest report found still under the
	// version, and Reported when it was made; both absent without one.
	RowsLeft *uint64    `json:"rows_left,omitempty"`
	Reported *time.Time `json:"reported,omitempty"`
	// SafeToDestroy: archived, no server-side decryption and no delivery
	// for 30 days, and a data-at-rest report after its last use found
	// nothing under it. Hint says why or why not.
	SafeToDestroy bool   `json:"safe_to_destroy"`
	Hint          string `json:"hint"`
}

// KeyUsageList is GET /v1/tenants/{tenant}/keys/usage: every version of
// the tenant's keys (of one type with ?type=), by type and version.
type KeyUsageList struct {
	Usage []KeyUsage `json:"usage"`
}

// DataReportRequest is POST /v1/tenants/{tenant}/data-reports: a census
// of one dataset (a table's columns, such as "users(ssn)", named by the
// reporter), counted whole: how many of its values are under each version
// of key type Type. Versions not listed hold none of them. strongroom sync
// sends one after its final pass; GET …/keys/usage sums the datasets.
type DataReportRequest struct {
	Dataset  string            `json:"dataset"`
	Type     string            `json:"type,omitempty"` // default "data"
	Versions []DataReportCount `json:"versions"`
}

// DataReportCount is a dataset's values under one key version.
type DataReportCount struct {
	Version uint32 `json:"version"`
	Values  uint64 `json:"values"`
}

// GenerateKeyRequest is POST /v1/tenants/{tenant}/keys.
type GenerateKeyRequest struct {
	Type string `json:"type"`
}

// SetTenantRequest is PATCH /v1/tenants/{tenant}: operator settings; a
// field left out is unchanged.
type SetTenantRequest struct {
	// DerivationOptOut allows (true) or forbids (false) uploads in
	// derivation mode none.
	DerivationOptOut *bool `json:"derivation_opt_out,omitempty"`
}

// CreateUploadCertRequest is POST /v1/tenants/{tenant}/upload-certificates.
type CreateUploadCertRequest struct {
	// CSR: return a certificate request for the tenant's CA to sign (the
	// certificate stays pending until completed) instead of a self-signed
	// certificate.
	CSR bool `json:"csr,omitempty"`
	// ValidDays of a self-signed certificate: 1 to 730; 0 = 365.
	ValidDays int `json:"valid_days,omitempty"`
}

// UploadCert is a tenant's BYOK upload certificate: an RSA-4096 key pair
// in the regional HSM, and its certificate (PEM) or, while pending, its
// certificate request (PEM).
type UploadCert struct {
	ID          string `json:"id"`
	Tenant      string `json:"tenant"` // the tenant's name
	State       string `json:"state"`  // pending, active, retired
	Certificate string `json:"certificate,omitempty"`
	// Fingerprint is the SHA-256 of the certificate's DER, in hex: compare
	// it with the file you received (openssl x509 -fingerprint -sha256).
	Fingerprint string     `json:"sha256_fingerprint,omitempty"`
	CSR         string     `json:"csr,omitempty"`
	NotBefore   *time.Time `json:"not_before,omitempty"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	Created     time.Time  `json:"created"`
	Retired     *time.Time `json:"retired,omitempty"`
}

// UploadCertList is GET /v1/tenants/{tenant}/upload-certificates, newest
// first.
type UploadCertList struct {
	Certificates []UploadCert `json:"certificates"`
}

// CompleteUploadCertRequest is
// POST /v1/tenants/{tenant}/upload-certificates/{id}/complete: the
// certificate the tenant's CA signed for the request (PEM).
type CompleteUploadCertRequest struct {
	Certificate string `json:"certificate"`
}

// UploadKeyRequest is POST /v1/tenants/{tenant}/keys/{type}/upload: 32 bytes
// of the tenant's own key material encrypted with RSA-OAEP to an upload
// certificate.
type UploadKeyRequest struct {
	// Certificate is the upload certificate's id; empty = the newest
	// active one.
	Certificate string `json:"certificate,omitempty"`
	// Wrapped is the RSA-OAEP ciphertext (512 bytes).
	Wrapped []byte `json:"wrapped"`
	// OAEPHash is the OAEP and MGF1 hash: sha256 (the default), sha512, or
	// sha1 where the region's HSM supports only that.
	OAEPHash string `json:"oaep_hash,omitempty"`
	// SHA256 is the SHA-256 of the 32 plaintext bytes, in hex.
	SHA256 string `json:"sha256"`
	// Derivation: pbkdf2 (the default: the DEK is derived from the value)
	// or none (the value is the DEK: derivation opt-out).
	Derivation string `json:"derivation,omitempty"`
}

// KeyBackup is POST /v1/tenants/{tenant}/keys/{type}/{version}/export: the
// backup file (PEM), sealed under the tenant's export key.
type KeyBackup struct {
	Key    Key    `json:"key"`
	Backup string `json:"backup"`
}

// ImportKeyRequest is POST /v1/tenants/{tenant}/keys/import.
type ImportKeyRequest struct {
	Backup string `json:"backup"` // the backup file (PEM)
}

// DestroyKeyRequest is POST /v1/tenants/{tenant}/keys/{type}/{version}/destroy.
// Confirm must be exactly "TENANT/TYPE/VERSION".
type DestroyKeyRequest struct {
	Confirm string `json:"confirm"`
}

// EncryptRequest is POST /v1/tenants/{tenant}/encrypt: a batch of items, each
// encrypted under the active key of Type (default "data").
type EncryptRequest struct {
	Type  string        `json:"type,omitempty"`
	Items []EncryptItem `json:"items"`
}

// EncryptItem is one plaintext with its caller context, bound as associated
// data: the same context must be given to decrypt.
//
// Field is required for keys of type "deterministic" and refused for every
// other type: it names the field (1 to 255 bytes of printable ASCII, e.g.
// "users.email") whose values encrypt deterministically, so that equal
// plaintexts with equal contexts give equal ciphertexts within the field and
// key version, and unrelated ones in any other field. CaseInsensitive (only
// with Field) folds the plaintext first (Unicode full case folding and NFC):
// values equal but for case then encrypt alike, and decrypt to the folded
// form. See docs/dataplane.md for what deterministic encryption reveals.
type EncryptItem struct {
	Plaintext       []byte            `json:"plaintext"`
	Context         map[string]string `json:"context,omitempty"`
	Field           string            `json:"field,omitempty"`
	CaseInsensitive bool              `json:"case_insensitive,omitempty"`
}

// EncryptResponse answers an EncryptRequest, item by item.
type EncryptResponse struct {
	Items []EncryptResult `json:"items"`
}

// EncryptResult is one item's ciphertext, or its error.
type EncryptResult struct {
	Ciphertext []byte `json:"ciphertext,omitempty"`
	Type       string `json:"type,omitempty"`
	Version    uint32 `json:"version,omitempty"`
	Error      *Error `json:"error,omitempty"`
}

// DecryptRequest is POST /v1/tenants/{tenant}/decrypt.
type DecryptRequest struct {
	Items []DecryptItem `json:"items"`
}

// DecryptItem is one ciphertext with the context it was encrypted with.
// Field is required for a deterministic ciphertext, and must be the field it
// was encrypted for (another one fails like a wrong context); it is refused
// for the others.
type DecryptItem struct {
	Ciphertext []byte            `json:"ciphertext"`
	Context    map[string]string `json:"context,omitempty"`
	Field      string            `json:"field,omitempty"`
}

// DecryptResponse answers a DecryptRequest, item by item.
type DecryptResponse struct {
	Items []DecryptResult `json:"items"`
}

// DecryptResult is one item's plaintext, or its error (e.g. key_destroyed).
// CaseInsensitive says the ciphertext was encrypted case-insensitively: the
// plaintext is the folded form, not the one encrypted.
type DecryptResult struct {
	Plaintext       []byte `json:"plaintext,omitempty"`
	Type            string `json:"type,omitempty"`
	Version         uint32 `json:"version,omitempty"`
	CaseInsensitive bool   `json:"case_insensitive,omitempty"`
	Error           *Error `json:"error,omitempty"`
}

// RewrapRequest is POST /v1/tenants/{tenant}/rewrap: a batch of
// ciphertexts to move to the active key of their type. The plaintext never
// leaves the server.
type RewrapRequest struct {
	Items []RewrapItem `json:"items"`
}

// RewrapItem is one ciphertext with the context it was encrypted with (the
// new ciphertext is bound to the same context). A deterministic ciphertext
// stays deterministic in its own field, with its case flag: Field may be
// left out, and if given must be its field. A format 1 ciphertext of a
// deterministic key (made before deterministic keys were deterministic)
// needs Field (and CaseInsensitive if wanted): it is sealed again,
// deterministically, in that field. Other types take no field.
type RewrapItem struct {
	Ciphertext      []byte            `json:"ciphertext"`
	Context         map[string]string `json:"context,omitempty"`
	Field           string            `json:"field,omitempty"`
	CaseInsensitive bool              `json:"case_insensitive,omitempty"`
}

// RewrapResponse answers a RewrapRequest, item by item.
type RewrapResponse struct {
	Items []RewrapResult `json:"items"`
}

// RewrapResult is one item's new ciphertext, or its error. A ciphertext
// already under the active key comes back unchanged with Rewrapped false
// (it was still checked: it decrypts), so rewrapping twice is harmless.
type RewrapResult struct {
	Ciphertext []byte `json:"ciphertext,omitempty"`
	Type       string `json:"type,omitempty"`
	// From is the version the ciphertext was under; Version the one it is
	// under now, the active one.
	From      uint32 `json:"from_version,omitempty"`
	Version   uint32 `json:"version,omitempty"`
	Rewrapped bool   `json:"rewrapped"`
	Error     *Error `json:"error,omitempty"`
}

// DEKRequest is POST /v1/tenants/{tenant}/dek: deliver a DEK sealed with HPKE
// (RFC 9180) to the caller's public key, on top of TLS, for clients that
// encrypt locally.
type DEKRequest struct {
	Type    string `json:"type,omitempty"`    // default "data"
	Version uint32 `json:"version,omitempty"` // 0 = the active key
	// KEM is the HPKE KEM id of PublicKey: 0x0020 (DHKEM X25519) or
	// 0x647a (ML-KEM-768 + X25519).
	KEM       uint16 `json:"kem"`
	PublicKey []byte `json:"public_key"`
}

// DEKResponse carries the sealed DEK. The HPKE suite is KEM (as asked),
// HKDF-SHA256 and AES-256-GCM; info and associated data bind the tenant, type
// and version (see docs).
type DEKResponse struct {
	// TenantID is the ID of the tenant (the HPKE info binds it, with the
	// type and version).
	TenantID string `json:"tenant_id"`
	Type     string `json:"type"`
	Version  uint32 `json:"version"`
	Sealed   []byte `json:"sealed"` // enc || ciphertext, as hpke.Seal returns
}

// DEKsRequest is POST /v1/tenants/{tenant}/deks: deliver the DEKs of
// several key versions at once, sealed with HPKE to the caller's public key
// with a single encapsulation (see docs), e.g. every version a client will
// decrypt under, at its start.
type DEKsRequest struct {
	// KEM is the HPKE KEM id of PublicKey: 0x0020 (DHKEM X25519) or
	// 0x647a (ML-KEM-768 + X25519).
	KEM       uint16 `json:"kem"`
	PublicKey []byte `json:"public_key"`
	// Keys are the key versions whose DEKs are asked for, from 1 to 64
	// (and at most limits.max_batch); the same one may be asked twice.
	Keys []DEKKey `json:"keys"`
}

// DEKKey names a key version in a DEKsRequest.
type DEKKey struct {
	Type    string `json:"type,omitempty"`    // default "data"
	Version uint32 `json:"version,omitempty"` // 0 = the active key
}

// DEKsResponse carries the sealed DEKs, one item per key asked for, in the
// request's order.
type DEKsResponse struct {
	// TenantID is the ID of the tenant, in the header that each DEK's
	// associated data is.
	TenantID string `json:"tenant_id"`
	// Enc is the HPKE encapsulated key of the batch.
	Enc   []byte     `json:"enc"`
	Items []DEKsItem `json:"items"`
}

// DEKsItem is one DEK of a DEKsResponse: its key's type and version (the
// active one's number for version 0) and the DEK sealed, or why it was not
// delivered (the type and version asked for, then).
type DEKsItem struct {
	Type    string `json:"type"`
	Version uint32 `json:"version"`
	// Sealed is the DEK and its tag: the next message of the batch's HPKE
	// context, counting only the items delivered.
	Sealed []byte `json:"sealed,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// AuditEntry is one entry of the audit log (docs/audit.md).
type AuditEntry struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Actor string    `json:"actor"` // a token id, system, cli or anonymous
	// ActorName is the name of the actor's token, if it was given one
	// (revoked tokens keep theirs; resolved at listing, not part of the
	// entry's hash).
	ActorName string `json:"actor_name,omitempty"`
	Role      string `json:"role,omitempty"`
	Tenant    string `json:"tenant,omitempty"` // the tenant's id
	// TenantName is the tenant's name (resolved at listing; not part of
	// the entry's hash).
	TenantName string `json:"tenant_name,omitempty"`
	Action     string `json:"action"`
	Key        string `json:"key,omitempty"` // type/version
	Outcome    string `json:"outcome"`       // ok, refused, error
	Reason     string `json:"reason,omitempty"`
	Remote     string `json:"remote,omitempty"`
	Request    string `json:"request,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Count      uint64 `json:"count,omitempty"` // an aggregate of this many operations
	Hash       string `json:"hash"`            // the entry's chain hash, hex
}

// AuditList is GET /v1/audit and GET /v1/tenants/{tenant}/audit: entries in
// sequence order. Next, if not zero, is the after= of the next page.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
	Next    uint64       `json:"next,omitempty"`
}
