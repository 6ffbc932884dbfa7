package store

import (
	"bytes"
	"context"
	"database/sql"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Tenants' export keys: one per tenant, never replaced nor deleted.

const (
	qExportKey       = `SELECT tenant, release_id, wrapped, created FROM export_keys WHERE tenant = $1`
	qExportKeyInsert = `INSERT INTO export_keys (tenant, release_id, wrapped, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant) DO NOTHING`
)

func (s *Store) exportKey(ctx context.Context, q queryer, tenantID string) (tenant.ExportKey, error) {
	var k tenant.ExportKey
	err := q.QueryRowContext(ctx, qExportKey, tenantID).Scan(&k.Tenant, &k.Release, &k.Wrapped, timeValue{&k.Created})
	if noRows(err) {
		return tenant.ExportKey{}, Errorf(ErrNotFound, "tenant %s has no export key", tenantID)
	}
	return k, s.dbErr("reading an export key", err)
}

// ExportKey returns the tenant's export key, or ErrNotFound if it has none
// yet. An unknown tenant is ErrNotFound too.
func (s *Store) ExportKey(ctx context.Context, tenantID string) (tenant.ExportKey, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return tenant.ExportKey{}, err
	}
	var k tenant.ExportKey
	err := s.read(ctx, "reading an export key", func(tx *sql.Tx) error {
		if _, err := s.tenantByID(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		k, err = s.exportKey(ctx, tx, tenantID)
		return err
	})
	if err != nil {
		return tenant.ExportKey{}, err
	}
	return k, nil
}

// PutExportKey stores k as its tenant's export key unless the tenant has one
// already, and returns the one stored: k (per checkExportKey), with rec in
// the same transaction; or the existing key when another node stored one
// first (first writer wins, no error, and rec is not appended: the caller
// uses what it returns). The tenant and the release must exist
// (ErrNotFound). Two nodes storing a key at once: the second insert waits
// for the first to commit and does nothing.
func (s *Store) PutExportKey(ctx context.Context, k tenant.ExportKey, rec audit.Entry) (tenant.ExportKey, error) {
	k, err := checkExportKey(k)
	if err != nil {
		return tenant.ExportKey{}, err
	}
	rec.Outcome, rec.Reason = audit.OutcomeOK, ""
	if err := checkEntry(rec); err != nil {
		return tenant.ExportKey{}, err
	}
	var got tenant.ExportKey
	err = s.write(ctx, "storing an export key", func(tx *sql.Tx) error {
		if _, err := s.tenantByID(ctx, tx, k.Tenant); err != nil {
			return err
		}
		if err := s.releaseInstalled(ctx, tx, k.Release); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, qExportKeyInsert, k.Tenant, k.Release, k.Wrapped, s.d.Time(k.Created))
		if err != nil {
			return err
		}
		if got, err = s.exportKey(ctx, tx, k.Tenant); err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 && bytes.Equal(got.Wrapped, k.Wrapped) {
			_, err = s.appendAudit(ctx, tx, rec)
			return err
		}
		return nil
	})
	if err != nil {
		return tenant.ExportKey{}, err
	}
	return got, nil
}

// checkExportKey validates k and returns it as the store keeps it: Created
// per Time, Wrapped copied.
func checkExportKey(k tenant.ExportKey) (tenant.ExportKey, error) {
	if err := ValidID("tenant", k.Tenant); err != nil {
		return tenant.ExportKey{}, err
	}
	if err := ValidReleaseID(k.Release); err != nil {
		return tenant.ExportKey{}, err
	}
	if len(k.Wrapped) == 0 || len(k.Wrapped) > MaxWrapped {
		return tenant.ExportKey{}, invalidf("the export key's wrapped material must be 1 to %d bytes, not %d", MaxWrapped, len(k.Wrapped))
	}
	var err error
	if k.Created, err = CheckTime("export key creation", k.Created); err != nil {
		return tenant.ExportKey{}, err
	}
	k.Wrapped = bytes.Clone(k.Wrapped)
	return k, nil
}
