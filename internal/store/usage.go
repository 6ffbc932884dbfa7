package store

import (
	"context"
	"database/sql"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
)

// Key usage (internal/keyusage, docs/keys-usage.md): per key version,
// counters that are added in the transaction that appends the audit
// entries recording the same operations, so that the counters and the log
// agree; and the data-at-rest reports of the datasets that hold the data.

const usageCols = `tenant, type, version, encryptions, decryptions, deliveries, sealed,
	last_encrypt, last_decrypt, last_delivery, rows_left, reported`

const (
	qKeyExists = `SELECT EXISTS (SELECT 1 FROM keys WHERE tenant = $1 AND type = $2 AND version = $3)`
	// qUsageAdd adds to a version's counters and keeps the later of each
	// time (a NULL one changes nothing).
	qUsageAdd = `INSERT INTO key_usage (tenant, type, version, encryptions, decryptions, deliveries, sealed,
			last_encrypt, last_decrypt, last_delivery)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (tenant, type, version) DO UPDATE SET
			encryptions = key_usage.encryptions + excluded.encryptions,
			decryptions = key_usage.decryptions + excluded.decryptions,
			deliveries = key_usage.deliveries + excluded.deliveries,
			sealed = key_usage.sealed + excluded.sealed,
			last_encrypt = CASE WHEN key_usage.last_encrypt IS NULL OR excluded.last_encrypt > key_usage.last_encrypt
				THEN excluded.last_encrypt ELSE key_usage.last_encrypt END,
			last_decrypt = CASE WHEN key_usage.last_decrypt IS NULL OR excluded.last_decrypt > key_usage.last_decrypt
				THEN excluded.last_decrypt ELSE key_usage.last_decrypt END,
			last_delivery = CASE WHEN key_usage.last_delivery IS NULL OR excluded.last_delivery > key_usage.last_delivery
				THEN excluded.last_delivery ELSE key_usage.last_delivery END`
	qKeyVersions = `SELECT version FROM keys WHERE tenant = $1 AND type = $2 ORDER BY version`
	// qDataReport stores one dataset's count under a version, unless a
	// later census of the dataset is stored already.
	qDataReport = `INSERT INTO key_data_reports (tenant, type, version, dataset, rows_left, reported) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, type, version, dataset) DO UPDATE SET rows_left = excluded.rows_left, reported = excluded.reported
		WHERE key_data_reports.reported <= excluded.reported`
	// qUsageRowsLeft sets a version's rows_left and reported from its
	// datasets: their sum, and the oldest census.
	qUsageRowsLeft = `INSERT INTO key_usage (tenant, type, version, rows_left, reported)
		SELECT tenant, type, version, SUM(rows_left), MIN(reported) FROM key_data_reports
		WHERE tenant = $1 AND type = $2 AND version = $3 GROUP BY tenant, type, version
		ON CONFLICT (tenant, type, version) DO UPDATE SET rows_left = excluded.rows_left, reported = excluded.reported`
	qUsage = `SELECT ` + usageCols + ` FROM key_usage WHERE tenant = $1 AND ($2 = '' OR type = $2) ORDER BY type, version`
)

func scanUsage(sc scanner) (keyusage.Usage, error) {
	var u keyusage.Usage
	var version, enc, dec, del, sealed int64
	var rows sql.NullInt64
	if err := sc.Scan(&u.Key.Tenant, &u.Key.Type, &version, &enc, &dec, &del, &sealed,
		timeValue{&u.LastEncrypt}, timeValue{&u.LastDecrypt}, timeValue{&u.LastDelivery}, &rows, timeValue{&u.Reported}); err != nil {
		return keyusage.Usage{}, err
	}
	u.Key.Version = uint32(version)
	u.Encryptions, u.Decryptions, u.Deliveries, u.Sealed = uint64(enc), uint64(dec), uint64(del), uint64(sealed)
	u.RowsLeft = uint64(rows.Int64)
	return u, nil
}

// checkCount validates a usage count: a valid key version, counts of at
// most MaxAuditCount, and times that are zero or valid. It returns it as
// stored (times truncated).
func checkCount(c keyusage.Count) (keyusage.Count, error) {
	if err := ValidKeyRef(c.Key); err != nil {
		return c, err
	}
	for _, n := range []uint64{c.Encryptions, c.Decryptions, c.Deliveries, c.Sealed} {
		if n > math.MaxInt64 {
			return c, invalidf("a key usage count of %d is above %d", n, uint64(math.MaxInt64))
		}
	}
	for _, t := range []struct {
		what string
		t    *time.Time
	}{{"last encryption", &c.LastEncrypt}, {"last decryption", &c.LastDecrypt}, {"last delivery", &c.LastDelivery}} {
		if t.t.IsZero() {
			continue
		}
		v, err := CheckTime("key usage "+t.what, *t.t)
		if err != nil {
			return c, err
		}
		*t.t = v
	}
	return c, nil
}

