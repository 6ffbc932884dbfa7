package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/audit"
)

// The region's audit log (internal/audit, docs/audit.md): entries chained
// and numbered by the store in the order it commits them, the log's State,
// and the signed checkpoints. Entries are never updated or deleted.
//
// An entry is appended either by a lifecycle write, in the change's own
// transaction (see the package documentation), or by AppendAudit, in a
// transaction of its own: refusals, failures, reads that must be recorded
// (export, DEK delivery), aggregated data-plane counts.
//
// Appends are serialised across every Store sharing the database (the
// chain has one head): each transaction that appends locks the log's state
// row (qAuditStateLock) after every other lock it takes, and holds it until
// it commits. A transaction holding it never waits for another row lock, so
// it cannot be part of a deadlock.

const auditCols = `seq, time, actor, role, tenant, action, key, outcome, reason, remote, request, detail, count, prev, hash`

const (
	qAuditState = `SELECT state FROM audit_state WHERE id = 1`
	// qAuditStateLock is qAuditState with the dialect's ForUpdate.
	qAuditStateLock = qAuditState
	qAuditStateSet  = `UPDATE audit_state SET state = $1 WHERE id = 1`
	// qAuditLastTime is the time of the log's last entry.
	qAuditLastTime = `SELECT time FROM audit_log ORDER BY seq DESC LIMIT 1`
	qAuditInsert   = `INSERT INTO audit_log (` + auditCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`
	// qAuditEntries is the start of a batch of AuditEntries: auditQuery
	// adds the filter's conditions and the order and limit.
	qAuditEntries = `SELECT ` + auditCols + ` FROM audit_log WHERE seq > $1`
	// Storing the same checkpoint twice (two nodes at once) is a no-op.
	qCheckpointInsert = `INSERT INTO audit_checkpoints (size, signed, created) VALUES ($1, $2, $3)
		ON CONFLICT (size, signed) DO NOTHING`
	qCheckpoints = `SELECT signed FROM audit_checkpoints ORDER BY size, created, signed`
)

// auditBatch is how many entries AuditEntries reads at a time.
const auditBatch = 500

// Limits of the audit log in the store.
const (
	// MaxAuditCount is the largest Entry.Count the store keeps (a signed
	// 64-bit column); the Seq of the log is bounded the same way.
	MaxAuditCount = math.MaxInt64
	// MaxCheckpoint is the most bytes of a signed checkpoint.
	MaxCheckpoint = 1024
)

// AuditFilter selects audit entries; zero fields select everything.
type AuditFilter struct {
	Tenant string // entries of this tenant ID
	// Key selects the entries of one key version, "data/3" (an exact
	// match), or, without a "/", of a key type: "data" matches "data/1",
	// "data/2"… and an entry naming the type only, "data".
	Key      string
	Since    time.Time // entries at or after
	Until    time.Time // entries before
	AfterSeq uint64    // entries with a greater Seq
	Limit    int       // at most this many (0 = all)
}

// Check validates f and returns it as AuditEntries uses it: Limit not
// negative (ErrInvalid); Since and Until, when set, within years 1–9999 and
// rounded up to the microsecond (entry times are whole microseconds, so
// this selects the same entries), in UTC.
func (f AuditFilter) Check() (AuditFilter, error) {
	if f.Limit < 0 {
		return AuditFilter{}, invalidf("negative audit entry limit %d: use 0 for no limit", f.Limit)
	}
	for _, t := range []struct {
		what string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if t.t.IsZero() {
			continue
		}
		c, err := CheckTime("audit filter "+t.what, *t.t)
		if err != nil {
			return AuditFilter{}, err
		}
		if c.Before(*t.t) {
			c = c.Add(time.Microsecond)
		}
		*t.t = c
	}
	return f, nil
}

// chainAudit parses the log's state as stored (audit.State.MarshalBinary),
// chains entries after it (audit.State.Append) and returns them with the
// new state to store. An entry that is invalid, or whose Count or Seq would
// exceed MaxAuditCount, is ErrInvalid; the message names the entry's
// position and the field, never its content. A state that does not parse is
// an error of its own (the stored state was damaged: nothing can be
// appended until it is repaired).
func chainAudit(stored []byte, entries []audit.Entry) (state []byte, chained []audit.Entry, err error) {
	st, err := audit.ParseState(stored)
	if err != nil {
		return nil, nil, fmt.Errorf("store: the stored audit log state is damaged, so nothing can be appended: %w", err)
	}
	chained = make([]audit.Entry, len(entries))
	for i, e := range entries {
		if e.Count > MaxAuditCount {
			return nil, nil, invalidf("audit entry %d of %d is invalid: its count is above %d", i+1, len(entries), uint64(MaxAuditCount))
		}
		if st.Size() >= MaxAuditCount {
			return nil, nil, invalidf("the audit log is full (%d entries)", st.Size())
		}
		if chained[i], err = st.Append(e); err != nil {
			return nil, nil, invalidf("audit entry %d of %d is invalid: its %s breaks the rules of docs/audit.md", i+1, len(entries), auditField(err))
		}
	}
	if state, err = st.MarshalBinary(); err != nil {
		return nil, nil, fmt.Errorf("store: encoding the audit log state: %w", err)
	}
	return state, chained, nil
}

// CheckCheckpoint validates the arguments of AddCheckpoint: size at most
// MaxAuditCount, and 1 to MaxCheckpoint bytes.
func CheckCheckpoint(size uint64, signed []byte) error {
	if size > MaxAuditCount {
		return invalidf("audit checkpoint size %d is above %d", size, uint64(MaxAuditCount))
	}
	if len(signed) == 0 || len(signed) > MaxCheckpoint {
		return invalidf("a signed audit checkpoint must be 1 to %d bytes, not %d", MaxCheckpoint, len(signed))
	}
	return nil
}

// auditFields are the entry fields that audit.Entry.Validate names.
var auditFields = []string{"seq", "time", "actor", "role", "tenant", "action", "key", "outcome", "reason", "remote", "request", "detail"}

// auditField returns the field an audit validation error names, or "content"
// if it names none. Only the name is taken from the message: the rest of it
// may quote the field's value, which the store's errors never contain.
func auditField(err error) string {
	msg := strings.TrimPrefix(err.Error(), "audit: ")
	msg = strings.TrimPrefix(msg, "entry ")
	name, _, _ := strings.Cut(msg, " ")
	if slices.Contains(auditFields, name) {
		return name
	}
	return "content"
}

// checkEntry checks an entry as chainAudit would, before a change is made.
func checkEntry(e audit.Entry) error {
	_, _, err := chainAudit(mustEmptyState, []audit.Entry{e})
	return err
}

// mustEmptyState is the stored state of the empty log.
var mustEmptyState = func() []byte {
	var st audit.State
	b, err := st.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}()

// appendAudit locks the log's state, chains entries after its head, inserts
// them and writes the state back, in tx. It returns the entries as stored.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, entries ...audit.Entry) ([]audit.Entry, error) {
	var stored []byte
	err := s.txQueryRow(ctx, tx, qAuditStateLock+s.d.ForUpdate).Scan(&stored)
	if noRows(err) {
		return nil, fmt.Errorf("store: %s: the audit log state row is missing: nothing can be appended", s.d.Name)
	}
	if err != nil {
		return nil, err
	}
	// Under the lock: this read has every append committed before. Time
	// never runs backwards in the log: an entry stamped before its
	// predecessor (a request that started earlier and committed later)
	// takes its predecessor's time.
	var last time.Time
	if err := s.txQueryRow(ctx, tx, qAuditLastTime).Scan(timeValue{&last}); err != nil && !noRows(err) {
		return nil, err
	}
	entries = slices.Clone(entries)
	for i := range entries {
		if !entries[i].Time.IsZero() && entries[i].Time.Before(last) {
			entries[i].Time = last
		}
		last = entries[i].Time.Truncate(time.Microsecond)
	}
	state, chained, err := chainAudit(stored, entries)
	if err != nil {
		return nil, err
	}
	ins, err := s.txPrepare(ctx, tx, qAuditInsert)
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	for _, e := range chained {
		if _, err := ins.ExecContext(ctx, int64(e.Seq), s.d.Time(e.Time), e.Actor, e.Role, e.Tenant, string(e.Action), e.Key,
			string(e.Outcome), e.Reason, e.Remote, e.Request, e.Detail, int64(e.Count), e.Prev[:], e.Hash[:]); err != nil {
			return nil, err
		}
	}
	if _, err := s.txExec(ctx, tx, qAuditStateSet, state); err != nil {
		return nil, err
	}
	return chained, nil
}

// AppendAudit chains entries after the log's head (setting Seq, Prev and
// Hash; Time is truncated to the microsecond, in UTC, and raised to the
// last entry's if it is earlier) and stores them in one
// transaction of their own. An invalid entry (audit.Entry.Validate, or a
// Count above MaxAuditCount) → ErrInvalid, naming the entry's position and
// the field but not its content, and nothing is stored. It returns the
// entries as stored. No entries: nothing is done.
func (s *Store) AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var chained []audit.Entry
	err := s.write(ctx, "appending to the audit log", func(tx *sql.Tx) error {
		var err error
		chained, err = s.appendAudit(ctx, tx, entries...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return chained, nil
}

func scanAudit(sc scanner) (audit.Entry, error) {
	var e audit.Entry
	var seq, count int64
	var prev, hash []byte
	if err := sc.Scan(&seq, timeValue{&e.Time}, &e.Actor, &e.Role, &e.Tenant, &e.Action, &e.Key, &e.Outcome, &e.Reason,
		&e.Remote, &e.Request, &e.Detail, &count, &prev, &hash); err != nil {
		return audit.Entry{}, err
	}
	if len(prev) != len(e.Prev) || len(hash) != len(e.Hash) {
		return audit.Entry{}, fmt.Errorf("store: audit entry %d has a %d-byte prev and a %d-byte hash, not 32: the log was altered",
			seq, len(prev), len(hash))
	}
	e.Seq, e.Count = uint64(seq), uint64(count)
	copy(e.Prev[:], prev)
	copy(e.Hash[:], hash)
	return e, nil
}

// auditQuery returns the statement of a batch of AuditEntries for f
// (checked) and its arguments but for the first and last: the seq bound
// ($1) and the batch size (the last). Each condition of f adds one
// "AND column op $n" with its argument.
func (s *Store) auditQuery(f AuditFilter) (string, []any) {
	q := qAuditEntries
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args)+1)
	}
	if f.Tenant != "" {
		q += ` AND tenant = ` + arg(f.Tenant)
	}
	if f.Key != "" {
		if strings.Contains(f.Key, "/") {
			q += ` AND key = ` + arg(f.Key)
		} else {
			prefix := f.Key + "/"
			q += ` AND (key = ` + arg(f.Key) + ` OR substr(key, 1, ` + arg(utf8.RuneCountInString(prefix)) + `) = ` + arg(prefix) + `)`
		}
	}
	if !f.Since.IsZero() {
		q += ` AND time >= ` + arg(s.d.Time(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND time < ` + arg(s.d.Time(f.Until))
	}
	return q + ` ORDER BY seq LIMIT $` + strconv.Itoa(len(args)+2), args
}

