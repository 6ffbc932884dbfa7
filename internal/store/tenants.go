package store

import (
	"context"
	"database/sql"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Tenants. They are never deleted.

const tenantCols = `id, name, env, created, derivation_opt_out`

const (
	qTenantInsert = `INSERT INTO tenants (` + tenantCols + `) VALUES ($1, $2, $3, $4, $5)`
	qTenantByID   = `SELECT ` + tenantCols + ` FROM tenants WHERE id = $1`
	qTenantByName = `SELECT ` + tenantCols + ` FROM tenants WHERE name = $1`
	qTenants      = `SELECT ` + tenantCols + ` FROM tenants ORDER BY name`
	qTenantOptOut = `UPDATE tenants SET derivation_opt_out = $2 WHERE id = $1 RETURNING ` + tenantCols
	// qTenantLock is the row lock, with the dialect's ForUpdate, that
	// serialises the writes a per-tenant limit counts (upload
	// certificates, delegated tokens, failed uploads) across every node.
	qTenantLock = `SELECT 1 FROM tenants WHERE id = $1`
)

func scanTenant(sc scanner) (tenant.Tenant, error) {
	var t tenant.Tenant
	err := sc.Scan(&t.ID, &t.Name, &t.Env, timeValue{&t.Created}, &t.DerivationOptOut)
	return t, err
}

// CreateTenant stores t after validating it, and returns it as stored
// (Created truncated to the microsecond, in UTC), with rec in the same
// transaction. An empty ID is filled with tenant.NewID(). A tenant with the
// same ID or name → ErrExists. DerivationOptOut is stored as given:
// tenant.New sets its default, true.
func (s *Store) CreateTenant(ctx context.Context, t tenant.Tenant, rec audit.Entry) (tenant.Tenant, error) {
	t, err := checkTenant(t)
	if err != nil {
		return tenant.Tenant{}, err
	}
	err = s.change(ctx, "creating a tenant", rec, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, qTenantInsert, t.ID, t.Name, string(t.Env), s.d.Time(t.Created), t.DerivationOptOut)
		if f := s.d.Classify(err); f.Kind == Unique && f.Constraint == uniqueTenantName {
			return Errorf(ErrExists, "a tenant named %q exists", t.Name)
		} else if f.Kind == Unique {
			return Errorf(ErrExists, "a tenant with ID %s exists", t.ID)
		}
		return err
	})
	if err != nil {
		return tenant.Tenant{}, err
	}
	return t, nil
}

// TenantByName finds a tenant by its name, or returns ErrNotFound.
func (s *Store) TenantByName(ctx context.Context, name string) (tenant.Tenant, error) {
	if err := ValidTenantName(name); err != nil {
		return tenant.Tenant{}, err
	}
	t, err := scanTenant(s.db.QueryRowContext(ctx, qTenantByName, name))
	if noRows(err) {
		return tenant.Tenant{}, Errorf(ErrNotFound, "no tenant named %q", name)
	}
	return t, s.dbErr("reading a tenant", err)
}

// TenantByID finds a tenant by its ID, or returns ErrNotFound.
func (s *Store) TenantByID(ctx context.Context, id string) (tenant.Tenant, error) {
	if err := ValidID("tenant", id); err != nil {
		return tenant.Tenant{}, err
	}
	return s.tenantByID(ctx, s.db, id)
}

func (s *Store) tenantByID(ctx context.Context, q queryer, id string) (tenant.Tenant, error) {
	t, err := scanTenant(q.QueryRowContext(ctx, qTenantByID, id))
	if noRows(err) {
		return tenant.Tenant{}, Errorf(ErrNotFound, "no tenant with ID %s", id)
	}
	return t, s.dbErr("reading a tenant", err)
}

// lockTenant takes the row lock of a tenant (qTenantLock), or returns
// ErrNotFound. Each later statement of the transaction sees every change
// committed by the lock's previous holder.
func (s *Store) lockTenant(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, qTenantLock+s.d.ForUpdate, id).Scan(&one)
	if noRows(err) {
		return Errorf(ErrNotFound, "no tenant with ID %s", id)
	}
	return err
}

// Tenants lists every tenant, ordered by name.
func (s *Store) Tenants(ctx context.Context) ([]tenant.Tenant, error) {
	rows, err := s.db.QueryContext(ctx, qTenants)
	ts, err := collect(rows, err, scanTenant)
	return ts, s.dbErr("listing tenants", err)
}

// SetDerivationOptOut sets whether the tenant may opt out of key
// derivation, with rec, and returns the tenant as stored. An unknown tenant
// → ErrNotFound.
func (s *Store) SetDerivationOptOut(ctx context.Context, tenantID string, allowed bool, rec audit.Entry) (tenant.Tenant, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return tenant.Tenant{}, err
	}
	var t tenant.Tenant
	err := s.change(ctx, "changing a tenant setting", rec, func(tx *sql.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRowContext(ctx, qTenantOptOut, tenantID, allowed))
		if noRows(err) {
			return Errorf(ErrNotFound, "no tenant with ID %s", tenantID)
		}
		if err != nil {
			return err
		}
		return s.announce(ctx, tx, Change{Kind: TenantChanged, Tenant: tenantID})
	})
	if err != nil {
		return tenant.Tenant{}, err
	}
	s.committed(ctx, Change{Kind: TenantChanged, Tenant: tenantID})
	return t, nil
}

// checkTenant validates t and returns it as the store keeps it: ID filled
// with tenant.NewID() if empty, Created per Time.
func checkTenant(t tenant.Tenant) (tenant.Tenant, error) {
	if t.ID == "" {
		t.ID = tenant.NewID()
	}
	if err := ValidID("tenant", t.ID); err != nil {
		return tenant.Tenant{}, err
	}
	if err := ValidTenantName(t.Name); err != nil {
		return tenant.Tenant{}, err
	}
	if !t.Env.Valid() {
		return tenant.Tenant{}, invalidf("invalid environment %q: use %q, %q or %q", t.Env, tenant.EnvProduction, tenant.EnvDeveloper, tenant.EnvSandbox)
	}
	var err error
	if t.Created, err = CheckTime("tenant creation", t.Created); err != nil {
		return tenant.Tenant{}, err
	}
	return t, nil
}
