// Package auditlog is a region's audit log as a running node keeps it
// (S15, docs/audit.md): appending entries, reading them back, counting the
// data plane into per-minute aggregate entries ([Aggregate]), signing
// checkpoints with the node's HSM audit key ([Checkpointer]) and keeping
// the node's [Witness] of them outside the database, and verifying the
// whole log ([Log.Verify]).
//
// The entries' format, chain, Merkle tree and checkpoints are
// internal/audit's; the store (internal/store) keeps them, appending a
// lifecycle change's entry in the change's own transaction.
package auditlog

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// Store is where the log is kept (internal/store.Store).
type Store interface {
	AppendAudit(ctx context.Context, entries ...audit.Entry) ([]audit.Entry, error)
	AppendAuditUsage(ctx context.Context, counts []keyusage.Count, entries ...audit.Entry) ([]audit.Entry, error)
	AuditEntries(ctx context.Context, f store.AuditFilter, fn func(audit.Entry) error) error
	AuditState(ctx context.Context) (audit.State, error)
	AddCheckpoint(ctx context.Context, size uint64, signed []byte) error
	Checkpoints(ctx context.Context) ([][]byte, error)
}

// Origin names a region's audit log in its checkpoints.
func Origin(region string) string { return "strongroom/" + region }

// Log is a region's audit log.
type Log struct {
	st     Store
	origin string
	group  group // Append's and AppendUsage's group commit
}

// New returns the log of region over st.
func New(st Store, region string) *Log { return &Log{st: st, origin: Origin(region)} }

// Append appends entries, and returns once they are durable: refusals,
// failures, and successes that change nothing in the store (exports, DEK
// deliveries). Concurrent appends share a transaction (see group.go); an
// invalid entry fails its own append only.
func (l *Log) Append(ctx context.Context, entries ...audit.Entry) error {
	return l.group.append(ctx, l.st, nil, entries)
}

// AppendUsage appends entries and adds the key usage they record to the
// usage counters, in one transaction (store.AppendAuditUsage, shared with
// concurrent appends as Append's is), and returns once it committed: the
// aggregate's flush, and each DEK delivery.
func (l *Log) AppendUsage(ctx context.Context, counts []keyusage.Count, entries ...audit.Entry) error {
	return l.group.append(ctx, l.st, counts, entries)
}

// Entries calls fn with each entry that matches f, in sequence order (see
// store.Store.AuditEntries).
func (l *Log) Entries(ctx context.Context, f store.AuditFilter, fn func(audit.Entry) error) error {
	return l.st.AuditEntries(ctx, f, fn)
}

// All streams the whole log.
func (l *Log) All(ctx context.Context) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		stop := errors.New("stop")
		err := l.st.AuditEntries(ctx, store.AuditFilter{}, func(e audit.Entry) error {
			if !yield(e, nil) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			yield(audit.Entry{}, err)
		}
	}
}

// Verify checks the whole log against its stored checkpoints and the
// trusted checkpoint keys (audit.Verify), and against the node's witness w
// unless it is nil: its checkpoint is one more, kept outside the database,
// so that a rewrite of the log is caught even when the database's
// checkpoints were deleted with it. A failure that involves the witness is
// a *WitnessError: an entry its checkpoint covers is bad, or the log ends
// before it, or the database lacks that checkpoint (the Checkpointer stores
// each checkpoint in the database before it writes the witness, so
// checkpoints were deleted).
func (l *Log) Verify(ctx context.Context, trusted []*ecdsa.PublicKey, w *Witness) (audit.Report, error) {
	cps, err := l.st.Checkpoints(ctx)
	if err != nil {
		return audit.Report{}, err
	}
	stored := w == nil || slices.ContainsFunc(cps, func(cp []byte) bool { return bytes.Equal(cp, w.Signed) })
	if !stored {
		cps = append(cps, w.Signed)
	}
	r, err := audit.Verify(l.origin, trusted, cps, l.All(ctx))
	if w == nil {
		return r, err
	}
	var bad *audit.BadEntryError
	var badCP *audit.CheckpointError
	switch {
	case errors.As(err, &bad) && bad.Seq <= w.Checkpoint.Size,
		errors.As(err, &badCP) && !stored && badCP.Index == len(cps)-1:
		return r, &WitnessError{Witness: w, Err: err}
	case err != nil:
		return r, err
	case !stored:
		return r, &WitnessError{Witness: w, Err: errors.New(
			"the database does not hold the witness's checkpoint, which this node stored there before it wrote the witness: checkpoints were deleted from the database")}
	}
	return r, nil
}

// WitnessError says that the log does not match the node's witness.
type WitnessError struct {
	Witness *Witness
	Err     error
}

func (e *WitnessError) Error() string {
	return fmt.Sprintf("auditlog: the log does not match this node's witness %s: %v", e.Witness, e.Err)
}

func (e *WitnessError) Unwrap() error { return e.Err }

// SigningKey returns the regional HSM's checkpoint signing key, making it
// on first use (a node started before the audit log existed has none). When
// two nodes on one PKCS#11 token race, the loser reads the winner's key.
func SigningKey(ctx context.Context, h hsm.HSM) (hsm.SigningKey, error) {
	k, err := h.SigningKey(ctx, audit.LabelSigning)
	if errors.Is(err, hsm.ErrNotFound) {
		k, err = h.GenerateSigningKey(ctx, audit.LabelSigning)
		if errors.Is(err, hsm.ErrExists) {
			k, err = h.SigningKey(ctx, audit.LabelSigning)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("auditlog: the audit signing key %q in the regional HSM: %w", audit.LabelSigning, err)
	}
	return k, nil
}
