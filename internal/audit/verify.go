package audit

import (
	"cmp"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
)

// BadEntryError names the first entry at which verification failed.
//
// Seq is the seq the entry at Index should have, which for a missing or
// misplaced entry is not the seq found there. Which entry is named:
//
//   - an entry deleted, or moved later: the missing entry (its seq, and the
//     position where it should be). Swapping entries k and k+1 names k.
//   - an entry altered (any field, Prev and Hash included): that entry.
//   - an entry rewritten with every later hash recomputed, so that the chain
//     holds: the last entry of the first checkpoint after it, whose signed
//     root and head no longer match. The Reason gives the range of entries
//     that one of them was rewritten.
//   - entries deleted from the end: the first missing one (Index is then the
//     number of entries), when a checkpoint covers it.
type BadEntryError struct {
	Seq    uint64
	Index  uint64 // position in the order the entries were given, from 0
	Reason string
}

func (e *BadEntryError) Error() string {
	return fmt.Sprintf("audit: entry %d (position %d) %s", e.Seq, e.Index, e.Reason)
}

// CheckpointError says that a checkpoint given to NewVerifier or Verify is
// unusable: malformed, signed by an untrusted key (wrapping ErrUntrusted),
// with a bad signature, for another log, or contradicting another
// checkpoint of the same size.
type CheckpointError struct {
	Index int // position in the list given
	Err   error
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("audit: checkpoint %d: %s", e.Index, strings.TrimPrefix(e.Err.Error(), "audit: "))
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// Report says what verification covered.
type Report struct {
	// Entries is the number of entries that passed every check (before the
	// first bad one, if any).
	Entries uint64
	// Checkpoints is the number of checkpoints whose root and head matched
	// the entries.
	Checkpoints int
	// Latest is the largest checkpoint matched, nil if none.
	Latest *Checkpoint
	// Unchecked is the number of good entries after Latest: not yet
	// checkpointed, so checked against the chain only. A rewrite of them
	// that recomputes the later hashes, or their deletion, goes unnoticed
	// until a checkpoint covers them.
	Unchecked uint64
	// Head and Root are the chain head and Merkle root of the good entries.
	Head Head
	Root [32]byte
}

// Verifier checks a log entry by entry, in stored order, so that a log of
// any size can be streamed through it: NewVerifier, Add each entry, then
// Finish. Verify does this over an iterator.
//
// A Verifier is not safe for concurrent use.
type Verifier struct {
	cps      []Checkpoint // sorted by size; equal sizes have equal content
	next     int          // the first checkpoint not yet reached
	state    State
	report   Report
	err      error // the first failure, returned ever after
	finished bool
}

// NewVerifier checks the signed checkpoints of the log named origin against
// the trusted keys and returns a Verifier that will match them against the
// entries. An unusable checkpoint is a *CheckpointError.
//
// With no checkpoints, only the chain can be checked, which does not catch a
// rewrite that recomputes every hash, nor a truncation.
func NewVerifier(origin string, trusted []*ecdsa.PublicKey, checkpoints [][]byte) (*Verifier, error) {
	if err := validOrigin(origin); err != nil {
		return nil, err
	}
	keys, err := newTrustedKeys(trusted)
	if err != nil {
		return nil, err
	}
	type indexed struct {
		c Checkpoint
		i int
	}
	var cps []indexed
	for i, data := range checkpoints {
		c, err := parseCheckpoint(data, keys)
		if err != nil {
			return nil, &CheckpointError{Index: i, Err: err}
		}
		if c.Origin != origin {
			return nil, &CheckpointError{Index: i, Err: fmt.Errorf("it is for log %q, not %q", c.Origin, origin)}
		}
		cps = append(cps, indexed{c, i})
	}
	slices.SortStableFunc(cps, func(a, b indexed) int { return cmp.Compare(a.c.Size, b.c.Size) })
	v := &Verifier{}
	for k, x := range cps {
		if k > 0 && x.c.Size == cps[k-1].c.Size && (x.c.Root != cps[k-1].c.Root || x.c.Head != cps[k-1].c.Head) {
			return nil, &CheckpointError{Index: x.i, Err: fmt.Errorf(
				"it contradicts checkpoint %d of the same size %d: the signing key signed two different logs (forked log or compromised key)",
				cps[k-1].i, x.c.Size)}
		}
		v.cps = append(v.cps, x.c)
	}
	// Checkpoints of the empty log match: valid() checked their root and head.
	if err := v.reach(&v.state); err != nil {
		return nil, err
	}
	return v, nil
}

// Add checks the next entry in stored order: its Seq is one more than the
// previous entry's, its Prev is the previous entry's Hash, its fields are
// valid, its Hash recomputes from its content and Prev, and, if a checkpoint
// ends at it, the checkpoint's root and head match. The first failure is a
// *BadEntryError, returned again by every later call and by Finish.
func (v *Verifier) Add(e Entry) error {
	if v.err != nil {
		return v.err
	}
	if v.finished {
		return errors.New("audit: Verifier.Add after Finish")
	}
	next, why := v.state.follow(e)
	if why != "" {
		v.err = &BadEntryError{Seq: v.state.Size() + 1, Index: v.report.Entries, Reason: why}
		return v.err
	}
	if err := v.reach(&next); err != nil {
		return err
	}
	v.state = next
	v.report.Entries++
	return nil
}

// State returns the appender state of the entries that passed so far: a
// node that has verified a log continues it from there (State.Extend).
func (v *Verifier) State() State { return v.state }

// reach matches the checkpoints of the size of s, the state after the
// entry being added, and records them if all match.
func (v *Verifier) reach(s *State) error {
	k := v.next
	var root [32]byte
	if k < len(v.cps) && v.cps[k].Size == s.Size() {
		root = s.Root()
	}
	for ; k < len(v.cps) && v.cps[k].Size == s.Size(); k++ {
		c := v.cps[k]
		if c.Root != root || c.Head != s.head.Hash {
			var from uint64 = 1
			if v.report.Latest != nil {
				from = v.report.Latest.Size + 1
			}
			v.err = &BadEntryError{Seq: c.Size, Index: v.report.Entries, Reason: fmt.Sprintf(
				"does not match the checkpoint of size %d signed at %s: one of entries %d to %d was rewritten and the hashes after it recomputed",
				c.Size, c.Time.Format(time.RFC3339), from, c.Size)}
			return v.err
		}
	}
	for ; v.next < k; v.next++ {
		c := v.cps[v.next]
		v.report.Checkpoints++
		v.report.Latest = &c
	}
	return nil
}

// Finish ends verification. It fails with a *BadEntryError if an entry
// failed, or if a checkpoint covers entries beyond the last one given (the
// log was truncated), and returns a Report either way.
func (v *Verifier) Finish() (Report, error) {
	v.finished = true
	r := v.report
	r.Head, r.Root = v.state.head, v.state.Root()
	r.Unchecked = r.Entries
	if r.Latest != nil {
		latest := *r.Latest
		r.Latest = &latest
		r.Unchecked = r.Entries - latest.Size
	}
	if v.err == nil && v.next < len(v.cps) {
		c := v.cps[len(v.cps)-1]
		v.err = &BadEntryError{Seq: v.state.Size() + 1, Index: v.report.Entries, Reason: fmt.Sprintf(
			"is missing: the checkpoint of size %d signed at %s covers it, but the log ends at entry %d (entries deleted from the end)",
			c.Size, c.Time.Format(time.RFC3339), v.state.Size())}
	}
	return r, v.err
}

// Verify checks a whole log (see Verifier): the signed checkpoints against
// the trusted keys, then the entries in stored order against each other and
// the checkpoints. entries yields the stored entries, or an error that stops
// verification.
func Verify(origin string, trusted []*ecdsa.PublicKey, checkpoints [][]byte, entries iter.Seq2[Entry, error]) (Report, error) {
	v, err := NewVerifier(origin, trusted, checkpoints)
	if err != nil {
		return Report{}, err
	}
	return v.run(entries)
}

// run adds the entries and finishes.
func (v *Verifier) run(entries iter.Seq2[Entry, error]) (Report, error) {
	for e, err := range entries {
		if err != nil {
			r, _ := v.Finish()
			return r, fmt.Errorf("audit: read the log: %w", err)
		}
		if v.Add(e) != nil {
			break
		}
	}
	return v.Finish()
}
