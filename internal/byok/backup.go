package byok

import (
	"context"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/backup"
	"github.com/strongroom-kms/strongroom/internal/exportkey"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// ErrImportRefused: a backup file was refused (another tenant, another
// export key, a key version that still exists, a mismatch with the
// destroyed key). Nothing was changed.
var ErrImportRefused = errors.New("byok: the backup was refused")

// Export returns an encrypted, self-describing backup of one key version
// (S12): the tenant secret sealed under the tenant's export key, with the
// tenant, type, version, source, derivation mode and release bound to it
// (internal/backup, docs/backup-format.md). A destroyed key cannot be
// exported.
//
// rec is the request's audit entry; Export names the key in it.
func (s *Service) Export(ctx context.Context, rec *audit.Entry, r tenant.KeyRef) ([]byte, tenant.Key, error) {
	rec.Key = r.Name()
	if err := store.ValidKeyRef(r); err != nil {
		return nil, tenant.Key{}, fmt.Errorf("byok: %w", err)
	}
	t, err := s.st.TenantByID(ctx, r.Tenant)
	if err != nil {
		return nil, tenant.Key{}, fmt.Errorf("byok: %w", err)
	}
	k, err := s.st.Key(ctx, r)
	if errors.Is(err, store.ErrNotFound) {
		return nil, tenant.Key{}, reason.Wrap(store.ErrNotFound, err, "tenant %q has no %s key version %d", t.Name, r.Type, r.Version)
	}
	if err != nil {
		return nil, tenant.Key{}, fmt.Errorf("byok: reading a key: %w", err)
	}
	if k.Source == tenant.SourceCacheOnly && k.State != tenant.StateDestroyed {
		return nil, tenant.Key{}, reason.New(store.ErrInvalid, "%s key version %d is cache-only: its material is in the tenant's key service, never here, and cannot be exported",
			k.Type, k.Version)
	}
	if k.State == tenant.StateDestroyed || k.Wrapped == nil {
		return nil, tenant.Key{}, tenant.DestroyedError(k)
	}
	twk, err := s.ring.Secret(ctx, k.Release, release.SecretTWK)
	if err != nil {
		return nil, tenant.Key{}, fmt.Errorf("byok: key version %d names release %s: %w", k.Version, k.Release, err)
	}
	defer twk.Destroy()
	ts, err := tenant.Unwrap(twk, k.Ref(), k.Wrapped)
	if err != nil {
		return nil, tenant.Key{}, fmt.Errorf("byok: %s key version %d: %w", k.Type, k.Version, err)
	}
	defer ts.Destroy()
	ek, err := s.ek.Key(ctx, rec, r.Tenant)
	if err != nil {
		return nil, tenant.Key{}, err
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
		Exported:   s.now().UTC(),
	}, ts)
	if err != nil {
		return nil, tenant.Key{}, fmt.Errorf("byok: sealing the backup: %w", err)
	}
	return file, k.Meta(), nil
}

// Import brings a destroyed key version back from its backup file (S12),
// archived: data under it decrypts again, and it never becomes the active
// key. The backup must be this tenant's, sealed under its export key, and
// name a key version that exists and is destroyed, with the same source,
// derivation mode and release, and the same value (keyed fingerprint).
// Everything else is refused with ErrImportRefused and changes nothing.
//
// rec is the request's audit entry; Import names the key in it, and the
// store appends it with the restoration.
func (s *Service) Import(ctx context.Context, rec *audit.Entry, tenantID string, file []byte) (tenant.Key, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return tenant.Key{}, fmt.Errorf("byok: %w", err)
	}
	f, err := backup.Parse(file)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("byok: %w: %w", store.ErrInvalid, err)
	}
	h := f.Header
	rec.Key = tenant.KeyRef{Type: h.Type, Version: h.Version}.Name()
	if h.Tenant != tenantID {
		return tenant.Key{}, reason.Wrap(ErrImportRefused, fmt.Errorf("the backup names tenant %s", h.Tenant),
			"the backup was refused: it belongs to tenant %q, not to this tenant", h.TenantName)
	}
	t, err := s.st.TenantByID(ctx, tenantID)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("byok: %w", err)
	}
	// Without an export key the tenant never exported anything here: do
	// not make one just to fail to open the file.
	ek, err := s.ek.Existing(ctx, tenantID)
	if errors.Is(err, exportkey.ErrNone) {
		return tenant.Key{}, reason.New(ErrImportRefused,
			"the backup was refused: tenant %q has no export key in this region's database, so the backup was not made here", t.Name)
	}
	if err != nil {
		return tenant.Key{}, err
	}
	defer ek.Destroy()
	ts, err := backup.Open(ek, f)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("%w: %w", ErrImportRefused, err)
	}
	defer ts.Destroy()

	k, err := s.st.Key(ctx, tenant.KeyRef{Tenant: tenantID, Type: h.Type, Version: h.Version})
	if errors.Is(err, store.ErrNotFound) {
		return tenant.Key{}, reason.Wrap(ErrImportRefused, err, "the backup was refused: tenant %q has no %s key version %d", t.Name, h.Type, h.Version)
	}
	if err != nil {
		return tenant.Key{}, fmt.Errorf("byok: reading a key: %w", err)
	}
	if k.State != tenant.StateDestroyed {
		return tenant.Key{}, reason.New(ErrImportRefused,
			"the backup was refused: %s key version %d still exists (%s): a backup can be imported only after the original was destroyed",
			k.Type, k.Version, k.State)
	}
	if err := h.Matches(k); err != nil {
		return tenant.Key{}, reason.Wrap(ErrImportRefused, err, "the backup was refused: it does not describe the destroyed %s key version %d",
			k.Type, k.Version)
	}
	fp, err := s.ek.Fingerprint(ctx, rec, tenantID, ts)
	if err != nil {
		return tenant.Key{}, err
	}
	twk, err := s.ring.Secret(ctx, k.Release, release.SecretTWK)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("byok: key version %d names release %s: %w", k.Version, k.Release, err)
	}
	defer twk.Destroy()
	wrapped, err := tenant.Wrap(twk, k.Ref(), ts)
	if err != nil {
		return tenant.Key{}, fmt.Errorf("byok: wrapping the imported key: %w", err)
	}
	restored, err := s.st.RestoreKey(ctx, store.RestoreRequest{
		Tenant: tenantID, Type: k.Type, Version: k.Version,
		Release: k.Release, Wrapped: wrapped, Fingerprint: fp,
		MaxKeys: s.pol.MaxKeys(), Now: s.now(),
	}, *rec)
	if errors.Is(err, store.ErrConflict) {
		return tenant.Key{}, reason.Wrap(ErrImportRefused, err,
			"the backup was refused: it is not the backup of the destroyed %s key version %d, or that version is destroyed no more", k.Type, k.Version)
	}
	if err != nil {
		return tenant.Key{}, fmt.Errorf("byok: importing %s key version %d: %w", k.Type, k.Version, err)
	}
	return restored.Meta(), nil
}
