package store

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Restoring destroyed keys from backups.

const (
	qLiveKeys   = `SELECT count(*) FROM keys WHERE tenant = $1 AND type = $2 AND state <> 'destroyed'`
	qKeyRestore = `UPDATE keys SET state = 'archived', wrapped = $4, destroyed = NULL
		WHERE tenant = $1 AND type = $2 AND version = $3 AND state = 'destroyed'`
)

// RestoreRequest brings a destroyed key version back, archived, from a
// backup.
type RestoreRequest struct {
	Tenant  string
	Type    string
	Version uint32
	// Release and Wrapped are the key's wrapped material; Release must be
	// the key's recorded release.
	Release string
	Wrapped []byte
	// Fingerprint must equal the stored fingerprint when the key has one
	// (nil or empty: none). The stored fingerprint is kept as it is.
	Fingerprint []byte
	// MaxKeys is the most active+archived keys of this tenant and type,
	// counting the restored one (≥ 1): ErrTooManyKeys beyond it.
	MaxKeys int
	// Now is the time of the request. It is checked but not stored: the
	// restored key keeps its Created, and the audit log records the
	// restoration.
	Now time.Time
}

// RestoreKey makes a destroyed key version archived again with req.Wrapped,
// with rec, serialised with Rotate and DestroyKey (the same series lock),
// after validating req (RestoreRequest.Check). A missing key → ErrNotFound;
// then RestoreRequest.Decide's checks, in order: a key that is not
// destroyed → ErrConflict; another release or fingerprint than the key's →
// ErrConflict; MaxKeys → ErrTooManyKeys. The returned key has State
// archived, req.Wrapped and a zero Destroyed; a restored key is never made
// active (Rotate makes a new one).
func (s *Store) RestoreKey(ctx context.Context, req RestoreRequest, rec audit.Entry) (tenant.Key, error) {
	req, err := req.Check()
	if err != nil {
		return tenant.Key{}, err
	}
	ref := tenant.KeyRef{Tenant: req.Tenant, Type: req.Type, Version: req.Version}
	var k tenant.Key
	err = s.change(ctx, "restoring a key", rec, func(tx *sql.Tx) error {
		if ok, err := s.lockSeries(ctx, tx, req.Tenant, req.Type, false); err != nil {
			return err
		} else if !ok {
			return Errorf(ErrNotFound, "tenant %s has no %s key version %d", req.Tenant, req.Type, req.Version)
		}
		// Under the lock: these reads see every change committed before.
		old, err := s.key(ctx, tx, ref)
		if err != nil {
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, qLiveKeys, req.Tenant, req.Type).Scan(&live); err != nil {
			return err
		}
		if k, err = req.Decide(old, live); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, qKeyRestore, req.Tenant, req.Type, int64(req.Version), k.Wrapped); err != nil {
			return err
		}
		return s.announce(ctx, tx, seriesChanged(req.Tenant, req.Type))
	})
	if err != nil {
		return tenant.Key{}, err
	}
	s.committed(ctx, seriesChanged(req.Tenant, req.Type))
	return k, nil
}

// Check validates req and returns it as the store uses it: Now per Time,
// Wrapped copied, an empty Fingerprint made nil.
func (req RestoreRequest) Check() (RestoreRequest, error) {
	if err := ValidKeyRef(tenant.KeyRef{Tenant: req.Tenant, Type: req.Type, Version: req.Version}); err != nil {
		return RestoreRequest{}, err
	}
	if err := ValidReleaseID(req.Release); err != nil {
		return RestoreRequest{}, err
	}
	switch {
	case len(req.Wrapped) == 0 || len(req.Wrapped) > MaxWrapped:
		return RestoreRequest{}, invalidf("the restored key's wrapped material must be 1 to %d bytes, not %d", MaxWrapped, len(req.Wrapped))
	case len(req.Fingerprint) > MaxFingerprint:
		return RestoreRequest{}, invalidf("the restored key's fingerprint must be at most %d bytes, not %d", MaxFingerprint, len(req.Fingerprint))
	case req.MaxKeys < 1:
		return RestoreRequest{}, invalidf("maximum key count %d: it must be at least 1", req.MaxKeys)
	}
	var err error
	if req.Now, err = CheckTime("restoration", req.Now); err != nil {
		return RestoreRequest{}, err
	}
	req.Wrapped = bytes.Clone(req.Wrapped)
	if len(req.Fingerprint) == 0 {
		req.Fingerprint = nil
	} else {
		req.Fingerprint = bytes.Clone(req.Fingerprint)
	}
	return req, nil
}

// Decide applies the restore rules to a checked request (Check), the key as
// stored and the count of active and archived keys of its series (Live),
// both read under the rotation lock, in this order:
//
//  1. the key is not destroyed: ErrConflict;
//  2. req.Release is not the key's release: ErrConflict;
//  3. the key has a fingerprint and req.Fingerprint is nil or differs
//     (compared in constant time): ErrConflict; a key without a fingerprint
//     accepts any (and keeps none);
//  4. Live ≥ MaxKeys: ErrTooManyKeys;
//
// and otherwise returns the key to write: archived, with req.Wrapped and no
// destruction time; everything else as stored.
func (req RestoreRequest) Decide(k tenant.Key, live int) (tenant.Key, error) {
	ref := func() string { return fmt.Sprintf("tenant %s's %s key version %d", req.Tenant, req.Type, req.Version) }
	if k.State != tenant.StateDestroyed {
		return tenant.Key{}, Errorf(ErrConflict, "%s is %s, not destroyed: a backup can be imported only after the original was destroyed", ref(), k.State)
	}
	if req.Release != k.Release {
		return tenant.Key{}, Errorf(ErrConflict, "%s is wrapped under release %s, but the backup is under release %s: it is not this key's backup",
			ref(), k.Release, req.Release)
	}
	if k.Fingerprint != nil {
		if req.Fingerprint == nil {
			return tenant.Key{}, Errorf(ErrConflict, "%s has a fingerprint, but the backup has none", ref())
		}
		if subtle.ConstantTimeCompare(k.Fingerprint, req.Fingerprint) != 1 {
			return tenant.Key{}, Errorf(ErrConflict, "the backup's fingerprint differs from %s's: it is the backup of another secret", ref())
		}
	}
	if live >= req.MaxKeys {
		return tenant.Key{}, Errorf(ErrTooManyKeys, "tenant %s has %d active and archived %s keys, the most allowed is %d: destroy one before restoring another",
			req.Tenant, live, req.Type, req.MaxKeys)
	}
	k.State, k.Wrapped, k.Destroyed = tenant.StateArchived, bytes.Clone(req.Wrapped), time.Time{}
	return k, nil
}
