package store

import (
	"bytes"
	"context"
	"database/sql"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Cache-only keys: the registrations of tenants' key services, one per key
// version of source cache-only, their revocations, and each tenant's
// key-service credentials (docs/cache-only.md).

const keyServiceCols = `id, tenant, type, version, url, kid, ca, auth, oaep, release_id, bearer, created, revoked`

const (
	qKeyServiceInsert = `INSERT INTO key_services (` + keyServiceCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)`
	qKeyService  = `SELECT ` + keyServiceCols + ` FROM key_services WHERE tenant = $1 AND type = $2 AND version = $3`
	qKeyServices = `SELECT ` + keyServiceCols + ` FROM key_services WHERE tenant = $1 ORDER BY type, version`
	// qKeyServiceForget runs in DestroyKey's transaction.
	qKeyServiceForget  = `DELETE FROM key_services WHERE tenant = $1 AND type = $2 AND version = $3`
	qKeyServiceRevoke  = `UPDATE key_services SET revoked = $4 WHERE tenant = $1 AND type = $2 AND version = $3 AND revoked IS NULL`
	qKeyServiceLift    = `UPDATE key_services SET revoked = NULL WHERE tenant = $1 AND type = $2 AND version = $3 AND revoked IS NOT NULL`
	qKeyServiceRevoked = `SELECT tenant, type, version FROM key_services WHERE revoked IS NOT NULL AND revoked >= $1
		ORDER BY revoked, tenant, type, version`

	qCredentialsInsert = `INSERT INTO key_service_credentials (tenant, recipient_label, client_label, client_cert, created)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant) DO NOTHING`
	qCredentials = `SELECT tenant, recipient_label, client_label, client_cert, created FROM key_service_credentials WHERE tenant = $1`
)

func scanKeyService(sc scanner) (tenant.KeyService, error) {
	var ks tenant.KeyService
	var version int64
	var rel sql.NullString
	if err := sc.Scan(&ks.ID, &ks.Tenant, &ks.Type, &version, &ks.URL, &ks.KID, &ks.CA, &ks.Auth, &ks.OAEP, &rel,
		&ks.Bearer, timeValue{&ks.Created}, timeValue{&ks.Revoked}); err != nil {
		return tenant.KeyService{}, err
	}
	ks.Version, ks.Release = uint32(version), rel.String
	ks.Bearer = nilIfEmpty(ks.Bearer)
	return ks, nil
}

// RegisterKeyService makes a new cache-only key the active key of
// (req.Tenant, req.Type), as Rotate does (the same rules and errors; New's
// Source must be cache-only, without wrapped material), and stores ks as
// its registration, with rec, in one transaction. ks names the version
// the caller bound into its wrapped bearer secret (ks.Version, also
// req.New.Version): if a concurrent rotation took it, ErrConflict. It
// returns the key and the registration as stored.
func (s *Store) RegisterKeyService(ctx context.Context, req RotateRequest, ks tenant.KeyService, rec audit.Entry) (tenant.Key, tenant.KeyService, error) {
	if req.New.Source != tenant.SourceCacheOnly {
		return tenant.Key{}, tenant.KeyService{}, invalidf("a key-service registration makes a key of source %q, not %q", tenant.SourceCacheOnly, req.New.Source)
	}
	req, err := req.Check()
	if err != nil {
		return tenant.Key{}, tenant.KeyService{}, err
	}
	ks.Tenant, ks.Type, ks.Created, ks.Revoked = req.Tenant, req.Type, req.Now, time.Time{}
	if ks.Version == 0 || req.New.Version != ks.Version {
		return tenant.Key{}, tenant.KeyService{}, invalidf("the registration's version %d is not the new key's %d", ks.Version, req.New.Version)
	}
	if err := ks.Check(); err != nil {
		return tenant.Key{}, tenant.KeyService{}, invalidf("%v", err)
	}
	ks.CA, ks.Bearer = bytes.Clone(ks.CA), bytes.Clone(ks.Bearer)
	var k tenant.Key
	err = s.change(ctx, "registering a key service", rec, func(tx *sql.Tx) error {
		var err error
		if k, err = s.rotate(ctx, tx, req); err != nil {
			return err
		}
		var rel any
		if ks.Release != "" {
			if err := s.releaseInstalled(ctx, tx, ks.Release); err != nil {
				return err
			}
			rel = ks.Release
		}
		_, err = tx.ExecContext(ctx, qKeyServiceInsert, ks.ID, ks.Tenant, ks.Type, int64(ks.Version), ks.URL, ks.KID, ks.CA,
			ks.Auth, ks.OAEP, rel, nullBlob(ks.Bearer), s.d.Time(ks.Created))
		return err
	})
	if err != nil {
		return tenant.Key{}, tenant.KeyService{}, err
	}
	s.committed(ctx, seriesChanged(req.Tenant, req.Type))
	return k, ks, nil
}

// KeyService returns the registration of a cache-only key version, or
// ErrNotFound (no such key, not cache-only, or destroyed).
func (s *Store) KeyService(ctx context.Context, ref tenant.KeyRef) (tenant.KeyService, error) {
	if err := ValidKeyRef(ref); err != nil {
		return tenant.KeyService{}, err
	}
	ks, err := scanKeyService(s.db.QueryRowContext(ctx, qKeyService, ref.Tenant, ref.Type, int64(ref.Version)))
	if noRows(err) {
		return tenant.KeyService{}, Errorf(ErrNotFound, "tenant %s has no key service for %s key version %d", ref.Tenant, ref.Type, ref.Version)
	}
	return ks, s.dbErr("reading a key-service registration", err)
}

// KeyServices lists a tenant's registrations, by type and version, without
// their wrapped bearer secrets. An unknown tenant → ErrNotFound.
func (s *Store) KeyServices(ctx context.Context, tenantID string) ([]tenant.KeyService, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return nil, err
	}
	var out []tenant.KeyService
	err := s.read(ctx, "listing key-service registrations", func(tx *sql.Tx) error {
		if _, err := s.tenantByID(ctx, tx, tenantID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qKeyServices, tenantID)
		out, err = collect(rows, err, scanKeyService)
		return err
	})
	for i := range out {
		out[i] = out[i].Meta()
	}
	return out, err
}

// RevokeKeyService records that the key service of a cache-only key
// version revoked it, at now, with rec, and tells every node as a
// destruction is told (WatchDestroyed: each evicts the key's DEK). It
// reports whether it changed anything: a key revoked already is left as it
// is (no entry is appended). A key without a registration → ErrNotFound.
func (s *Store) RevokeKeyService(ctx context.Context, ref tenant.KeyRef, now time.Time, rec audit.Entry) (bool, error) {
	if err := ValidKeyRef(ref); err != nil {
		return false, err
	}
	now, err := CheckTime("revocation", now)
	if err != nil {
		return false, err
	}
	changed := false
	err = s.changeLogged(ctx, "recording a revocation", rec, func(tx *sql.Tx, rec audit.Entry) ([]audit.Entry, error) {
		if _, err := scanKeyService(tx.QueryRowContext(ctx, qKeyService, ref.Tenant, ref.Type, int64(ref.Version))); noRows(err) {
			return nil, Errorf(ErrNotFound, "tenant %s has no key service for %s key version %d", ref.Tenant, ref.Type, ref.Version)
		} else if err != nil {
			return nil, err
		}
		res, err := tx.ExecContext(ctx, qKeyServiceRevoke, ref.Tenant, ref.Type, int64(ref.Version), s.d.Time(now))
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			changed = false
			return nil, err
		}
		changed = true
		return []audit.Entry{rec}, s.announce(ctx, tx, Change{Kind: KeyDestroyed, Key: ref})
	})
	if err != nil {
		return false, err
	}
	if changed {
		s.committed(ctx, Change{Kind: KeyDestroyed, Key: ref})
	}
	return changed, nil
}

// LiftKeyServiceRevocation records that the key service of a revoked
// cache-only key version gave the key again, with rec. It reports whether
// it changed anything (a key not revoked is left as it is, without an
// entry).
func (s *Store) LiftKeyServiceRevocation(ctx context.Context, ref tenant.KeyRef, rec audit.Entry) (bool, error) {
	if err := ValidKeyRef(ref); err != nil {
		return false, err
	}
	changed := false
	err := s.changeLogged(ctx, "lifting a revocation", rec, func(tx *sql.Tx, rec audit.Entry) ([]audit.Entry, error) {
		res, err := tx.ExecContext(ctx, qKeyServiceLift, ref.Tenant, ref.Type, int64(ref.Version))
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return nil, err
		}
		changed = true
		return []audit.Entry{rec}, nil
	})
	return changed, err
}

// RevokedSince lists the cache-only key versions revoked at or after since
// (and not lifted since), across all tenants: the periodic re-check behind
// the revocations' notifications, as DestroyedSince is for destructions.
func (s *Store) RevokedSince(ctx context.Context, since time.Time) ([]tenant.KeyRef, error) {
	if !since.IsZero() {
		var err error
		if since, err = CheckTime("since", since); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, qKeyServiceRevoked, s.d.Time(since))
	refs, err := collect(rows, err, func(sc scanner) (tenant.KeyRef, error) {
		var r tenant.KeyRef
		var v int64
		err := sc.Scan(&r.Tenant, &r.Type, &v)
		r.Version = uint32(v)
		return r, err
	})
	return refs, s.dbErr("listing revoked keys", err)
}

// SetKeyServiceCredentials stores a tenant's key-service credentials
// unless it has some (the first writer wins, across nodes), and returns
// those stored. The tenant must exist (ErrNotFound).
func (s *Store) SetKeyServiceCredentials(ctx context.Context, c tenant.KeyServiceCredentials) (tenant.KeyServiceCredentials, error) {
	if err := ValidID("tenant", c.Tenant); err != nil {
		return tenant.KeyServiceCredentials{}, err
	}
	switch {
	case c.Recipient == "" || len(c.Recipient) > 128 || c.ClientKey == "" || len(c.ClientKey) > 128:
		return tenant.KeyServiceCredentials{}, invalidf("key-service credentials need HSM labels of 1 to 128 bytes")
	case len(c.ClientCert) == 0 || len(c.ClientCert) > 16384:
		return tenant.KeyServiceCredentials{}, invalidf("a client certificate is 1 to 16384 bytes")
	}
	created, err := CheckTime("creation", c.Created)
	if err != nil {
		return tenant.KeyServiceCredentials{}, err
	}
	var out tenant.KeyServiceCredentials
	err = s.write(ctx, "storing key-service credentials", func(tx *sql.Tx) error {
		if _, err := s.tenantByID(ctx, tx, c.Tenant); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qCredentialsInsert, c.Tenant, c.Recipient, c.ClientKey, c.ClientCert, s.d.Time(created)); err != nil {
			return err
		}
		var err error
		out, err = scanCredentials(tx.QueryRowContext(ctx, qCredentials, c.Tenant))
		return err
	})
	return out, err
}

// KeyServiceCredentials returns a tenant's key-service credentials, or
// ErrNotFound if it has none yet.
func (s *Store) KeyServiceCredentials(ctx context.Context, tenantID string) (tenant.KeyServiceCredentials, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return tenant.KeyServiceCredentials{}, err
	}
	c, err := scanCredentials(s.db.QueryRowContext(ctx, qCredentials, tenantID))
	if noRows(err) {
		return tenant.KeyServiceCredentials{}, Errorf(ErrNotFound, "tenant %s has no key-service credentials yet", tenantID)
	}
	return c, s.dbErr("reading key-service credentials", err)
}

func scanCredentials(sc scanner) (tenant.KeyServiceCredentials, error) {
	var c tenant.KeyServiceCredentials
	err := sc.Scan(&c.Tenant, &c.Recipient, &c.ClientKey, &c.ClientCert, timeValue{&c.Created})
	return c, err
}
