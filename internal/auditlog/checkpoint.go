package auditlog

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// Checkpointer appends the data plane's aggregate entries and signs a
// checkpoint of the log whenever it grew: once when it starts, every
// interval, and once more when its context ends.
//
// It signs only a log that extends the last checkpoint it signed, which it
// keeps in its witness file, outside the database (see Checkpoint).
// Someone who can write to the database alone can rewrite the log, its
// state and its checkpoints consistently; the Checkpointer then refuses
// (*RefusedError) instead of signing the forgery.
//
// A Checkpointer is not safe for concurrent use.
type Checkpointer struct {
	log     *Log
	key     hsm.SigningKey
	witness string
	agg     *Aggregate
	logger  *slog.Logger
	w       *Witness // the witness as last read or signed; nil until then
	// unwritten: w was signed and stored in the database, but writing it
	// to the file failed; every round tries again.
	unwritten bool

	mu       sync.Mutex // guards progress, which Progress reads while it runs
	progress Progress
}

// Progress is what a Checkpointer has done, for monitoring
// (internal/metrics).
type Progress struct {
	// Size and Signed are the size and signing time of the checkpoint of
	// this node's witness, as last read or signed; zero until there is one.
	Size   uint64
	Signed time.Time
	// Rounds counts the rounds of Once; Refused and Failed those whose
	// checkpoint was refused (*RefusedError) or failed otherwise.
	Rounds, Refused, Failed uint64
}

// Progress returns what c has done so far. Unlike c's other methods, it is
// safe to call while c runs.
func (c *Checkpointer) Progress() Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress
}

// setWitness makes w the witness c goes on from.
func (c *Checkpointer) setWitness(w *Witness) {
	c.w = w
	if w == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress.Size, c.progress.Signed = w.Checkpoint.Size, w.Checkpoint.Time
}

// NewCheckpointer returns a Checkpointer of l that signs with key, keeps its
// witness in the file witness, and flushes agg (nil: none) first. Failures
// go to logger.
func NewCheckpointer(l *Log, key hsm.SigningKey, witness string, agg *Aggregate, logger *slog.Logger) *Checkpointer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{log: l, key: key, witness: witness, agg: agg, logger: logger}
}

// RefusedError says why a Checkpointer signed nothing: the log in the
// database does not extend the last checkpoint this node signed, as its
// witness keeps it (or, while it has none, does not verify from entry 1),
// or the witness cannot be used. The Checkpointer refuses again every time,
// until someone has looked (docs/audit.md, "The witness").
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string {
	return "auditlog: refusing to sign a checkpoint: " + strings.TrimPrefix(e.Err.Error(), "auditlog: ")
}

func (e *RefusedError) Unwrap() error { return e.Err }

func refused(format string, args ...any) error {
	return &RefusedError{Err: fmt.Errorf(format, args...)}
}

// Run works every interval until ctx ends, then once more (within 10 s).
func (c *Checkpointer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	c.Once(ctx)
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			c.Once(final)
			cancel()
			return
		case <-t.C:
			c.Once(ctx)
		}
	}
}

// Once flushes the aggregate and signs a checkpoint if the log grew. A
// refusal is logged at error level, every time.
func (c *Checkpointer) Once(ctx context.Context) {
	if c.agg != nil {
		if err := c.agg.Flush(ctx, c.log); err != nil {
			c.logger.Error("audit: appending the data-plane aggregate failed; kept for the next try", "err", err)
		}
	}
	var r *RefusedError
	err := c.Checkpoint(ctx)
	c.mu.Lock()
	c.progress.Rounds++
	switch {
	case errors.As(err, &r):
		c.progress.Refused++
	case err != nil:
		c.progress.Failed++
	}
	c.mu.Unlock()
	if errors.As(err, &r) {
		c.logger.Error("audit: the audit log in the database is not the one this node signed; no checkpoint is signed until it is investigated (docs/audit.md, \"The witness\")", "err", err)
	} else if err != nil {
		c.logger.Error("audit: signing a checkpoint failed", "err", err)
	}
}

// Checkpoint signs and stores a checkpoint of the log as it stands, unless
// it is empty or has not grown since the last one, and then rewrites the
// witness. It signs only if the database's log extends the witness:
//
//   - the entries after the witness's size chain onto its state, and
//     recompute, as audit.Verify checks them (audit.State.Extend);
//   - the witness's state extended with them is the database's audit state
//     (size, Merkle root and chain head).
//
// Before the node has a witness (its first checkpoint, or the file was
// lost), the whole log must verify from entry 1 against this node's
// checkpoints in the database. Otherwise it signs nothing and returns a
// *RefusedError naming what did not match.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	if c.witness == "" {
		return errors.New("auditlog: no witness file: the Checkpointer needs one (audit.witness_file)")
	}
	var cps [][]byte
	if c.w == nil {
		w, err := c.log.ReadWitness(c.witness, c.pub())
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &RefusedError{Err: err}
		}
		c.setWitness(w)
	}
	if c.w == nil {
		// Read before the state: a checkpoint stored by then covers no
		// more entries than the state read after it.
		var err error
		if cps, err = c.log.st.Checkpoints(ctx); err != nil {
			return err
		}
	}
	db, err := c.log.st.AuditState(ctx)
	if err != nil {
		return err
	}
	var st audit.State
	if c.w == nil {
		st, err = c.verifyAll(ctx, db.Size(), cps)
	} else {
		st, err = c.extend(ctx, db.Size())
	}
	if err != nil {
		return err
	}
	if diff := difference(&db, &st); diff != "" {
		what := "the log verified from entry 1"
		if c.w != nil {
			what = fmt.Sprintf("the log of this node's witness %s", c.w)
			if n := st.Size() - c.w.Checkpoint.Size; n > 0 {
				what += fmt.Sprintf(" extended by the %d entries after it", n)
			}
		}
		return refused("the database's audit state (%s) is not that of %s: the log was rewritten, or its state altered", diff, what)
	}
	if st.Size() == 0 || c.w != nil && st.Size() == c.w.Checkpoint.Size {
		return c.flushWitness()
	}
	signed, err := audit.SignCheckpoint(ctx, c.key, st.Checkpoint(c.log.origin, time.Now()))
	if err != nil {
		return err
	}
	w, err := audit.NewWitness(signed, st, []*ecdsa.PublicKey{c.pub()})
	if err != nil {
		return err
	}
	// The database first: a witness's checkpoint is always stored there
	// too, which Log.Verify relies on to notice deleted checkpoints.
	if err := c.log.st.AddCheckpoint(ctx, st.Size(), signed); err != nil {
		return err
	}
	// From here the process goes on from what it signed, file or not.
	c.setWitness(&Witness{Path: c.witness, Witness: w})
	c.unwritten = true
	return c.flushWitness()
}