// AuditEntries calls fn with each stored entry that matches f (checked
// first: AuditFilter.Check), in Seq order, until fn returns an error (which
// it returns) or the entries end.
//
// The entries are read in batches of a few hundred, each in a statement of
// its own, and fn is called between reads, outside any transaction: fn may
// use the store, and a slow fn holds no database connection or snapshot.
// The entries passed are those of a prefix of the log, as it stood when the
// last batch was read (entries become visible in Seq order, without gaps):
// entries appended meanwhile may be included.
func (s *Store) AuditEntries(ctx context.Context, f AuditFilter, fn func(audit.Entry) error) error {
	f, err := f.Check()
	if err != nil {
		return err
	}
	if fn == nil {
		return Errorf(ErrInvalid, "AuditEntries needs a function to call")
	}
	query, args := s.auditQuery(f)
	after := int64(min(f.AfterSeq, math.MaxInt64))
	left := f.Limit
	for {
		n := auditBatch
		if f.Limit > 0 {
			n = min(n, left)
		}
		rows, err := s.db.QueryContext(ctx, query, append(append([]any{after}, args...), n)...)
		batch, err := collect(rows, err, scanAudit)
		if err != nil {
			return s.dbErr("reading the audit log", err)
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

// AuditState returns the state of the log: its size, head and Merkle root
// (the empty log's, the zero State, if it has no entry).
func (s *Store) AuditState(ctx context.Context) (audit.State, error) {
	var stored []byte
	err := s.db.QueryRowContext(ctx, qAuditState).Scan(&stored)
	if noRows(err) {
		return audit.State{}, fmt.Errorf("store: %s: the audit log state row is missing", s.d.Name)
	}
	if err != nil {
		return audit.State{}, s.dbErr("reading the audit log state", err)
	}
	st, err := audit.ParseState(stored)
	if err != nil {
		return audit.State{}, fmt.Errorf("store: %s: the stored audit log state is damaged: %w", s.d.Name, err)
	}
	return st, nil
}

// AddCheckpoint stores a signed checkpoint (audit.SignCheckpoint) of the
// log at size entries (1 to MaxCheckpoint bytes, else ErrInvalid). Storing
// the same bytes for the same size again is a no-op. The store does not
// parse it (that needs the trusted keys): audit.Verify checks every stored
// checkpoint.
func (s *Store) AddCheckpoint(ctx context.Context, size uint64, signed []byte) error {
	if err := CheckCheckpoint(size, signed); err != nil {
		return err
	}
	return s.write(ctx, "storing an audit checkpoint", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, qCheckpointInsert, int64(size), signed, s.d.Time(Time(time.Now())))
		return err
	})
}

// Checkpoints returns every stored checkpoint, oldest (smallest size)
// first, then by the time they were stored.
func (s *Store) Checkpoints(ctx context.Context) ([][]byte, error) {
	rows, err := s.db.QueryContext(ctx, qCheckpoints)
	cps, err := collect(rows, err, func(sc scanner) ([]byte, error) {
		var b []byte
		err := sc.Scan(&b)
		return b, err
	})
	return cps, s.dbErr("listing audit checkpoints", err)
}
