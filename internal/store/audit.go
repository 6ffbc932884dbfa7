package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
)

// AuditStore keeps the region's audit log (internal/audit, docs/audit.md):
// entries chained and numbered by the store in the order it commits them,
// the log's State, and the signed checkpoints. Entries are never updated or
// deleted.
//
// An entry is appended either
//   - by a lifecycle write made with a context carrying a PendingAudit
//     (WithAudit): the entry is appended in the same transaction as the
//     change, so that there is no change without its entry and no entry
//     without its change (S19); or
//   - by AppendAudit, in a transaction of its own: refusals, failures, reads
//     that must be recorded (export, DEK delivery), aggregated data-plane
//     counts.
//
// The lifecycle writes are Rotate, DestroyKey, RestoreKey, CreateTenant,
// SetDerivationOptOut, CreateToken, DeleteToken, InstallRelease (also when
// the release was installed already: the call succeeded), CreateUploadCert,
// ActivateUploadCert and RetireUploadCert. Each, when it succeeds, takes the
// pending entry of its context (PendingAudit.Take), appends it after its
// change, in its transaction, and marks it recorded once that committed. A
// write that fails appends nothing and leaves the entry pending: the caller
// records the refusal or failure itself, with AppendAudit. If the pending
// entry is invalid, the write fails with ErrInvalid and changes nothing. A
// transaction that a driver retries (a PostgreSQL serialization failure)
// appends the entry again in each attempt, and only the committed attempt
// counts. PutExportKey, AppendAudit and the reads never take a pending
// entry.
//
// Appends are serialised across every Store sharing the database (the
// chain has one head): each transaction that appends locks the log's state
// after every other lock it takes, and holds it until it commits.
type AuditStore interface {
	// AppendAudit chains entries after the log's head (setting Seq, Prev and
	// Hash; Time is truncated to the microsecond, in UTC) and stores them
	// in one transaction. An invalid entry (audit.Entry.Validate, or a Count
	// above MaxAuditCount) → ErrInvalid, naming the entry's position and the
	// field but not its content, and nothing is stored. It returns the
	// entries as stored. No entries: nothing is done.
	AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error)
	// AuditEntries calls fn with each stored entry that matches f (checked
	// first: AuditFilter.Check), in Seq order, until fn returns an error
	// (which it returns) or the entries end.
	//
	// The entries are read in batches of a few hundred, and fn is called
	// between reads, outside any transaction: fn may use the store, and a
	// slow fn holds no database connection or snapshot. The entries passed
	// are those of a prefix of the log, as it stood when the last batch was
	// read (entries become visible in Seq order, without gaps): entries
	// appended meanwhile may be included.
	AuditEntries(ctx context.Context, f AuditFilter, fn func(audit.Entry) error) error
	// AuditState returns the state of the log: its size, head and Merkle
	// root (the empty log's, the zero State, if it has no entry).
	AuditState(ctx context.Context) (audit.State, error)
	// AddCheckpoint stores a signed checkpoint (audit.SignCheckpoint) of
	// the log at size entries (1 to MaxCheckpoint bytes, else ErrInvalid).
	// Storing the same bytes for the same size again is a no-op. The store
	// does not parse it (that needs the trusted keys): audit.Verify checks
	// every stored checkpoint.
	AddCheckpoint(ctx context.Context, size uint64, signed []byte) error
	// Checkpoints returns every stored checkpoint, oldest (smallest size)
	// first, then by the time they were stored.
	Checkpoints(ctx context.Context) ([][]byte, error)
}

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

// Check validates f and returns it as the drivers use it: Limit not
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

// ChainAudit is the append that the drivers share: it parses the log's
// state as stored (audit.State.MarshalBinary), chains entries after it
// (audit.State.Append) and returns them with the new state to store. An
// entry that is invalid, or whose Count or Seq would exceed MaxAuditCount, is
// ErrInvalid; the message names the entry's position and the field, never
// its content. A state that does not parse is an error of its own (the
// stored state was damaged: nothing can be appended until it is repaired).
func ChainAudit(stored []byte, entries []audit.Entry) (state []byte, chained []audit.Entry, err error) {
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

// PendingAudit is the audit entry of a request's lifecycle change, to be
// appended in the change's own transaction.
type PendingAudit struct {
	mu       sync.Mutex
	entry    audit.Entry
	recorded bool
}

// NewPendingAudit returns a pending entry (its Outcome is set to ok when it
// is recorded with a change).
func NewPendingAudit(e audit.Entry) *PendingAudit { return &PendingAudit{entry: e} }

// SetKey names the key the change concerns ("data/3").
func (p *PendingAudit) SetKey(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entry.Key = key
}

// SetTenant names the tenant the change concerns, when the request's path
// does not (a tenant being created, a token for a tenant).
func (p *PendingAudit) SetTenant(tenantID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entry.Tenant = tenantID
}

// Entry returns the entry as it stands.
func (p *PendingAudit) Entry() audit.Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.entry
}

// Recorded reports whether a lifecycle write committed the entry.
func (p *PendingAudit) Recorded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recorded
}

// Take is for the drivers: inside a lifecycle write's transaction, it
// returns the entry to append (with Outcome ok) and true, unless there is no
// pending entry in ctx or it was recorded already. The entry stays pending
// until the driver calls Committed, once its transaction committed: a
// transaction that fails or is retried takes it again.
func (p *PendingAudit) Take() (audit.Entry, bool) {
	if p == nil {
		return audit.Entry{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recorded {
		return audit.Entry{}, false
	}
	e := p.entry
	e.Outcome, e.Reason = audit.OutcomeOK, ""
	return e, true
}

// Committed marks the entry recorded (the driver's transaction committed).
func (p *PendingAudit) Committed() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recorded = true
}

type pendingKey struct{}

// WithAudit returns a context whose next lifecycle write that succeeds
// records p (see AuditStore). p is for one request: lifecycle writes made
// with it at the same time could each record it.
func WithAudit(ctx context.Context, p *PendingAudit) context.Context {
	return context.WithValue(ctx, pendingKey{}, p)
}

// PendingAuditFrom returns the pending entry of ctx, or nil.
func PendingAuditFrom(ctx context.Context) *PendingAudit {
	p, _ := ctx.Value(pendingKey{}).(*PendingAudit)
	return p
}

// RecordChange is the drivers' lifecycle write (the AuditStore contract):
// write runs its argument in one write transaction, retried as the driver
// retries; in it, fn makes the change and then, if fn succeeded, appendEntry
// appends the pending audit entry of ctx (WithAudit), if any, last. A
// retried transaction appends it again in each attempt. Once write
// returned without error, the entry is marked recorded.
func RecordChange[Tx any](ctx context.Context, write func(func(Tx) error) error, fn func(Tx) error,
	appendEntry func(Tx, audit.Entry) error) error {
	p := PendingAuditFrom(ctx)
	took := false
	err := write(func(tx Tx) error {
		took = false
		if err := fn(tx); err != nil {
			return err
		}
		e, ok := p.Take()
		if !ok {
			return nil
		}
		took = true
		return appendEntry(tx, e)
	})
	if err == nil && took {
		p.Committed()
	}
	return err
}