// AppendAuditUsage is AppendAudit with the key usage that the entries
// record: in the same transaction, each count (summed per key version,
// keyusage.Merge) is added to its version's counters, and each time kept
// if it is later than the stored one. A count of a key version the tenant
// does not have is skipped: an aggregate never fails to be appended for
// it. An invalid count (ErrInvalid) or entry stores nothing. The counters
// are locked in (tenant, type, version) order, before the audit state.
// Neither counts nor entries: nothing is done.
func (s *Store) AppendAuditUsage(ctx context.Context, counts []keyusage.Count, entries ...audit.Entry) ([]audit.Entry, error) {
	if len(counts) == 0 && len(entries) == 0 {
		return nil, nil
	}
	counts = keyusage.Merge(counts)
	for i := range counts {
		var err error
		if counts[i], err = checkCount(counts[i]); err != nil {
			return nil, err
		}
	}
	var chained []audit.Entry
	err := s.write(ctx, "appending to the audit log with key usage", func(tx *sql.Tx) error {
		for _, c := range counts {
			var exists bool
			if err := s.txQueryRow(ctx, tx, qKeyExists, c.Key.Tenant, c.Key.Type, int64(c.Key.Version)).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				continue
			}
			if _, err := s.txExec(ctx, tx, qUsageAdd, c.Key.Tenant, c.Key.Type, int64(c.Key.Version),
				int64(c.Encryptions), int64(c.Decryptions), int64(c.Deliveries), int64(c.Sealed),
				s.d.NullTime(c.LastEncrypt), s.d.NullTime(c.LastDecrypt), s.d.NullTime(c.LastDelivery)); err != nil {
				return err
			}
		}
		if len(entries) == 0 {
			return nil
		}
		var err error
		chained, err = s.appendAudit(ctx, tx, entries...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return chained, nil
}

// KeyUsage lists the usage of the tenant's key versions (of type typ, or
// of every type if typ is ""), ordered by type and version. A version
// never used nor reported on has no row, and is not listed.
func (s *Store) KeyUsage(ctx context.Context, tenantID, typ string) ([]keyusage.Usage, error) {
	if err := ValidID("tenant", tenantID); err != nil {
		return nil, err
	}
	if typ != "" {
		if err := ValidType(typ); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, qUsage, tenantID, typ)
	us, err := collect(rows, err, scanUsage)
	return us, s.dbErr("listing key usage", err)
}

// MaxDataset is the longest dataset name of a data-at-rest report, in
// bytes.
const MaxDataset = 200

// ReportDataAtRest records a data-at-rest census of one dataset (a table's
// columns, as its reporter names it) for one key type of a tenant, counted
// whole at time at: rows[v] values under version v, and none under every
// other version of the type. Each version's rows_left becomes the sum over
// the datasets reported for it, and reported the oldest of their times (a
// version is only as well known as its stalest census). A census of a
// dataset older than the one stored changes nothing for it (the entry is
// still appended). A version the tenant never had → ErrNotFound, and
// nothing is stored.
func (s *Store) ReportDataAtRest(ctx context.Context, tenantID, typ, dataset string, rows map[uint32]uint64, at time.Time, rec audit.Entry) error {
	if err := ValidID("tenant", tenantID); err != nil {
		return err
	}
	if err := ValidType(typ); err != nil {
		return err
	}
	if dataset == "" || len(dataset) > MaxDataset || !utf8.ValidString(dataset) {
		return invalidf("a dataset name of %d bytes (1 to %d of UTF-8)", len(dataset), MaxDataset)
	}
	for v, n := range rows {
		if n > math.MaxInt64 || v == 0 {
			return invalidf("a count of %d values under version %d", n, v)
		}
	}
	at, err := CheckTime("data-at-rest report", at)
	if err != nil {
		return err
	}
	return s.change(ctx, "recording a data-at-rest report", rec, func(tx *sql.Tx) error {
		rs, err := tx.QueryContext(ctx, qKeyVersions, tenantID, typ)
		var versions []uint32
		if err == nil {
			versions, err = collect(rs, nil, func(sc scanner) (uint32, error) {
				var v int64
				err := sc.Scan(&v)
				return uint32(v), err
			})
		}
		if err != nil {
			return err
		}
		for v := range rows {
			if !slices.Contains(versions, v) {
				return Errorf(ErrNotFound, "the tenant has no %s key version %d", typ, v)
			}
		}
		for _, v := range versions {
			if _, err := tx.ExecContext(ctx, qDataReport, tenantID, typ, int64(v), dataset, int64(rows[v]), s.d.Time(at)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, qUsageRowsLeft, tenantID, typ, int64(v)); err != nil {
				return err
			}
		}
		return nil
	})
}
