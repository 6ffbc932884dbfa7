package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongroom-kms/strongroom/internal/store"
)

// ---- tenant settings

// SetDerivationOptOut implements store.TenantSettingStore.
func (s *Store) SetDerivationOptOut(ctx context.Context, tenantID string, allowed bool) (store.Tenant, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return store.Tenant{}, err
	}
	var t store.Tenant
	err := s.change(ctx, "changing a tenant setting", func(tx pgx.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRow(ctx, `UPDATE tenants SET derivation_opt_out = $2 WHERE id = $1 RETURNING `+tenantCols,
			tenantID, allowed))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.Errorf(store.ErrNotFound, "no tenant with ID %s", tenantID)
		}
		return err
	})
	if err != nil {
		return store.Tenant{}, err
	}
	return t, nil
}

// ---- export keys

func exportKey(ctx context.Context, q querier, tenant string) (store.ExportKey, error) {
	var k store.ExportKey
	err := q.QueryRow(ctx, `SELECT tenant, release_id, wrapped, created FROM export_keys WHERE tenant = $1`, tenant).
		Scan(&k.Tenant, &k.Release, &k.Wrapped, &k.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ExportKey{}, store.Errorf(store.ErrNotFound, "tenant %s has no export key", tenant)
	}
	if err != nil {
		return store.ExportKey{}, dbErr("reading an export key", err)
	}
	k.Created = utc(k.Created)
	return k, nil
}

// ExportKey implements store.ExportKeyStore.
func (s *Store) ExportKey(ctx context.Context, tenantID string) (store.ExportKey, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return store.ExportKey{}, err
	}
	k, err := exportKey(ctx, s.pool, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		// Say which is missing: the tenant, or its export key.
		if _, terr := tenantByID(ctx, s.pool, tenantID); terr != nil {
			return store.ExportKey{}, terr
		}
	}
	return k, err
}

// releaseInstalled returns ErrNotFound unless release id is installed.
func releaseInstalled(ctx context.Context, q querier, id string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM releases WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Errorf(store.ErrNotFound, "release %s is not installed", id)
	}
	return err
}

