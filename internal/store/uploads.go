package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The failed-upload limit of BYOK: each upload that is about to cost the
// regional HSM a private-key operation is recorded first, and forgotten
// once it installed a key. What is left are the failures, which a limit
// counts per tenant and window, across every node sharing the database.

const (
	qUploadAttemptsPrune = `DELETE FROM upload_attempts WHERE tenant = $1 AND started <= $2`
	qUploadAttempts      = `SELECT count(*), min(started) FROM upload_attempts WHERE tenant = $1`
	qUploadAttemptInsert = `INSERT INTO upload_attempts (id, tenant, started) VALUES ($1, $2, $3)`
	qUploadAttemptForget = `DELETE FROM upload_attempts WHERE tenant = $1 AND id = $2`
)

// UploadLimit bounds a tenant's failed uploads: at most Max (at least 1) in
// any Window (positive).
type UploadLimit struct {
	Max    int
	Window time.Duration
}

// BeginUpload records an upload of the tenant started at now, which will
// cost the HSM a private-key operation, and returns its ID for
// UploadAccepted. Until then, or for lim.Window if it never comes, it
// counts as a failed upload. If the tenant has lim.Max of those started
// within lim.Window before now, nothing is recorded and the error is a
// *UploadLimitedError (wrapping ErrTooManyFailures) saying when the oldest
// leaves the window. The count is taken under the tenant's row lock, so the
// limit holds across every node. An unknown tenant → ErrNotFound.
func (s *Store) BeginUpload(ctx context.Context, tenantID string, now time.Time, lim UploadLimit) (string, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return "", err
	}
	now, err := CheckTime("upload", now)
	if err != nil {
		return "", err
	}
	if lim.Max < 1 || lim.Window <= 0 {
		return "", invalidf("a failed-upload limit needs a positive count and window, not %d per %v", lim.Max, lim.Window)
	}
	id := tenant.NewID()
	err = s.write(ctx, "starting an upload", func(tx *sql.Tx) error {
		if err := s.lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		// Under the lock: what is left after the prune is the window.
		if _, err := tx.ExecContext(ctx, qUploadAttemptsPrune, tenantID, s.d.Time(now.Add(-lim.Window))); err != nil {
			return err
		}
		var n int
		var oldest time.Time
		if err := tx.QueryRowContext(ctx, qUploadAttempts, tenantID).Scan(&n, timeValue{&oldest}); err != nil {
			return err
		}
		if n >= lim.Max {
			return &UploadLimitedError{Failures: n, Next: oldest.Add(lim.Window)}
		}
		_, err := tx.ExecContext(ctx, qUploadAttemptInsert, id, tenantID, s.d.Time(now))
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// UploadAccepted forgets the upload that BeginUpload recorded as id: it
// installed a key, so it is not a failure. Forgetting one that is gone
// (pruned, or forgotten already) does nothing.
func (s *Store) UploadAccepted(ctx context.Context, tenantID, id string) error {
	if err := ValidID("tenant", tenantID); err != nil {
		return err
	}
	if err := ValidID("upload", id); err != nil {
		return err
	}
	return s.write(ctx, "forgetting an accepted upload", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, qUploadAttemptForget, tenantID, id)
		return err
	})
}
