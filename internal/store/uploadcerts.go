package store

import (
	"bytes"
	"context"
	"database/sql"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// BYOK upload certificates. They are never deleted (a retired one's key
// pair leaves the HSM, its row stays).

const certCols = `id, tenant, key_label, state, csr, certificate, not_before, not_after, created, retired`

const (
	qCertInsert = `INSERT INTO upload_certs (` + certCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)`
	// qCert reads one certificate; with the dialect's ForUpdate, it locks
	// its row until the transaction ends.
	qCert        = `SELECT ` + certCols + ` FROM upload_certs WHERE tenant = $1 AND id = $2`
	qCerts       = `SELECT ` + certCols + ` FROM upload_certs WHERE tenant = $1 ORDER BY created DESC, id`
	qCertActive  = `UPDATE upload_certs SET state = 'active', certificate = $2, not_before = $3, not_after = $4 WHERE id = $1`
	qCertRetired = `UPDATE upload_certs SET state = 'retired', retired = $2 WHERE id = $1`
	// qCertsLive counts, under the tenant's lock, the certificates that
	// hold a key pair in the HSM.
	qCertsLive = `SELECT count(*) FROM upload_certs WHERE tenant = $1 AND state <> 'retired'`
)

func scanCert(sc scanner) (uploadcert.Cert, error) {
	var c uploadcert.Cert
	if err := sc.Scan(&c.ID, &c.Tenant, &c.KeyLabel, &c.State, &c.CSR, &c.Certificate,
		timeValue{&c.NotBefore}, timeValue{&c.NotAfter}, timeValue{&c.Created}, timeValue{&c.Retired}); err != nil {
		return uploadcert.Cert{}, err
	}
	c.CSR, c.Certificate = nilIfEmpty(c.CSR), nilIfEmpty(c.Certificate)
	return c, nil
}

// uploadCert reads a certificate; lock locks its row until the end of the
// transaction (PostgreSQL), so that of two changes at once the second sees
// the first's result.
func (s *Store) uploadCert(ctx context.Context, q queryer, tenantID, id string, lock bool) (uploadcert.Cert, error) {
	query := qCert
	if lock {
		query += s.d.ForUpdate
	}
	c, err := scanCert(q.QueryRowContext(ctx, query, tenantID, id))
	if noRows(err) {
		return uploadcert.Cert{}, Errorf(ErrNotFound, "tenant %s has no upload certificate %s", tenantID, id)
	}
	return c, s.dbErr("reading an upload certificate", err)
}

func validCertRef(tenantID, id string) error {
	if err := ValidID("tenant", tenantID); err != nil {
		return err
	}
	return ValidID("upload certificate", id)
}

// CreateUploadCert stores c (State pending or active; an empty ID is filled
// with tenant.NewID()) after validating it (checkCert), with rec, and
// returns it as stored. The tenant must exist (ErrNotFound); the same ID or
// KeyLabel (of any tenant: labels are unique in the HSM) → ErrExists.
//
// maxLive (at least 1) is the most pending or active certificates the
// tenant may hold, counting the new one: beyond it → ErrTooManyCerts. The
// count is taken under the tenant's row lock (PostgreSQL; SQLite's write
// lock), so that concurrent creations on any number of nodes never exceed
// it.
func (s *Store) CreateUploadCert(ctx context.Context, c uploadcert.Cert, maxLive int, rec audit.Entry) (uploadcert.Cert, error) {
	c, err := checkCert(c)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	if maxLive < 1 {
		return uploadcert.Cert{}, invalidf("the most live upload certificates per tenant must be at least 1, not %d", maxLive)
	}
	err = s.change(ctx, "creating an upload certificate", rec, func(tx *sql.Tx) error {
		if err := s.lockTenant(ctx, tx, c.Tenant); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, qCertsLive, c.Tenant).Scan(&live); err != nil {
			return err
		}
		if live >= maxLive {
			return Errorf(ErrTooManyCerts, "tenant %s holds %d pending or active upload certificates, the most allowed (%d): retire one first",
				c.Tenant, live, maxLive)
		}
		_, err := tx.ExecContext(ctx, qCertInsert, c.ID, c.Tenant, c.KeyLabel, string(c.State), nullBlob(c.CSR), nullBlob(c.Certificate),
			s.d.NullTime(c.NotBefore), s.d.NullTime(c.NotAfter), s.d.Time(c.Created))
		switch f := s.d.Classify(err); {
		case f.Kind == Unique && f.Constraint == uniqueCertKeyLabel:
			return Errorf(ErrExists, "an upload certificate with key label %q exists", c.KeyLabel)
		case f.Kind == Unique:
			return Errorf(ErrExists, "an upload certificate with ID %s exists", c.ID)
		case f.Kind == ForeignKey:
			return Errorf(ErrNotFound, "no tenant with ID %s", c.Tenant)
		}
		return err
	})
	if err != nil {
		return uploadcert.Cert{}, err
	}
	return c, nil
}

// UploadCert returns one of a tenant's certificates, or ErrNotFound (also
// when it belongs to another tenant).
func (s *Store) UploadCert(ctx context.Context, tenantID, id string) (uploadcert.Cert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return uploadcert.Cert{}, err
	}
	return s.uploadCert(ctx, s.db, tenantID, id, false)
}

// UploadCerts lists a tenant's certificates, newest first (then by ID). An
// unknown tenant → ErrNotFound.
func (s *Store) UploadCerts(ctx context.Context, tenantID string) ([]uploadcert.Cert, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return nil, err
	}
	var cs []uploadcert.Cert
	err := s.read(ctx, "listing upload certificates", func(tx *sql.Tx) error {
		if _, err := s.tenantByID(ctx, tx, tenantID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qCerts, tenantID)
		cs, err = collect(rows, err, scanCert)
		return err
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// ActivateUploadCert stores the CA-signed certificate of a pending
// certificate and its validity (checked by CheckCertificate), makes it
// active, with rec, and returns it as stored. A missing certificate →
// ErrNotFound; one that is not pending → ErrConflict.
func (s *Store) ActivateUploadCert(ctx context.Context, tenantID, id string, der []byte, notBefore, notAfter time.Time,
	rec audit.Entry) (uploadcert.Cert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return uploadcert.Cert{}, err
	}
	der, notBefore, notAfter, err := CheckCertificate(der, notBefore, notAfter)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	var c uploadcert.Cert
	err = s.change(ctx, "activating an upload certificate", rec, func(tx *sql.Tx) error {
		var err error
		if c, err = s.uploadCert(ctx, tx, tenantID, id, true); err != nil {
			return err
		}
		if c.State != uploadcert.StatePending {
			return Errorf(ErrConflict, "upload certificate %s is %s: only a pending certificate can be activated", id, c.State)
		}
		if _, err := tx.ExecContext(ctx, qCertActive, id, der, s.d.Time(notBefore), s.d.Time(notAfter)); err != nil {
			return err
		}
		c.State, c.Certificate, c.NotBefore, c.NotAfter = uploadcert.StateActive, der, notBefore, notAfter
		return nil
	})
	if err != nil {
		return uploadcert.Cert{}, err
	}
	return c, nil
}

// RetireUploadCert retires a pending or active certificate at now, with
// rec, and returns it as stored. A missing certificate → ErrNotFound; one
// retired already → ErrConflict.
func (s *Store) RetireUploadCert(ctx context.Context, tenantID, id string, now time.Time, rec audit.Entry) (uploadcert.Cert, error) {
	if err := validCertRef(tenantID, id); err != nil {
		return uploadcert.Cert{}, err
	}
	now, err := CheckTime("retirement", now)
	if err != nil {
		return uploadcert.Cert{}, err
	}
	var c uploadcert.Cert
	err = s.change(ctx, "retiring an upload certificate", rec, func(tx *sql.Tx) error {
		var err error
		if c, err = s.uploadCert(ctx, tx, tenantID, id, true); err != nil {
			return err
		}
		if c.State == uploadcert.StateRetired {
			return Errorf(ErrConflict, "upload certificate %s was retired at %s", id, c.Retired.Format(time.RFC3339Nano))
		}
		if _, err := tx.ExecContext(ctx, qCertRetired, id, s.d.Time(now)); err != nil {
			return err
		}
		c.State, c.Retired = uploadcert.StateRetired, now
		return nil
	})
	if err != nil {
		return uploadcert.Cert{}, err
	}
	return c, nil
}

// Limits on the stored values of bring-your-own-key.
const (
	MaxKeyLabel = 128      // bytes of an upload certificate's HSM key label
	MaxCertDER  = 16 << 10 // bytes of a DER certificate or certificate request
)

// ValidKeyLabel checks an HSM key label: 1 to MaxKeyLabel bytes of printable
// ASCII (space to tilde).
func ValidKeyLabel(label string) error {
	if len(label) == 0 || len(label) > MaxKeyLabel {
		return invalidf("invalid key label: use 1 to %d bytes of printable ASCII, not %d bytes", MaxKeyLabel, len(label))
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; c < 0x20 || c > 0x7e {
			return invalidf("invalid key label %q: use printable ASCII only", label)
		}
	}
	return nil
}

// checkDER checks the size of a DER blob that may be absent, and returns it
// copied, or nil if empty.
func checkDER(what string, der []byte) ([]byte, error) {
	if len(der) > MaxCertDER {
		return nil, invalidf("the %s must be at most %d bytes, not %d", what, MaxCertDER, len(der))
	}
	if len(der) == 0 {
		return nil, nil
	}
	return bytes.Clone(der), nil
}

// CheckCertificate checks a DER certificate and its validity as
// ActivateUploadCert takes them, and returns them as the store keeps them:
// the certificate copied (1 to MaxCertDER bytes), the times per Time,
// notAfter after notBefore. The store does not parse the certificate: the
// caller does, and passes its validity.
func CheckCertificate(der []byte, notBefore, notAfter time.Time) ([]byte, time.Time, time.Time, error) {
	if len(der) == 0 {
		return nil, time.Time{}, time.Time{}, invalidf("the certificate is empty")
	}
	der, err := checkDER("certificate", der)
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	if notBefore, err = CheckTime("certificate not-before", notBefore); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	if notAfter, err = CheckTime("certificate not-after", notAfter); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	if !notAfter.After(notBefore) {
		return nil, time.Time{}, time.Time{}, invalidf("the certificate's not-after %s is not after its not-before %s",
			notAfter.Format(time.RFC3339Nano), notBefore.Format(time.RFC3339Nano))
	}
	return der, notBefore, notAfter, nil
}

// checkCert validates c for CreateUploadCert and returns it as the store keeps
// it: ID filled with NewID() if empty, times per Time, CSR and Certificate
// copied (empty ones made nil). The rules:
//
//   - a pending certificate has a CSR (the CA-signed flow), no Certificate
//     and no validity;
//   - an active one has a Certificate and its validity (NotAfter after
//     NotBefore), and a CSR only if it came from the CA-signed flow;
//   - a new certificate is never retired (Retired zero): RetireUploadCert
//     retires it.
func checkCert(c uploadcert.Cert) (uploadcert.Cert, error) {
	if c.ID == "" {
		c.ID = tenant.NewID()
	}
	if err := ValidID("upload certificate", c.ID); err != nil {
		return uploadcert.Cert{}, err
	}
	if err := ValidID("tenant", c.Tenant); err != nil {
		return uploadcert.Cert{}, err
	}
	if err := ValidKeyLabel(c.KeyLabel); err != nil {
		return uploadcert.Cert{}, err
	}
	if !c.State.Valid() {
		return uploadcert.Cert{}, invalidf("invalid upload certificate state %q: use %q or %q", c.State, uploadcert.StatePending, uploadcert.StateActive)
	}
	if c.State == uploadcert.StateRetired || !c.Retired.IsZero() {
		return uploadcert.Cert{}, invalidf("a new upload certificate cannot be retired: create it %q or %q, then retire it", uploadcert.StatePending, uploadcert.StateActive)
	}
	var err error
	if c.CSR, err = checkDER("certificate request", c.CSR); err != nil {
		return uploadcert.Cert{}, err
	}
	switch c.State {
	case uploadcert.StatePending:
		switch {
		case c.CSR == nil:
			return uploadcert.Cert{}, invalidf("a pending upload certificate needs its certificate request")
		case len(c.Certificate) != 0:
			return uploadcert.Cert{}, invalidf("a pending upload certificate has no certificate yet: create it active, or activate it")
		case !c.NotBefore.IsZero() || !c.NotAfter.IsZero():
			return uploadcert.Cert{}, invalidf("a pending upload certificate has no validity yet")
		}
		c.Certificate = nil
	case uploadcert.StateActive:
		if c.Certificate, c.NotBefore, c.NotAfter, err = CheckCertificate(c.Certificate, c.NotBefore, c.NotAfter); err != nil {
			return uploadcert.Cert{}, err
		}
	}
	if c.Created, err = CheckTime("upload certificate creation", c.Created); err != nil {
		return uploadcert.Cert{}, err
	}
	return c, nil
}