// PutExportKey implements store.ExportKeyStore. Two nodes storing a key at
// once: the second INSERT waits for the first to commit and does nothing,
// and the read after it (a fresh READ COMMITTED snapshot) returns the first.
func (s *Store) PutExportKey(ctx context.Context, k store.ExportKey) (store.ExportKey, error) {
	k, err := k.Check()
	if err != nil {
		return store.ExportKey{}, err
	}
	var got store.ExportKey
	err = s.write(ctx, "storing an export key", func(tx pgx.Tx) error {
		if _, err := tenantByID(ctx, tx, k.Tenant); err != nil {
			return err
		}
		if err := releaseInstalled(ctx, tx, k.Release); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO export_keys (tenant, release_id, wrapped, created) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant) DO NOTHING`, k.Tenant, k.Release, k.Wrapped, k.Created); err != nil {
			return err
		}
		var err error
		got, err = exportKey(ctx, tx, k.Tenant)
		return err
	})
	if err != nil {
		return store.ExportKey{}, err
	}
	return got, nil
}

// ---- upload certificates

const certCols = `id, tenant, key_label, state, csr, certificate, not_before, not_after, created, retired`

func scanCert(row pgx.Row) (store.UploadCert, error) {
	var c store.UploadCert
	var state string
	var notBefore, notAfter, retired *time.Time
	if err := row.Scan(&c.ID, &c.Tenant, &c.KeyLabel, &state, &c.CSR, &c.Certificate,
		&notBefore, &notAfter, &c.Created, &retired); err != nil {
		return store.UploadCert{}, err
	}
	c.State = store.CertState(state)
	if len(c.CSR) == 0 {
		c.CSR = nil
	}
	if len(c.Certificate) == 0 {
		c.Certificate = nil
	}
	c.NotBefore, c.NotAfter = fromNullTime(notBefore), fromNullTime(notAfter)
	c.Created, c.Retired = utc(c.Created), fromNullTime(retired)
	return c, nil
}

// uploadCert reads a certificate; forUpdate locks its row until the end of
// the transaction.
func uploadCert(ctx context.Context, q querier, tenant, id string, forUpdate bool) (store.UploadCert, error) {
	sql := `SELECT ` + certCols + ` FROM upload_certs WHERE tenant = $1 AND id = $2`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	c, err := scanCert(q.QueryRow(ctx, sql, tenant, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.UploadCert{}, store.Errorf(store.ErrNotFound, "tenant %s has no upload certificate %s", tenant, id)
	}
	return c, dbErr("reading an upload certificate", err)
}

func validCertRef(tenant, id string) error {
	if err := store.ValidID("tenant", tenant); err != nil {
		return err
	}
	return store.ValidID("upload certificate", id)
}

// CreateUploadCert implements store.UploadCertStore.
func (s *Store) CreateUploadCert(ctx context.Context, c store.UploadCert) (store.UploadCert, error) {
	c, err := c.Check()
	if err != nil {
		return store.UploadCert{}, err
	}
	err = s.change(ctx, "creating an upload certificate", func(tx pgx.Tx) error {
		if _, err := tenantByID(ctx, tx, c.Tenant); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO upload_certs (`+certCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)`,
			c.ID, c.Tenant, c.KeyLabel, string(c.State), nullBlob(c.CSR), nullBlob(c.Certificate),
			nullTime(c.NotBefore), nullTime(c.NotAfter), c.Created)
		switch code, name := constraint(err); {
		case code == "23505" && name == "upload_certs_key_label_key":
			return store.Errorf(store.ErrExists, "an upload certificate with key label %q exists", c.KeyLabel)
		case code == "23505":
			return store.Errorf(store.ErrExists, "an upload certificate with ID %s exists", c.ID)
		case code == "23503":
			return store.Errorf(store.ErrNotFound, "no tenant with ID %s", c.Tenant)
		}
		return err
	})
	if err != nil {
		return store.UploadCert{}, err
	}
	return c, nil
}

// UploadCert implements store.UploadCertStore.
func (s *Store) UploadCert(ctx context.Context, tenantID, id string) (store.UploadCert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return store.UploadCert{}, err
	}
	return uploadCert(ctx, s.pool, tenantID, id, false)
}

// UploadCerts implements store.UploadCertStore.
func (s *Store) UploadCerts(ctx context.Context, tenantID string) ([]store.UploadCert, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return nil, err
	}
	if _, err := tenantByID(ctx, s.pool, tenantID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+certCols+` FROM upload_certs WHERE tenant = $1 ORDER BY created DESC, id`, tenantID)
	if err != nil {
		return nil, dbErr("listing upload certificates", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.UploadCert, error) { return scanCert(r) })
	if err != nil {
		return nil, dbErr("listing upload certificates", err)
	}
	return cs, nil
}

// ActivateUploadCert implements store.UploadCertStore. The certificate's row
// is locked (FOR UPDATE): of two activations at once, the second sees the
// first's result.
func (s *Store) ActivateUploadCert(ctx context.Context, tenantID, id string, der []byte, notBefore, notAfter time.Time) (store.UploadCert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return store.UploadCert{}, err
	}
	der, notBefore, notAfter, err := store.CheckCertificate(der, notBefore, notAfter)
	if err != nil {
		return store.UploadCert{}, err
	}
	var c store.UploadCert
	err = s.change(ctx, "activating an upload certificate", func(tx pgx.Tx) error {
		var err error
		if c, err = uploadCert(ctx, tx, tenantID, id, true); err != nil {
			return err
		}
		if c.State != store.CertPending {
			return store.Errorf(store.ErrConflict, "upload certificate %s is %s: only a pending certificate can be activated", id, c.State)
		}
		if _, err := tx.Exec(ctx, `UPDATE upload_certs SET state = 'active', certificate = $2, not_before = $3, not_after = $4
			WHERE id = $1`, id, der, notBefore, notAfter); err != nil {
			return err
		}
		c.State, c.Certificate, c.NotBefore, c.NotAfter = store.CertActive, der, notBefore, notAfter
		return nil
	})
	if err != nil {
		return store.UploadCert{}, err
	}
	return c, nil
}

// RetireUploadCert implements store.UploadCertStore. The certificate's row
// is locked, as for ActivateUploadCert.
func (s *Store) RetireUploadCert(ctx context.Context, tenantID, id string, now time.Time) (store.UploadCert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return store.UploadCert{}, err
	}
	now, err := store.CheckTime("retirement", now)
	if err != nil {
		return store.UploadCert{}, err
	}
	var c store.UploadCert
	err = s.change(ctx, "retiring an upload certificate", func(tx pgx.Tx) error {
		var err error
		if c, err = uploadCert(ctx, tx, tenantID, id, true); err != nil {
			return err
		}
		if c.State == store.CertRetired {
			return store.Errorf(store.ErrConflict, "upload certificate %s was retired at %s", id, c.Retired.Format(time.RFC3339Nano))
		}
		if _, err := tx.Exec(ctx, `UPDATE upload_certs SET state = 'retired', retired = $2 WHERE id = $1`, id, now); err != nil {
			return err
		}
		c.State, c.Retired = store.CertRetired, now
		return nil
	})
	if err != nil {
		return store.UploadCert{}, err
	}
	return c, nil
}

// ---- restoring keys

// RestoreKey implements store.KeyRestorer. It takes the series lock of
// Rotate and DestroyKey (lockSeries) before it reads the key and counts the
// live ones.
func (s *Store) RestoreKey(ctx context.Context, req store.RestoreRequest) (store.Key, error) {
	req, err := req.Check()
	if err != nil {
		return store.Key{}, err
	}
	var k store.Key
	err = s.change(ctx, "restoring a key", func(tx pgx.Tx) error {
		if ok, err := lockSeries(ctx, tx, req.Tenant, req.Type, false); err != nil {
			return err
		} else if !ok {
			return store.Errorf(store.ErrNotFound, "tenant %s has no %s key version %d", req.Tenant, req.Type, req.Version)
		}
		// Under the lock: these reads see every change committed before.
		old, err := keyVersion(ctx, tx, req.Tenant, req.Type, req.Version)
		if err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM keys WHERE tenant = $1 AND type = $2 AND state <> 'destroyed'`,
			req.Tenant, req.Type).Scan(&live); err != nil {
			return err
		}
		if k, err = req.Decide(old, live); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE keys SET state = 'archived', wrapped = $4, destroyed = NULL
			WHERE tenant = $1 AND type = $2 AND version = $3 AND state = 'destroyed'`,
			req.Tenant, req.Type, int64(req.Version), k.Wrapped)
		return err
	})
	if err != nil {
		return store.Key{}, err
	}
	return k, nil
}

// ---- destroyed keys

// destroyedCols is keyCols without the wrapped key (NULL anyway) and the
// fingerprint.
const destroyedCols = `tenant, type, version, state, source, derivation, release_id, NULL::bytea, NULL::bytea, created, destroyed`

// DestroyedSince implements store.DestroyWatcher.
func (s *Store) DestroyedSince(ctx context.Context, since time.Time) ([]store.Key, error) {
	if !since.IsZero() { // zero: year 1, before every destruction
		var err error
		if since, err = store.CheckTime("since", since); err != nil {
			return nil, err
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+destroyedCols+` FROM keys WHERE state = 'destroyed' AND destroyed >= $1
		ORDER BY destroyed, tenant, type, version`, since.UTC())
	if err != nil {
		return nil, dbErr("listing destroyed keys", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, dbErr("listing destroyed keys", err)
	}
	return ks, nil
}
