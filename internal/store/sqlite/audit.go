package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// The audit log (store.AuditStore). Every write transaction is BEGIN
// IMMEDIATE, so an append is serialised with every other writer by SQLite's
// write lock; the state row needs no lock of its own.

// auditBatch is how many entries AuditEntries reads at a time.
const auditBatch = 500

const auditCols = `seq, time, actor, role, tenant, action, key, outcome, reason, remote, request, detail, count, prev, hash`

// appendAudit chains entries after the log's head, inserts them and writes
// the state back, in tx. It returns the entries as stored.
func appendAudit(ctx context.Context, tx *sql.Tx, entries ...audit.Entry) ([]audit.Entry, error) {
	var stored []byte
	err := tx.QueryRowContext(ctx, `SELECT state FROM audit_state WHERE id = 1`).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("store: sqlite: the audit log state row is missing: nothing can be appended")
	}
	if err != nil {
		return nil, err
	}
	state, chained, err := store.ChainAudit(stored, entries)
	if err != nil {
		return nil, err
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO audit_log (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	for _, e := range chained {
		if _, err := ins.ExecContext(ctx, int64(e.Seq), micros(e.Time), e.Actor, e.Role, e.Tenant, string(e.Action), e.Key,
			string(e.Outcome), e.Reason, e.Remote, e.Request, e.Detail, int64(e.Count), e.Prev[:], e.Hash[:]); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_state SET state = ? WHERE id = 1`, state); err != nil {
		return nil, err
	}
	return chained, nil
}

// change runs fn in a write transaction like write and, if fn succeeds,
// appends the pending audit entry of ctx (store.WithAudit), if any, in the
// same transaction; once that committed, it marks the entry recorded. The
// lifecycle writes use it (store.AuditStore).
func (s *Store) change(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return store.RecordChange(ctx,
		func(f func(*sql.Tx) error) error { return s.write(ctx, op, f) },
		fn,
		func(tx *sql.Tx, e audit.Entry) error { _, err := appendAudit(ctx, tx, e); return err })
}

// AppendAudit implements store.AuditStore.
func (s *Store) AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var chained []audit.Entry
	err := s.write(ctx, "appending to the audit log", func(tx *sql.Tx) error {
		var err error
		chained, err = appendAudit(ctx, tx, entries...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return chained, nil
}

func scanAudit(sc interface{ Scan(...any) error }) (audit.Entry, error) {
	var e audit.Entry
	var seq, tm, count int64
	var action, outcome string
	var prev, hash []byte
	if err := sc.Scan(&seq, &tm, &e.Actor, &e.Role, &e.Tenant, &action, &e.Key, &outcome, &e.Reason,
		&e.Remote, &e.Request, &e.Detail, &count, &prev, &hash); err != nil {
		return audit.Entry{}, err
	}
	if len(prev) != len(e.Prev) || len(hash) != len(e.Hash) {
		return audit.Entry{}, fmt.Errorf("store: sqlite: audit entry %d has a %d-byte prev and a %d-byte hash, not 32: the log was altered",
			seq, len(prev), len(hash))
	}
	e.Seq, e.Time, e.Count = uint64(seq), fromMicros(tm), uint64(count)
	e.Action, e.Outcome = audit.Action(action), audit.Outcome(outcome)
	copy(e.Prev[:], prev)
	copy(e.Hash[:], hash)
	return e, nil
}

// auditWhere returns the conditions and arguments of f (checked), but for
// the seq bound.
func auditWhere(f store.AuditFilter) (string, []any) {
	var where []string
	var args []any
	if f.Tenant != "" {
		where, args = append(where, `tenant = ?`), append(args, f.Tenant)
	}
	if f.Key != "" {
		if strings.Contains(f.Key, "/") {
			where, args = append(where, `key = ?`), append(args, f.Key)
		} else {
			prefix := f.Key + "/"
			where, args = append(where, `(key = ? OR substr(key, 1, length(?)) = ?)`), append(args, f.Key, prefix, prefix)
		}
	}
	if !f.Since.IsZero() {
		where, args = append(where, `time >= ?`), append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, `time < ?`), append(args, micros(f.Until))
	}
	if len(where) == 0 {
		return "", nil
	}
	return " AND " + strings.Join(where, " AND "), args
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
	where, args := auditWhere(f)
	query := `SELECT ` + auditCols + ` FROM audit_log WHERE seq > ?` + where + ` ORDER BY seq LIMIT ?`
	after := int64(min(f.AfterSeq, math.MaxInt64))
	left := f.Limit
	for {
		n := auditBatch
		if f.Limit > 0 {
			n = min(n, left)
		}
		batch, err := s.auditBatch(ctx, query, append(append([]any{after}, args...), n))
		if err != nil {
			return err
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

// auditBatch reads one batch of AuditEntries.
func (s *Store) auditBatch(ctx context.Context, query string, args []any) ([]audit.Entry, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr("reading the audit log", err)
	}
	defer rows.Close()
	var batch []audit.Entry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, dbErr("reading the audit log", err)
		}
		batch = append(batch, e)
	}
	return batch, dbErr("reading the audit log", rows.Err())
}

// AuditState implements store.AuditStore.
func (s *Store) AuditState(ctx context.Context) (audit.State, error) {
	var stored []byte
	err := s.db.QueryRowContext(ctx, `SELECT state FROM audit_state WHERE id = 1`).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.State{}, errors.New("store: sqlite: the audit log state row is missing")
	}
	if err != nil {
		return audit.State{}, dbErr("reading the audit log state", err)
	}
	st, err := audit.ParseState(stored)
	if err != nil {
		return audit.State{}, fmt.Errorf("store: sqlite: the stored audit log state is damaged: %w", err)
	}
	return st, nil
}

// AddCheckpoint implements store.AuditStore.
func (s *Store) AddCheckpoint(ctx context.Context, size uint64, signed []byte) error {
	if err := store.CheckCheckpoint(size, signed); err != nil {
		return err
	}
	return s.write(ctx, "storing an audit checkpoint", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, signed, created) VALUES (?, ?, ?)
			ON CONFLICT (size, signed) DO NOTHING`, int64(size), signed, micros(store.Time(time.Now())))
		return err
	})
}

// Checkpoints implements store.AuditStore.
func (s *Store) Checkpoints(ctx context.Context) ([][]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT signed FROM audit_checkpoints ORDER BY size, created, signed`)
	if err != nil {
		return nil, dbErr("listing audit checkpoints", err)
	}
	defer rows.Close()
	var cps [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, dbErr("listing audit checkpoints", err)
		}
		cps = append(cps, b)
	}
	return cps, dbErr("listing audit checkpoints", rows.Err())
}
