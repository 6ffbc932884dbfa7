package tenant

import (
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// ExportKey is a tenant's long-lived export key as the region keeps it: 32
// random bytes (made by the regional HSM) that seal the tenant's backup
// files and key the fingerprints of its secrets, stored only wrapped
// (WrapExportKey) under the TWK of the release that was current when it was
// made. It outlives later releases: that release stays loadable (S7), so a
// backup made years ago still imports, and every node of a region opens the
// same backups because every node loads every release.
type ExportKey struct {
	Tenant  string // tenant ID
	Release string // the release whose TWK wraps it
	Wrapped []byte
	Created time.Time
}

// The wrapped export key is
//
//	u8 version = 1 || u8<> release id || AES-256-GCM(TWK, export key, aad)
//	aad = u8<> "strongroom tenant export key v1" || u8<> tenant id || u8<> release id
func exportKeyAAD(tenantID, rel string) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte("strongroom tenant export key v1")) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(tenantID)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(rel)) })
	return b.BytesOrPanic()
}

// WrapExportKey seals a tenant's export key under the TWK of release rel.
func WrapExportKey(twk secret.Key, tenantID, rel string, ek secret.Key) ([]byte, error) {
	sealed, err := primitive.Seal(twk, ek.Bytes(), exportKeyAAD(tenantID, rel))
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint8(wrapVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(rel)) })
	b.AddBytes(sealed)
	return b.Bytes()
}

// UnwrapExportKey opens a stored export key under the TWK of its release.
func UnwrapExportKey(twk secret.Key, k ExportKey) (secret.Key, error) {
	rel, err := WrappedRelease(k.Wrapped)
	if err != nil || rel != k.Release {
		return secret.Key{}, fmt.Errorf("tenant: the export key of tenant %s is malformed", k.Tenant)
	}
	pt, err := primitive.Open(twk, k.Wrapped[2+len(rel):], exportKeyAAD(k.Tenant, rel))
	if err != nil {
		return secret.Key{}, fmt.Errorf("tenant: the export key of tenant %s does not open under release %s: %w", k.Tenant, rel, ErrUnwrap)
	}
	defer clear(pt)
	return secret.New(pt)
}
