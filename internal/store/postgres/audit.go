package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// The audit log (store.AuditStore). An append locks the single row of
// audit_state (SELECT … FOR UPDATE), which serialises appends across every
// node sharing the database: the chain has one head. A lifecycle write
// takes that lock last, after its own (the series lock, a certificate's
// row…), and holds it only for the append and the commit; a transaction
// holding it never waits for another row lock, so it cannot be part of a
// deadlock.

// auditBatch is how many entries AuditEntries reads at a time.
const auditBatch = 500

const auditCols = `seq, time, actor, role, tenant, action, key, outcome, reason, remote, request, detail, count, prev, hash`

// appendAudit locks the log's state, chains entries after its head,
// inserts them and writes the state back, in tx. It returns the entries as
// stored.
func appendAudit(ctx context.Context, tx pgx.Tx, entries ...audit.Entry) ([]audit.Entry, error) {
	var stored []byte
	err := tx.QueryRow(ctx, `SELECT state FROM audit_state WHERE id = 1 FOR UPDATE`).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errors.New("store: postgres: the audit log state row is missing: nothing can be appended")
	}
	if err != nil {
		return nil, err
	}
	// Under the lock: this snapshot has every append committed before.
	state, chained, err := store.ChainAudit(stored, entries)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	for _, e := range chained {
		b.Queue(`INSERT INTO audit_log (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			int64(e.Seq), e.Time, e.Actor, e.Role, e.Tenant, string(e.Action), e.Key, string(e.Outcome), e.Reason,
			e.Remote, e.Request, e.Detail, int64(e.Count), e.Prev[:], e.Hash[:])
	}
	b.Queue(`UPDATE audit_state SET state = $1 WHERE id = 1`, state)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return chained, nil
}

// change runs fn in a write transaction like write and, if fn succeeds,
// appends the pending audit entry of ctx (store.WithAudit), if any, in the
// same transaction, last; once that committed, it marks the entry recorded.
// A retried transaction appends it again in each attempt. The lifecycle
// writes use it (store.AuditStore).
func (s *Store) change(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	return store.RecordChange(ctx,
		func(f func(pgx.Tx) error) error { return s.write(ctx, op, f) },
		fn,
		func(tx pgx.Tx, e audit.Entry) error { _, err := appendAudit(ctx, tx, e); return err })
}

// AppendAudit implements store.AuditStore.
func (s *Store) AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var chained []audit.Entry
	err := s.write(ctx, "appending to the audit log", func(tx pgx.Tx) error {
		var err error
		chained, err = appendAudit(ctx, tx, entries...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return chained, nil
}

func scanAudit(row pgx.Row) (audit.Entry, error) {
	var e audit.Entry
	var seq, count int64
	var action, outcome string
	var prev, hash []byte
	if err := row.Scan(&seq, &e.Time, &e.Actor, &e.Role, &e.Tenant, &action, &e.Key, &outcome, &e.Reason,
		&e.Remote, &e.Request, &e.Detail, &count, &prev, &hash); err != nil {
		return audit.Entry{}, err
	}
	if len(prev) != len(e.Prev) || len(hash) != len(e.Hash) {
		return audit.Entry{}, fmt.Errorf("store: postgres: audit entry %d has a %d-byte prev and a %d-byte hash, not 32: the log was altered",
			seq, len(prev), len(hash))
	}
	e.Seq, e.Time, e.Count = uint64(seq), utc(e.Time), uint64(count)
	e.Action, e.Outcome = audit.Action(action), audit.Outcome(outcome)
	copy(e.Prev[:], prev)
	copy(e.Hash[:], hash)
	return e, nil
}

// auditQuery returns the query of a batch of AuditEntries for f (checked)
// and its arguments but for the first and last, the seq bound ($1) and the
// batch size (the last).
func auditQuery(f store.AuditFilter) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args)+1)
	}
	if f.Tenant != "" {
		where = append(where, `tenant = `+arg(f.Tenant))
	}
	if f.Key != "" {
		if strings.Contains(f.Key, "/") {
			where = append(where, `key = `+arg(f.Key))
		} else {
			where = append(where, `(key = `+arg(f.Key)+` OR starts_with(key, `+arg(f.Key+"/")+`))`)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, `time >= `+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, `time < `+arg(f.Until))
	}
	q := `SELECT ` + auditCols + ` FROM audit_log WHERE seq > $1`
	for _, w := range where {
		q += ` AND ` + w
	}
	return q + ` ORDER BY seq LIMIT $` + strconv.Itoa(len(args)+2), args
}

// AuditEntries implements store.AuditStore: it reads auditBatch entries at a
// time, each batch in a statement of its own, and calls fn between reads.
func (s *Store) AuditEntries(ctx context.Context, f store.AuditFilter, fn func(audit.Entry) error) error {
	f, err := f.Check()
	if err != nil {
		return err
	}
	if fn == nil {
		return store.Errorf(store.ErrInvalid, "AuditEntries needs a function to call")
	}
	query, args := auditQuery(f)
	after := int64(min(f.AfterSeq, math.MaxInt64))
	left := f.Limit
	for {
		n := auditBatch
		if f.Limit > 0 {
			n = min(n, left)
		}
		rows, err := s.pool.Query(ctx, query, append(append([]any{after}, args...), n)...)
		if err != nil {
			return dbErr("reading the audit log", err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Entry, error) { return scanAudit(r) })
		if err != nil {
			return dbErr("reading the audit log", err)
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		if f.Limit > 0 {
			left -= len(batch)
		}
		if len(batch) < n || (f.Limit > 0 && left == 0) {
			return nil
		}
		after = int64(batch[len(batch)-1].Seq)
	}
}

// AuditState implements store.AuditStore.
func (s *Store) AuditState(ctx context.Context) (audit.State, error) {
	var stored []byte
	err := s.pool.QueryRow(ctx, `SELECT state FROM audit_state WHERE id = 1`).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.State{}, errors.New("store: postgres: the audit log state row is missing")
	}
	if err != nil {
		return audit.State{}, dbErr("reading the audit log state", err)
	}
	st, err := audit.ParseState(stored)
	if err != nil {
		return audit.State{}, fmt.Errorf("store: postgres: the stored audit log state is damaged: %w", err)
	}
	return st, nil
}

// AddCheckpoint implements store.AuditStore. Two nodes storing the same
// checkpoint at once both succeed: the second INSERT waits for the first
// and does nothing.
func (s *Store) AddCheckpoint(ctx context.Context, size uint64, signed []byte) error {
	if err := store.CheckCheckpoint(size, signed); err != nil {
		return err
	}
	return s.write(ctx, "storing an audit checkpoint", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (size, signed, created) VALUES ($1, $2, $3)
			ON CONFLICT (size, signed) DO NOTHING`, int64(size), signed, store.Time(time.Now()))
		return err
	})
}

// Checkpoints implements store.AuditStore.
func (s *Store) Checkpoints(ctx context.Context) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT signed FROM audit_checkpoints ORDER BY size, created, signed`)
	if err != nil {
		return nil, dbErr("listing audit checkpoints", err)
	}
	cps, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, dbErr("listing audit checkpoints", err)
	}
	return cps, nil
}
