package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/store"
)

// ---- tenant settings

// SetDerivationOptOut implements store.TenantSettingStore.
func (s *Store) SetDerivationOptOut(ctx context.Context, tenantID string, allowed bool) (store.Tenant, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return store.Tenant{}, err
	}
	var t store.Tenant
	err := s.change(ctx, "changing a tenant setting", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenants SET derivation_opt_out = ? WHERE id = ?`, bool01(allowed), tenantID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.Errorf(store.ErrNotFound, "no tenant with ID %s", tenantID)
		}
		t, err = tenantByID(ctx, tx, tenantID)
		return err
	})
	if err != nil {
		return store.Tenant{}, err
	}
	return t, nil
}

// ---- export keys

func exportKey(ctx context.Context, q queryer, tenant string) (store.ExportKey, error) {
	var k store.ExportKey
	var created int64
	err := q.QueryRowContext(ctx, `SELECT tenant, release_id, wrapped, created FROM export_keys WHERE tenant = ?`, tenant).
		Scan(&k.Tenant, &k.Release, &k.Wrapped, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ExportKey{}, store.Errorf(store.ErrNotFound, "tenant %s has no export key", tenant)
	}
	if err != nil {
		return store.ExportKey{}, dbErr("reading an export key", err)
	}
	k.Created = fromMicros(created)
	return k, nil
}

// ExportKey implements store.ExportKeyStore.
func (s *Store) ExportKey(ctx context.Context, tenantID string) (store.ExportKey, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return store.ExportKey{}, err
	}
	var k store.ExportKey
	err := s.read(ctx, "reading an export key", func(tx *sql.Tx) error {
		if _, err := tenantByID(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		k, err = exportKey(ctx, tx, tenantID)
		return err
	})
	if err != nil {
		return store.ExportKey{}, err
	}
	return k, nil
}

// releaseInstalled returns ErrNotFound unless release id is installed.
func releaseInstalled(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM releases WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Errorf(store.ErrNotFound, "release %s is not installed", id)
	}
	return err
}

// PutExportKey implements store.ExportKeyStore.
func (s *Store) PutExportKey(ctx context.Context, k store.ExportKey) (store.ExportKey, error) {
	k, err := k.Check()
	if err != nil {
		return store.ExportKey{}, err
	}
	var got store.ExportKey
	err = s.write(ctx, "storing an export key", func(tx *sql.Tx) error {
		if _, err := tenantByID(ctx, tx, k.Tenant); err != nil {
			return err
		}
		if err := releaseInstalled(ctx, tx, k.Release); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO export_keys (tenant, release_id, wrapped, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant) DO NOTHING`, k.Tenant, k.Release, k.Wrapped, micros(k.Created)); err != nil {
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

func scanCert(sc interface{ Scan(...any) error }) (store.UploadCert, error) {
	var c store.UploadCert
	var created int64
	var notBefore, notAfter, retired sql.NullInt64
	if err := sc.Scan(&c.ID, &c.Tenant, &c.KeyLabel, &c.State, &c.CSR, &c.Certificate,
		&notBefore, &notAfter, &created, &retired); err != nil {
		return store.UploadCert{}, err
	}
	c.CSR, c.Certificate = nilIfEmpty(c.CSR), nilIfEmpty(c.Certificate)
	c.NotBefore, c.NotAfter = fromNullMicros(notBefore), fromNullMicros(notAfter)
	c.Created, c.Retired = fromMicros(created), fromNullMicros(retired)
	return c, nil
}

func uploadCert(ctx context.Context, q queryer, tenant, id string) (store.UploadCert, error) {
	c, err := scanCert(q.QueryRowContext(ctx, `SELECT `+certCols+` FROM upload_certs WHERE tenant = ? AND id = ?`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	err = s.change(ctx, "creating an upload certificate", func(tx *sql.Tx) error {
		if _, err := tenantByID(ctx, tx, c.Tenant); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO upload_certs (`+certCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			c.ID, c.Tenant, c.KeyLabel, string(c.State), nullBlob(c.CSR), nullBlob(c.Certificate),
			nullMicros(c.NotBefore), nullMicros(c.NotAfter), micros(c.Created))
		switch {
		case isUnique(err) && strings.Contains(err.Error(), "upload_certs.key_label"):
			return store.Errorf(store.ErrExists, "an upload certificate with key label %q exists", c.KeyLabel)
		case isUnique(err):
			return store.Errorf(store.ErrExists, "an upload certificate with ID %s exists", c.ID)
		case isForeignKey(err):
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
	return uploadCert(ctx, s.db, tenantID, id)
}

// UploadCerts implements store.UploadCertStore.
func (s *Store) UploadCerts(ctx context.Context, tenantID string) ([]store.UploadCert, error) {
	if err := store.ValidID("tenant", tenantID); err != nil {
		return nil, err
	}
	var cs []store.UploadCert
	err := s.read(ctx, "listing upload certificates", func(tx *sql.Tx) error {
		if _, err := tenantByID(ctx, tx, tenantID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+certCols+` FROM upload_certs WHERE tenant = ? ORDER BY created DESC, id`, tenantID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanCert(rows)
			if err != nil {
				return err
			}
			cs = append(cs, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// ActivateUploadCert implements store.UploadCertStore.
func (s *Store) ActivateUploadCert(ctx context.Context, tenantID, id string, der []byte, notBefore, notAfter time.Time) (store.UploadCert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return store.UploadCert{}, err
	}
	der, notBefore, notAfter, err := store.CheckCertificate(der, notBefore, notAfter)
	if err != nil {
		return store.UploadCert{}, err
	}
	var c store.UploadCert
	err = s.change(ctx, "activating an upload certificate", func(tx *sql.Tx) error {
		var err error
		if c, err = uploadCert(ctx, tx, tenantID, id); err != nil {
			return err
		}
		if c.State != store.CertPending {
			return store.Errorf(store.ErrConflict, "upload certificate %s is %s: only a pending certificate can be activated", id, c.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE upload_certs SET state = 'active', certificate = ?, not_before = ?, not_after = ?
			WHERE id = ?`, der, micros(notBefore), micros(notAfter), id); err != nil {
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

// RetireUploadCert implements store.UploadCertStore.
func (s *Store) RetireUploadCert(ctx context.Context, tenantID, id string, now time.Time) (store.UploadCert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return store.UploadCert{}, err
	}
	now, err := store.CheckTime("retirement", now)
	if err != nil {
		return store.UploadCert{}, err
	}
	var c store.UploadCert
	err = s.change(ctx, "retiring an upload certificate", func(tx *sql.Tx) error {
		var err error
		if c, err = uploadCert(ctx, tx, tenantID, id); err != nil {
			return err
		}
		if c.State == store.CertRetired {
			return store.Errorf(store.ErrConflict, "upload certificate %s was retired at %s", id, c.Retired.Format(time.RFC3339Nano))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE upload_certs SET state = 'retired', retired = ? WHERE id = ?`, micros(now), id); err != nil {
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

// RestoreKey implements store.KeyRestorer. Like Rotate and DestroyKey, it
// runs in a BEGIN IMMEDIATE transaction, serialised with every other writer.
func (s *Store) RestoreKey(ctx context.Context, req store.RestoreRequest) (store.Key, error) {
	req, err := req.Check()
	if err != nil {
		return store.Key{}, err
	}
	var k store.Key
	err = s.change(ctx, "restoring a key", func(tx *sql.Tx) error {
		old, err := keyVersion(ctx, tx, req.Tenant, req.Type, req.Version)
		if err != nil {
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE tenant = ? AND type = ? AND state <> 'destroyed'`,
			req.Tenant, req.Type).Scan(&live); err != nil {
			return err
		}
		if k, err = req.Decide(old, live); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE keys SET state = 'archived', wrapped = ?, destroyed = NULL
			WHERE tenant = ? AND type = ? AND version = ? AND state = 'destroyed'`,
			k.Wrapped, req.Tenant, req.Type, int64(req.Version))
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
const destroyedCols = `tenant, type, version, state, source, derivation, release_id, NULL, NULL, created, destroyed`

// DestroyedSince implements store.DestroyWatcher.
func (s *Store) DestroyedSince(ctx context.Context, since time.Time) ([]store.Key, error) {
	if !since.IsZero() { // zero: year 1, before every destruction
		var err error
		if since, err = store.CheckTime("since", since); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+destroyedCols+` FROM keys WHERE state = 'destroyed' AND destroyed >= ?
		ORDER BY destroyed, tenant, type, version`, micros(since))
	if err != nil {
		return nil, dbErr("listing destroyed keys", err)
	}
	defer rows.Close()
	var ks []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, dbErr("listing destroyed keys", err)
		}
		ks = append(ks, k)
	}
	return ks, dbErr("listing destroyed keys", rows.Err())
}
