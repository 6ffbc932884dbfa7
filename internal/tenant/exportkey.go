package tenant

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// A tenant's export key is 32 random bytes from the regional HSM, made the
// first time the tenant needs it and kept for the tenant's life. It seals
// the tenant's backup files (internal/backup) and keys the fingerprints of
// its secrets. It is stored wrapped under the TWK of the release that was
// current when it was made,
//
//	u8 version = 1 || u8<> release id || AES-256-GCM(TWK, export key, aad)
//	aad = u8<> "strongroom tenant export key v1" || u8<> tenant id || u8<> release id
//
// and it outlives later releases: that release stays loadable (S7), so a
// backup made years ago still imports. Every node of a region derives the
// same fingerprints and opens the same backups, because every node loads
// every release.

// exportKeyCacheID is the key cache id of a tenant's export key.
func exportKeyCacheID(tenantID string) string { return "export/" + tenantID }

func exportKeyAAD(tenantID, rel string) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte("strongroom tenant export key v1")) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(tenantID)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(rel)) })
	return b.BytesOrPanic()
}

// wrapExportKey seals a tenant's export key under the TWK of release rel.
func wrapExportKey(twk secret.Key, tenantID, rel string, ek secret.Key) ([]byte, error) {
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

// unwrapExportKey opens a stored export key.
func unwrapExportKey(twk secret.Key, k store.ExportKey) (secret.Key, error) {
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

// exportKey returns the tenant's export key, making and storing it on first
// use (the first node to store one wins; the others use it). The caller
// destroys the result. It is cached sealed in the key cache.
func (s *Service) exportKey(ctx context.Context, tenantID string) (secret.Key, error) {
	return s.cache.GetOrLoad(ctx, exportKeyCacheID(tenantID), func(ctx context.Context) (secret.Key, error) {
		k, err := s.st.ExportKey(ctx, tenantID)
		if errors.Is(err, store.ErrNotFound) {
			k, err = s.newExportKey(ctx, tenantID)
		}
		if err != nil {
			return secret.Key{}, fmt.Errorf("tenant: the export key of tenant %s: %w", tenantID, err)
		}
		twk, err := s.ring.Secret(ctx, k.Release, release.SecretTWK)
		if err != nil {
			return secret.Key{}, fmt.Errorf("tenant: the export key of tenant %s is wrapped under release %s: %w", tenantID, k.Release, err)
		}
		defer twk.Destroy()
		return unwrapExportKey(twk, k)
	})
}

// newExportKey makes and stores a tenant's export key, or returns the one
// another node stored first.
func (s *Service) newExportKey(ctx context.Context, tenantID string) (store.ExportKey, error) {
	cur, err := s.ring.Current()
	if err != nil {
		return store.ExportKey{}, fmt.Errorf("no release to wrap it under: %w", err)
	}
	twk, err := s.ring.Secret(ctx, cur.ID, release.SecretTWK)
	if err != nil {
		return store.ExportKey{}, fmt.Errorf("the TWK of release %s: %w", cur.ID, err)
	}
	defer twk.Destroy()
	ek, err := s.random(ctx)
	if err != nil {
		return store.ExportKey{}, err
	}
	defer ek.Destroy()
	wrapped, err := wrapExportKey(twk, tenantID, cur.ID, ek)
	if err != nil {
		return store.ExportKey{}, err
	}
	k, err := s.st.PutExportKey(ctx, store.ExportKey{Tenant: tenantID, Release: cur.ID, Wrapped: wrapped, Created: s.now()})
	if err != nil || !bytes.Equal(k.Wrapped, wrapped) {
		return k, err // another node made it first, and recorded it
	}
	e := audit.Entry{Actor: audit.ActorSystem}
	if p := store.PendingAuditFrom(ctx); p != nil {
		e = p.Entry()
	}
	e.Time, e.Tenant, e.Key, e.Count = s.now(), tenantID, "", 0
	e.Action, e.Outcome, e.Reason = actionExportKeyCreate, audit.OutcomeOK, ""
	e.Detail = "the tenant's export key made in the HSM, wrapped under the TWK of release " + cur.ID
	if _, err := s.st.AppendAudit(ctx, e); err != nil {
		return store.ExportKey{}, fmt.Errorf("recording the new export key in the audit log: %w", err)
	}
	return k, nil
}

// actionExportKeyCreate is the audit action of a tenant's export key being
// made (once per tenant).
const actionExportKeyCreate audit.Action = "tenant.export-key.create"

// random returns 32 random bytes from the regional HSM as a secret.
func (s *Service) random(ctx context.Context) (secret.Key, error) {
	raw, err := s.h.Random(ctx, secret.Size)
	if err != nil {
		return secret.Key{}, fmt.Errorf("tenant: random bytes from the HSM: %w", err)
	}
	defer clear(raw)
	k, err := secret.New(raw)
	if err != nil {
		return secret.Key{}, fmt.Errorf("tenant: the HSM returned %d random bytes, want %d", len(raw), secret.Size)
	}
	return k, nil
}

// fingerprintInfo is the HKDF info of the fingerprint key.
const fingerprintInfo = "strongroom tenant secret fingerprint v1"

// fingerprint is the keyed fingerprint of a tenant secret:
//
//	HMAC-SHA256(HKDF-SHA256(export key, salt = tenant id, info), secret)
//
// The store keeps it, never the secret, to refuse the same uploaded value
// twice and to check that an imported backup holds the destroyed key's
// value. Without the tenant's export key it says nothing about the secret.
func (s *Service) fingerprint(ctx context.Context, tenantID string, ts secret.Key) ([]byte, error) {
	ek, err := s.exportKey(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	defer ek.Destroy()
	fk, err := primitive.HKDF(ek.Bytes(), []byte(tenantID), []byte(fingerprintInfo), 32)
	if err != nil {
		return nil, fmt.Errorf("tenant: the fingerprint key: %w", err)
	}
	defer clear(fk)
	return primitive.HMAC(fk, ts.Bytes()), nil
}