// flushWitness writes the witness signed last, if writing it failed before.
func (c *Checkpointer) flushWitness() error {
	if !c.unwritten {
		return nil
	}
	if err := writeWitness(c.witness, c.w.Witness); err != nil {
		return fmt.Errorf("%w (the checkpoint of %d entries is signed and stored; writing the witness is tried again every interval)",
			err, c.w.Checkpoint.Size)
	}
	c.unwritten = false
	return nil
}

// Load reads the witness file, if there is one, before the first round:
// it refuses one that cannot be used (damaged, altered, another node's,
// or of another log), and a witness file that could not be written (its
// directory missing, or not writable), which would leave every checkpoint
// without its witness. A missing file is a first start.
func (c *Checkpointer) Load() error {
	w, err := c.log.ReadWitness(c.witness, c.pub())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	probe, perr := os.CreateTemp(filepath.Dir(c.witness), "."+filepath.Base(c.witness)+".probe*")
	if perr != nil {
		return fmt.Errorf("auditlog: the witness file %s cannot be written: %w", c.witness, perr)
	}
	probe.Close()
	os.Remove(probe.Name())
	c.setWitness(w)
	return nil
}

func (c *Checkpointer) pub() *ecdsa.PublicKey { return c.key.ECDSAPublicKey() }

// extend reads the entries after the witness, up to size (the database's
// audit state), and returns the witness's state extended with them.
func (c *Checkpointer) extend(ctx context.Context, size uint64) (audit.State, error) {
	st := c.w.State
	if size < st.Size() {
		return audit.State{}, refused("the database's log has %d entries, fewer than this node's witness %s: entries were deleted, or the database was restored from an older backup",
			size, c.w)
	}
	if size == st.Size() {
		return st, nil
	}
	err := c.log.st.AuditEntries(ctx, store.AuditFilter{AfterSeq: st.Size(), Limit: int(size - st.Size())}, st.Extend)
	var bad *audit.BadEntryError
	if errors.As(err, &bad) {
		return audit.State{}, refused("the entries after this node's witness %s do not extend it: %w", c.w, err)
	}
	return st, err
}

// verifyAll verifies the first size entries of the log from entry 1,
// against those of the checkpoints cps (the database's) that this node
// signed (other nodes' it cannot check), and returns their state.
func (c *Checkpointer) verifyAll(ctx context.Context, size uint64, cps [][]byte) (audit.State, error) {
	trusted := []*ecdsa.PublicKey{c.pub()}
	var own [][]byte
	for _, cp := range cps {
		if _, err := audit.ParseCheckpoint(cp, trusted); !errors.Is(err, audit.ErrUntrusted) {
			own = append(own, cp) // a damaged one fails NewVerifier
		}
	}
	fail := func(err error) (audit.State, error) {
		return audit.State{}, refused("this node has no witness at %s yet, so the log must verify from entry 1, and it does not: %w", c.witness, err)
	}
	v, err := audit.NewVerifier(c.log.origin, trusted, own)
	if err != nil {
		return fail(err)
	}
	if size > 0 {
		err := c.log.st.AuditEntries(ctx, store.AuditFilter{Limit: int(size)}, v.Add)
		var bad *audit.BadEntryError
		if err != nil && !errors.As(err, &bad) {
			return audit.State{}, err
		}
	}
	r, err := v.Finish()
	if err != nil {
		return fail(err)
	}
	if size == 0 {
		return v.State(), nil
	}
	level := slog.LevelInfo
	if len(own) > 0 {
		level = slog.LevelWarn // this node signed before: its witness was lost
	}
	c.logger.Log(ctx, level, "audit: no witness yet; verified the log from entry 1 before signing this node's first witnessed checkpoint",
		"witness", c.witness, "entries", r.Entries, "own_checkpoints", r.Checkpoints)
	return v.State(), nil
}

// difference names how the database's state db differs from st, or "".
func difference(db, st *audit.State) string {
	var diffs []string
	if db.Size() != st.Size() {
		diffs = append(diffs, fmt.Sprintf("%d entries, not %d", db.Size(), st.Size()))
	}
	if r, want := db.Root(), st.Root(); r != want {
		diffs = append(diffs, fmt.Sprintf("root %x…, not %x…", r[:6], want[:6]))
	}
	if h, want := db.Head().Hash, st.Head().Hash; h != want {
		diffs = append(diffs, fmt.Sprintf("head %x…, not %x…", h[:6], want[:6]))
	}
	return strings.Join(diffs, "; ")
}
