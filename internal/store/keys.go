package store

import (
	"bytes"
	"context"
	"database/sql"
	"math"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Tenant keys and their lifecycle: rotation, lookups, destruction.

const keyCols = `tenant, type, version, state, source, derivation, release_id, wrapped, fingerprint, created, destroyed`

// destroyedCols is keyCols without the wrapped key (NULL anyway) and the
// fingerprint.
const destroyedCols = `tenant, type, version, state, source, derivation, release_id, created, destroyed`

const (
	qSeriesCreate = `INSERT INTO key_series (tenant, type) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	// qSeriesLock is the row lock that serialises Rotate, DestroyKey and
	// RestoreKey of one (tenant, type), with the dialect's ForUpdate.
	qSeriesLock = `SELECT 1 FROM key_series WHERE tenant = $1 AND type = $2`
	// qSeries reads, under the series lock, what RotateRequest.Decide
	// needs.
	qSeries = `SELECT coalesce(max(version), 0), max(created), count(CASE WHEN state <> 'destroyed' THEN 1 END)
		FROM keys WHERE tenant = $1 AND type = $2`
	qFingerprintUsed = `SELECT EXISTS (SELECT 1 FROM keys WHERE tenant = $1 AND fingerprint = $2)`
	qKeyArchive      = `UPDATE keys SET state = 'archived' WHERE tenant = $1 AND type = $2 AND state = 'active'`
	qKeyInsert       = `INSERT INTO keys (` + keyCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)`
	qKeys            = `SELECT ` + keyCols + ` FROM keys WHERE tenant = $1 AND ($2 = '' OR type = $2) ORDER BY type, version`
	qKey             = `SELECT ` + keyCols + ` FROM keys WHERE tenant = $1 AND type = $2 AND version = $3`
	qActiveKey       = `SELECT ` + keyCols + ` FROM keys WHERE tenant = $1 AND type = $2 AND state = 'active'`
	qKeyDestroy      = `UPDATE keys SET state = 'destroyed', wrapped = NULL, destroyed = $4
		WHERE tenant = $1 AND type = $2 AND version = $3`
	qDestroyedSince = `SELECT ` + destroyedCols + ` FROM keys WHERE state = 'destroyed' AND destroyed >= $1
		ORDER BY destroyed, tenant, type, version`
)

func scanKey(sc scanner) (tenant.Key, error) {
	var k tenant.Key
	var version int64
	if err := sc.Scan(&k.Tenant, &k.Type, &version, &k.State, &k.Source, &k.Derivation, &k.Release,
		&k.Wrapped, &k.Fingerprint, timeValue{&k.Created}, timeValue{&k.Destroyed}); err != nil {
		return tenant.Key{}, err
	}
	k.Version = uint32(version)
	k.Wrapped, k.Fingerprint = nilIfEmpty(k.Wrapped), nilIfEmpty(k.Fingerprint)
	return k, nil
}

func scanDestroyed(sc scanner) (tenant.Key, error) {
	var k tenant.Key
	var version int64
	err := sc.Scan(&k.Tenant, &k.Type, &version, &k.State, &k.Source, &k.Derivation, &k.Release,
		timeValue{&k.Created}, timeValue{&k.Destroyed})
	k.Version = uint32(version)
	return k, err
}

// RotateRequest asks for a new active key.
type RotateRequest struct {
	Tenant string // tenant ID
	Type   string
	// New is the new key: Source, Derivation, Release, Wrapped and
	// Fingerprint, and Version if the caller bound it into the wrapping
	// (see Decide). The store sets Tenant, Type, Version, State (active)
	// and Created (Now); in New they must be zero or agree.
	New tenant.Key
	// MinInterval is the least time between two keys of this tenant and
	// type (0 = no limit).
	MinInterval time.Duration
	// MaxKeys is the most active+archived keys of this tenant and type,
	// counting the new one (≥ 1).
	MaxKeys int
	// Now is the time of the request; the new key's Created.
	Now time.Time
}

// lockSeries takes the row lock of (tenant, type) that serialises Rotate,
// DestroyKey and RestoreKey, creating the row if create is set. It reports
// whether the row exists. Each later statement of the transaction sees
// every change committed by the lock's previous holder.
func (s *Store) lockSeries(ctx context.Context, tx *sql.Tx, tenantID, typ string, create bool) (bool, error) {
	if create {
		if _, err := tx.ExecContext(ctx, qSeriesCreate, tenantID, typ); err != nil {
			return false, err
		}
	}
	var one int
	err := tx.QueryRowContext(ctx, qSeriesLock+s.d.ForUpdate, tenantID, typ).Scan(&one)
	if noRows(err) {
		return false, nil
	}
	return err == nil, err
}

// Rotate makes req.New the active key of (req.Tenant, req.Type) and archives
// the previous active key, with rec, in one transaction serialised per
// (tenant, type) across every process sharing the database. See
// RotateRequest.Decide for the checks, in order: rate limit
// (*RateLimitedError, wrapping ErrRateLimited), key count (ErrTooManyKeys)
// and fingerprint (ErrDuplicate). The tenant and the release must exist
// (ErrNotFound). It returns the key as stored.
func (s *Store) Rotate(ctx context.Context, req RotateRequest, rec audit.Entry) (tenant.Key, error) {
	req, err := req.Check()
	if err != nil {
		return tenant.Key{}, err
	}
	var k tenant.Key
	err = s.change(ctx, "rotating a key", rec, func(tx *sql.Tx) error {
		var err error
		k, err = s.rotate(ctx, tx, req)
		return err
	})
	if err != nil {
		return tenant.Key{}, err
	}
	s.committed(ctx, seriesChanged(req.Tenant, req.Type))
	return k, nil
}

// seriesChanged is the Change of a rotation or restore in a key series.
func seriesChanged(tenantID, typ string) Change {
	return Change{Kind: KeysChanged, Key: tenant.KeyRef{Tenant: tenantID, Type: typ}}
}

// rotate is Rotate's change, in tx, of a checked request.
func (s *Store) rotate(ctx context.Context, tx *sql.Tx, req RotateRequest) (tenant.Key, error) {
	if _, err := s.tenantByID(ctx, tx, req.Tenant); err != nil {
		return tenant.Key{}, err
	}
	if err := s.releaseInstalled(ctx, tx, req.New.Release); err != nil {
		return tenant.Key{}, err
	}
	if _, err := s.lockSeries(ctx, tx, req.Tenant, req.Type, true); err != nil {
		return tenant.Key{}, err
	}
	// Under the lock: these reads see every rotation committed before.
	var series Series
	var maxVersion int64
	if err := tx.QueryRowContext(ctx, qSeries, req.Tenant, req.Type).
		Scan(&maxVersion, timeValue{&series.Newest}, &series.Live); err != nil {
		return tenant.Key{}, err
	}
	series.MaxVersion = uint32(maxVersion)
	if req.New.Fingerprint != nil {
		if err := tx.QueryRowContext(ctx, qFingerprintUsed, req.Tenant, req.New.Fingerprint).Scan(&series.Duplicate); err != nil {
			return tenant.Key{}, err
		}
	}
	k, err := req.Decide(series)
	if err != nil {
		return tenant.Key{}, err
	}
	if _, err := tx.ExecContext(ctx, qKeyArchive, req.Tenant, req.Type); err != nil {
		return tenant.Key{}, err
	}
	_, err = tx.ExecContext(ctx, qKeyInsert, k.Tenant, k.Type, int64(k.Version), string(k.State), string(k.Source),
		string(k.Derivation), k.Release, nullBlob(k.Wrapped), nullBlob(k.Fingerprint), s.d.Time(k.Created))
	if f := s.d.Classify(err); f.Kind == Unique && f.Constraint == uniqueFingerprint {
		// A rotation of another type of this tenant, with the same
		// fingerprint, committed first (the series lock is per type).
		return tenant.Key{}, Errorf(ErrDuplicate, "tenant %s already has a key with the same fingerprint", req.Tenant)
	}
	if err != nil {
		return tenant.Key{}, err
	}
	return k, s.announce(ctx, tx, seriesChanged(req.Tenant, req.Type))
}

// Keys lists a tenant's keys of type typ ("" = every type), ordered by type
// then version. An unknown tenant → ErrNotFound.
func (s *Store) Keys(ctx context.Context, tenantID, typ string) ([]tenant.Key, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return nil, err
	}
	if typ != "" {
		if err := ValidType(typ); err != nil {
			return nil, err
		}
	}
	var ks []tenant.Key
	err := s.read(ctx, "listing keys", func(tx *sql.Tx) error {
		if _, err := s.tenantByID(ctx, tx, tenantID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, qKeys, tenantID, typ)
		ks, err = collect(rows, err, scanKey)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ks, nil
}

// Key returns one key version (destroyed ones too, without Wrapped), or
// ErrNotFound.
func (s *Store) Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error) {
	if err := ValidKeyRef(ref); err != nil {
		return tenant.Key{}, err
	}
	return s.key(ctx, s.db, ref)
}

func (s *Store) key(ctx context.Context, q queryer, ref tenant.KeyRef) (tenant.Key, error) {
	k, err := scanKey(q.QueryRowContext(ctx, qKey, ref.Tenant, ref.Type, int64(ref.Version)))
	if noRows(err) {
		return tenant.Key{}, Errorf(ErrNotFound, "tenant %s has no %s key version %d", ref.Tenant, ref.Type, ref.Version)
	}
	return k, s.dbErr("reading a key", err)
}

// ActiveKey returns the active key of (tenant, typ), or ErrNotFound if
// there is none (never rotated, or the active key was destroyed).
func (s *Store) ActiveKey(ctx context.Context, tenantID, typ string) (tenant.Key, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return tenant.Key{}, err
	}
	if err := ValidType(typ); err != nil {
		return tenant.Key{}, err
	}
	k, err := scanKey(s.db.QueryRowContext(ctx, qActiveKey, tenantID, typ))
	if noRows(err) {
		return tenant.Key{}, Errorf(ErrNotFound, "tenant %s has no active %s key", tenantID, typ)
	}
	return k, s.dbErr("reading a key", err)
}

// DestroyKey erases a key's wrapped material and marks it destroyed at now,
// with rec, and returns it. Destroying the active key leaves the tenant
// without an active key of that type. A missing key → ErrNotFound; one
// destroyed already → ErrDestroyed. It is serialised with Rotate. The
// fingerprint is kept. Every watcher (WatchDestroyed) is told once it
// committed.
//
// The old row version keeps the wrapped bytes until the engine reclaims the
// space: SQLite overwrites freed pages (secure_delete) and the WAL is
// checkpointed and truncated afterwards, best effort; PostgreSQL keeps them
// until VACUUM (and in the WAL and backups until they are recycled). See
// docs/storage.md.
func (s *Store) DestroyKey(ctx context.Context, ref tenant.KeyRef, now time.Time, rec audit.Entry) (tenant.Key, error) {
	if err := ValidKeyRef(ref); err != nil {
		return tenant.Key{}, err
	}
	now, err := CheckTime("destruction", now)
	if err != nil {
		return tenant.Key{}, err
	}
	var k tenant.Key
	err = s.change(ctx, "destroying a key", rec, func(tx *sql.Tx) error {
		if ok, err := s.lockSeries(ctx, tx, ref.Tenant, ref.Type, false); err != nil {
			return err
		} else if !ok {
			return Errorf(ErrNotFound, "tenant %s has no %s key version %d", ref.Tenant, ref.Type, ref.Version)
		}
		var err error
		if k, err = s.key(ctx, tx, ref); err != nil {
			return err
		}
		if k.State == tenant.StateDestroyed {
			return Errorf(ErrDestroyed, "tenant %s's %s key version %d was destroyed at %s",
				ref.Tenant, ref.Type, ref.Version, k.Destroyed.Format(time.RFC3339Nano))
		}
		if _, err := tx.ExecContext(ctx, qKeyDestroy, ref.Tenant, ref.Type, int64(ref.Version), s.d.Time(now)); err != nil {
			return err
		}
		// A cache-only key's registration is forgotten with it.
		if _, err := tx.ExecContext(ctx, qKeyServiceForget, ref.Tenant, ref.Type, int64(ref.Version)); err != nil {
			return err
		}
		k.State, k.Wrapped, k.Destroyed = tenant.StateDestroyed, nil, now
		return s.announce(ctx, tx, Change{Kind: KeyDestroyed, Key: ref})
	})
	if err != nil {
		return tenant.Key{}, err
	}
	s.committed(ctx, Change{Kind: KeyDestroyed, Key: ref})
	return k, nil
}

// DestroyedSince lists the keys destroyed at or after since (a zero since:
// every destroyed key), across all tenants, ordered by Destroyed then
// tenant, type and version, without Wrapped or Fingerprint: the periodic
// re-check behind WatchDestroyed. A key restored since is not listed (it is
// no longer destroyed).
//
// Destroyed is the time DestroyKey was given, not the commit time: a
// destruction can commit after a re-check that asked for times after its
// own. Callers overlap their windows (since = the previous check's start
// minus a margin for clock skew and transaction length).
func (s *Store) DestroyedSince(ctx context.Context, since time.Time) ([]tenant.Key, error) {
	if !since.IsZero() { // zero: year 1, before every destruction
		var err error
		if since, err = CheckTime("since", since); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, qDestroyedSince, s.d.Time(since))
	ks, err := collect(rows, err, scanDestroyed)
	return ks, s.dbErr("listing destroyed keys", err)
}

// Check validates req and returns it as the store uses it: Now per Time, and
// New with Tenant, Type, State (active) and Created (Now) set and an empty
// Fingerprint made nil.
func (req RotateRequest) Check() (RotateRequest, error) {
	if err := ValidID("tenant", req.Tenant); err != nil {
		return RotateRequest{}, err
	}
	if err := ValidType(req.Type); err != nil {
		return RotateRequest{}, err
	}
	if req.MinInterval < 0 {
		return RotateRequest{}, invalidf("negative minimum rotation interval %v", req.MinInterval)
	}
	if req.MaxKeys < 1 {
		return RotateRequest{}, invalidf("maximum key count %d: it must be at least 1", req.MaxKeys)
	}
	var err error
	if req.Now, err = CheckTime("rotation", req.Now); err != nil {
		return RotateRequest{}, err
	}
	k := req.New
	switch {
	case k.Tenant != "" && k.Tenant != req.Tenant:
		return RotateRequest{}, invalidf("the new key's tenant %q differs from the request's %q", k.Tenant, req.Tenant)
	case k.Type != "" && k.Type != req.Type:
		return RotateRequest{}, invalidf("the new key's type %q differs from the request's %q", k.Type, req.Type)
	case k.State != "" && k.State != tenant.StateActive:
		return RotateRequest{}, invalidf("the new key has state %q: it becomes active", k.State)
	case !k.Created.IsZero() && !Time(k.Created).Equal(req.Now):
		return RotateRequest{}, invalidf("the new key's creation time differs from the request's Now")
	case !k.Destroyed.IsZero():
		return RotateRequest{}, invalidf("the new key has a destruction time")
	case !k.Source.Valid():
		return RotateRequest{}, invalidf("invalid key source %q: use %q, %q or %q", k.Source, tenant.SourceHSM, tenant.SourceUploaded, tenant.SourceCacheOnly)
	case !k.Derivation.Valid():
		return RotateRequest{}, invalidf("invalid derivation %q: use %q or %q", k.Derivation, tenant.DerivationPBKDF2, tenant.DerivationNone)
	case k.Source == tenant.SourceCacheOnly && len(k.Wrapped) != 0:
		return RotateRequest{}, invalidf("a cache-only key has no wrapped material: its key service holds it")
	case k.Source != tenant.SourceCacheOnly && (len(k.Wrapped) == 0 || len(k.Wrapped) > MaxWrapped):
		return RotateRequest{}, invalidf("the new key's wrapped material must be 1 to %d bytes, not %d", MaxWrapped, len(k.Wrapped))
	case len(k.Fingerprint) > MaxFingerprint:
		return RotateRequest{}, invalidf("the new key's fingerprint must be at most %d bytes, not %d", MaxFingerprint, len(k.Fingerprint))
	}
	if err := ValidReleaseID(k.Release); err != nil {
		return RotateRequest{}, err
	}
	k.Tenant, k.Type, k.State, k.Created = req.Tenant, req.Type, tenant.StateActive, req.Now
	if len(k.Wrapped) == 0 {
		k.Wrapped = nil
	} else {
		k.Wrapped = bytes.Clone(k.Wrapped)
	}
	if len(k.Fingerprint) == 0 {
		k.Fingerprint = nil
	} else {
		k.Fingerprint = bytes.Clone(k.Fingerprint)
	}
	req.New = k
	return req, nil
}

// Series is what Rotate reads about (tenant, type), under the rotation lock,
// for RotateRequest.Decide.
type Series struct {
	// Newest is the creation time of the key with the highest version (any
	// state); zero if there is none.
	Newest time.Time
	// MaxVersion is the highest version (any state); 0 if none.
	MaxVersion uint32
	// Live counts the active and archived keys.
	Live int
	// Duplicate says whether a key of the tenant (any type, any state) has
	// New.Fingerprint; false if New.Fingerprint is nil.
	Duplicate bool
}

// Decide applies the rotation rules to a checked request (Check) and what
// Rotate read, in this order:
//
//  1. if the newest key (any state) was created less than MinInterval before
//     Now: *RateLimitedError{Next: newest.Created + MinInterval};
//  2. if Live ≥ MaxKeys: ErrTooManyKeys;
//  3. if Duplicate: ErrDuplicate;
//
// and otherwise returns the key to insert as active, with version
// MaxVersion+1. A caller that binds the version into the key material (the
// wrapped secret's associated data) sets New.Version to the version it
// expects: if a concurrent rotation took it, the answer is ErrConflict and
// the caller wraps again for the next one. Rotate then archives the
// previous active key and inserts this one, in the same transaction.
func (req RotateRequest) Decide(s Series) (tenant.Key, error) {
	if !s.Newest.IsZero() {
		if next := s.Newest.Add(req.MinInterval); req.Now.Before(next) {
			return tenant.Key{}, &RateLimitedError{Next: next}
		}
	}
	if s.Live >= req.MaxKeys {
		return tenant.Key{}, Errorf(ErrTooManyKeys, "tenant %s has %d active and archived %s keys, the most allowed is %d: destroy one first",
			req.Tenant, s.Live, req.Type, req.MaxKeys)
	}
	if s.Duplicate {
		return tenant.Key{}, Errorf(ErrDuplicate, "tenant %s already has a key with the same fingerprint (of some type, possibly destroyed)", req.Tenant)
	}
	if s.MaxVersion == math.MaxUint32 {
		return tenant.Key{}, Errorf(ErrTooManyKeys, "tenant %s has used every %s key version", req.Tenant, req.Type)
	}
	k := req.New
	if k.Version != 0 && k.Version != s.MaxVersion+1 {
		return tenant.Key{}, Errorf(ErrConflict, "tenant %s's next %s key is version %d, not %d (a concurrent rotation took it)",
			req.Tenant, req.Type, s.MaxVersion+1, k.Version)
	}
	k.Version = s.MaxVersion + 1
	return k, nil
}
