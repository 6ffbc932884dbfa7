package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/backup"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// ErrImportRefused: a backup file was refused (another tenant, another
// export key, a key version that still exists, a mismatch with the
// destroyed key). Nothing was changed.
var ErrImportRefused = errors.New("tenant: the backup was refused")

// Export returns an encrypted, self-describing backup of one key version
// (S12): the tenant secret sealed under the tenant's export key, with the
// tenant, type, version, source, derivation mode and release bound to it
// (internal/backup, docs/backup-format.md). A destroyed key cannot be
// exported.
func (s *Service) Export(ctx context.Context, tenantID, typ string, version uint32) ([]byte, store.Key, error) {
	if err := store.ValidKeyRef(tenantID, typ, version); err != nil {
		return nil, store.Key{}, fmt.Errorf("tenant: %w", err)
	}
	t, err := s.st.TenantByID(ctx, tenantID)
	if err != nil {
		return nil, store.Key{}, fmt.Errorf("tenant: %w", err)
	}
	k, err := s.key(ctx, tenantID, typ, version)
	if err != nil {
		return nil, store.Key{}, err
	}
	ref, err := refOf(k)
	if err != nil {
		return nil, store.Key{}, err
	}
	twk, err := s.ring.Secret(ctx, k.Release, release.SecretTWK)
	if err != nil {
		return nil, store.Key{}, fmt.Errorf("tenant: key version %d names release %s: %w", k.Version, k.Release, err)
	}
	defer twk.Destroy()
	ts, err := Unwrap(twk, ref, k.Wrapped)
	if err != nil {
		return nil, store.Key{}, fmt.Errorf("tenant: %s key version %d: %w", k.Type, k.Version, err)
	}
	defer ts.Destroy()
	ek, err := s.exportKey(ctx, tenantID)
	if err != nil {
		return nil, store.Key{}, err
	}
	defer ek.Destroy()
	file, err := backup.Seal(ek, backup.Header{
		Tenant:     t.ID,
		TenantName: t.Name,
		Type:       k.Type,
		Version:    k.Version,
		Source:     string(k.Source),
		Derivation: string(k.Derivation),
		Release:    k.Release,
		Created:    k.Created,
		Exported:   store.Time(s.now()),
	}, ts)
	if err != nil {
		return nil, store.Key{}, fmt.Errorf("tenant: sealing the backup: %w", err)
	}
	return file, meta(k), nil
}

// Import brings a destroyed key version back from its backup file (S12),
// archived: data under it decrypts again, and it never becomes the active
// key. The backup must be this tenant's, sealed under its export key, and
// name a key version that exists and is destroyed, with the same source,
// derivation mode and release, and the same value (keyed fingerprint).
// Everything else is refused with ErrImportRefused and changes nothing.
func (s *Service) Import(ctx context.Context, tenantID string, file []byte) (store.Key, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return store.Key{}, fmt.Errorf("tenant: %w", err)
	}
	f, err := backup.Parse(file)
	if err != nil {
		return store.Key{}, fmt.Errorf("tenant: %w: %w", store.ErrInvalid, err)
	}
	h := f.Header
	auditKey(ctx, h.Type, h.Version)
	if h.Tenant != tenantID {
		return store.Key{}, fmt.Errorf("%w: it belongs to tenant %s (%s), not to this tenant", ErrImportRefused, h.Tenant, h.TenantName)
	}
	if _, err := s.st.TenantByID(ctx, tenantID); err != nil {
		return store.Key{}, fmt.Errorf("tenant: %w", err)
	}
	if _, err := s.st.ExportKey(ctx, tenantID); errors.Is(err, store.ErrNotFound) {
		// Without an export key the tenant never exported anything here:
		// do not make one just to fail to open the file.
		return store.Key{}, fmt.Errorf("%w: this tenant has no export key in this region's database, so the backup was not made here",
			ErrImportRefused)
	} else if err != nil {
		return store.Key{}, fmt.Errorf("tenant: %w", err)
	}
	ek, err := s.exportKey(ctx, tenantID)
	if err != nil {
		return store.Key{}, err
	}
	defer ek.Destroy()
	ts, err := backup.Open(ek, f)
	if err != nil {
		return store.Key{}, fmt.Errorf("%w: %w", ErrImportRefused, err)
	}
	defer ts.Destroy()

	k, err := s.st.Key(ctx, tenantID, h.Type, h.Version)
	if errors.Is(err, store.ErrNotFound) {
		return store.Key{}, fmt.Errorf("%w: the tenant has no %s key version %d", ErrImportRefused, h.Type, h.Version)
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("tenant: reading a key: %w", err)
	}
	if k.State != store.StateDestroyed {
		return store.Key{}, fmt.Errorf("%w: %s key version %d still exists (%s): a backup can be imported only after the original was destroyed",
			ErrImportRefused, k.Type, k.Version, k.State)
	}
	if err := h.Matches(k); err != nil {
		return store.Key{}, fmt.Errorf("%w: the backup does not describe the destroyed %s key version %d: %w", ErrImportRefused, k.Type, k.Version, err)
	}
	fp, err := s.fingerprint(ctx, tenantID, ts)
	if err != nil {
		return store.Key{}, err
	}
	ref, err := refOf(k)
	if err != nil {
		return store.Key{}, err
	}
	twk, err := s.ring.Secret(ctx, k.Release, release.SecretTWK)
	if err != nil {
		return store.Key{}, fmt.Errorf("tenant: key version %d names release %s: %w", k.Version, k.Release, err)
	}
	defer twk.Destroy()
	wrapped, err := Wrap(twk, ref, ts)
	if err != nil {
		return store.Key{}, fmt.Errorf("tenant: wrapping the imported key: %w", err)
	}
	restored, err := s.st.RestoreKey(ctx, store.RestoreRequest{
		Tenant: tenantID, Type: k.Type, Version: k.Version,
		Release: k.Release, Wrapped: wrapped, Fingerprint: fp,
		MaxKeys: s.pol.MaxKeys(), Now: s.now(),
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Key{}, fmt.Errorf("%w: %w", ErrImportRefused, err)
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("tenant: importing %s key version %d: %w", k.Type, k.Version, err)
	}
	return meta(restored), nil
}
