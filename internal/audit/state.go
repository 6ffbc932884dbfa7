package audit

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// State is what an appender keeps between appends: the chain head and the
// Merkle tree's compact range. With it, appending an entry and making a
// checkpoint each cost O(log n), without rereading entries. The zero State is
// the empty log's.
//
// A store keeps it beside the entries (MarshalBinary, ParseState) and, in
// the transaction that records an event, locks it, calls Append, inserts the
// returned entry and writes the State back. Nothing trusts a stored State:
// if it were altered, the next entries' Prev or the next checkpoint would
// not match, and Verify would say so.
type State struct {
	head Head
	tree Tree
}

// Size is the number of entries, the Seq of the last one.
func (s *State) Size() uint64 { return s.head.Seq }

// Head returns the chain head.
func (s *State) Head() Head { return s.head }

// Root returns the Merkle root of all the entries.
func (s *State) Root() [32]byte { return s.tree.Root() }

// Append chains e after the last entry (as Chain does: it sets Seq, Prev and
// Hash and normalises Time), adds it to the tree and returns it. On error the
// State is unchanged.
func (s *State) Append(e Entry) (Entry, error) {
	e, leaf, err := chain(s.head, e)
	if err != nil {
		return Entry{}, err
	}
	s.tree.Append(leaf)
	s.head = e.Head()
	return e, nil
}

// Extend checks that e, an entry as stored (with its Seq, Prev and Hash),
// is the next one, as Verifier.Add does: its Seq is one more than the
// size, its Prev is the head's Hash, its fields are valid and its Hash
// recomputes from its content and Prev. It then adds e. A failure is a
// *BadEntryError (its Index is e's position in a log stored from entry 1)
// and leaves the State unchanged.
//
// A node that holds the State of a log it has checked (a Witness) checks
// the entries appended since, this way, without trusting the rest.
func (s *State) Extend(e Entry) error {
	next, why := s.follow(e)
	if why != "" {
		return &BadEntryError{Seq: s.Size() + 1, Index: s.Size(), Reason: why}
	}
	*s = next
	return nil
}

// follow returns the State with e added if e, as stored, comes next;
// otherwise the reason it does not. s is unchanged (Tree copies are
// independent).
func (s *State) follow(e Entry) (State, string) {
	want := s.head.Seq + 1
	switch {
	case e.Seq != want:
		return State{}, fmt.Sprintf("is missing or out of place: seq %d is where it should be (entries deleted, inserted or reordered, or the seq altered)", e.Seq)
	case e.Prev != s.head.Hash && want == 1:
		return State{}, "does not start the chain: its prev is not all zeros (entries deleted before it, or the prev altered)"
	case e.Prev != s.head.Hash:
		return State{}, fmt.Sprintf("does not link to entry %d: its prev is not that entry's hash (entries deleted, inserted or reordered, or the prev altered)", want-1)
	}
	if err := e.Validate(); err != nil {
		return State{}, "is invalid (altered?): " + strings.TrimPrefix(err.Error(), "audit: ")
	}
	leaf := hashLeaf(e.encode())
	if ChainHash(e.Prev, leaf) != e.Hash {
		return State{}, "does not match its hash: its content or hash was altered"
	}
	next := *s
	next.tree.Append(leaf)
	next.head = e.Head()
	return next, ""
}

// Checkpoint returns the checkpoint of the log as it stands, for SignCheckpoint.
// The caller must read the State in the same transaction as the entries it
// covers.
func (s *State) Checkpoint(origin string, now time.Time) Checkpoint {
	return Checkpoint{Origin: origin, Size: s.head.Seq, Root: s.tree.Root(), Head: s.head.Hash, Time: normalTime(now)}
}

// The state encoding (docs/audit.md, "Appender state"):
//
//	u8      version = 1
//	u64     size
//	[32]    chain hash of entry size (zeros when size is 0)
//	[32]…   the compact range: one hash per bit set in size, largest subtree first
const stateVersion = 1

// MarshalBinary encodes the State.
func (s *State) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(stateVersion)
	b.AddUint64(s.head.Seq)
	b.AddBytes(s.head.Hash[:])
	for _, p := range s.tree.peaks {
		b.AddBytes(p[:])
	}
	return b.Bytes()
}

var errMalformedState = errors.New("audit: truncated or malformed appender state")

// ParseState decodes what MarshalBinary returns.
func ParseState(data []byte) (State, error) {
	s := cryptobyte.String(data)
	var v uint8
	var st State
	if !s.ReadUint8(&v) {
		return State{}, errMalformedState
	}
	if v != stateVersion {
		return State{}, fmt.Errorf("audit: appender state version %d is not supported (want %d)", v, stateVersion)
	}
	if !s.ReadUint64(&st.head.Seq) || !s.CopyBytes(st.head.Hash[:]) {
		return State{}, errMalformedState
	}
	n := bits.OnesCount64(st.head.Seq)
	if len(s) != 32*n || (st.head.Seq == 0 && st.head.Hash != [32]byte{}) {
		return State{}, errMalformedState
	}
	st.tree = Tree{size: st.head.Seq, peaks: make([][32]byte, n)}
	for i := range n {
		s.CopyBytes(st.tree.peaks[i][:])
	}
	return st, nil
}
