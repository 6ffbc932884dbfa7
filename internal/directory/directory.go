// Package directory is a region's tenants: creating them, finding them by
// name or ID, listing them, and the operator settings of each (S8, S10).
// Tenants are never deleted.
package directory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Store is where tenants are kept (internal/store.Store).
type Store interface {
	CreateTenant(ctx context.Context, t tenant.Tenant, rec audit.Entry) (tenant.Tenant, error)
	TenantByName(ctx context.Context, name string) (tenant.Tenant, error)
	TenantByID(ctx context.Context, id string) (tenant.Tenant, error)
	Tenants(ctx context.Context) ([]tenant.Tenant, error)
	SetDerivationOptOut(ctx context.Context, tenantID string, allowed bool, rec audit.Entry) (tenant.Tenant, error)
}

// Directory is a region's tenants. It is safe for concurrent use.
type Directory struct {
	st  Store
	now func() time.Time
}

// New returns the Directory over st. now is the clock; nil means time.Now.
func New(st Store, now func() time.Time) *Directory {
	if now == nil {
		now = time.Now
	}
	return &Directory{st: st, now: now}
}

// Create makes a tenant named name in environment env, with the default
// settings, and records rec (naming the new tenant in it) with it. A name
// in use is store.ErrExists; an invalid name or environment
// store.ErrInvalid. rec names the new tenant only once it exists: a
// refusal stays with the caller's entry as it came.
func (d *Directory) Create(ctx context.Context, rec *audit.Entry, name string, env tenant.Environment) (tenant.Tenant, error) {
	switch {
	case !tenant.ValidName(name):
		return tenant.Tenant{}, reason.New(store.ErrInvalid, "invalid tenant name %q: use a lowercase letter or digit "+
			"followed by up to 62 lowercase letters, digits or '-' (e.g. acme-prod)", name)
	case !env.Valid():
		return tenant.Tenant{}, reason.New(store.ErrInvalid, "invalid environment %q: use %q, %q or %q",
			env, tenant.EnvProduction, tenant.EnvDeveloper, tenant.EnvSandbox)
	}
	t := tenant.New(name, env, d.now())
	e := *rec
	e.Tenant = t.ID
	t, err := d.st.CreateTenant(ctx, t, e)
	if errors.Is(err, store.ErrExists) {
		return tenant.Tenant{}, reason.Wrap(store.ErrExists, err, "a tenant named %q exists", name)
	}
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("directory: %w", err)
	}
	rec.Tenant = t.ID
	return t, nil
}

// ByName finds a tenant by its name. A name that cannot be a tenant's is
// store.ErrNotFound, like an unknown one, without asking the store.
func (d *Directory) ByName(ctx context.Context, name string) (tenant.Tenant, error) {
	if !tenant.ValidName(name) {
		return tenant.Tenant{}, fmt.Errorf("directory: no tenant named %q: %w", name, store.ErrNotFound)
	}
	return d.st.TenantByName(ctx, name)
}

// ByID finds a tenant by its ID.
func (d *Directory) ByID(ctx context.Context, id string) (tenant.Tenant, error) {
	return d.st.TenantByID(ctx, id)
}

// List lists every tenant, ordered by name.
func (d *Directory) List(ctx context.Context) ([]tenant.Tenant, error) { return d.st.Tenants(ctx) }

// SetDerivationOptOut is the operator setting that allows (the default) or
// forbids a tenant to upload keys in derivation mode none, recorded with
// rec. Keys uploaded before keep their mode.
func (d *Directory) SetDerivationOptOut(ctx context.Context, rec *audit.Entry, tenantID string, allowed bool) (tenant.Tenant, error) {
	t, err := d.st.SetDerivationOptOut(ctx, tenantID, allowed, *rec)
	if err != nil {
		return tenant.Tenant{}, fmt.Errorf("directory: %w", err)
	}
	return t, nil
}
