package audit

import (
	"crypto/ecdsa"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Witness is a node's own record of the last checkpoint it signed, kept
// outside the database that holds the log: the signed checkpoint, and the
// appender State at its size. A node continues its next checkpoint from
// the Witness (State.Extend over the entries appended since), so that it
// never signs a log that does not extend the one it signed before, however
// the database was rewritten. Verify, given the Witness's checkpoint as one
// more, catches a rewrite even when the database's checkpoints were
// deleted.
//
// The Witness is authenticated by its checkpoint's signature: its State
// must have the checkpoint's size, root and head.
type Witness struct {
	// Signed is the checkpoint as SignCheckpoint returned it.
	Signed []byte
	// Checkpoint is Signed, parsed.
	Checkpoint Checkpoint
	// State is the log's State at Checkpoint.Size.
	State State
}

// The witness encoding (docs/audit.md, "The witness"):
//
//	"strongroom audit witness" || 0x00
//	u8      version = 1
//	u16<>   the signed checkpoint
//	u16<>   the appender state at its size (State.MarshalBinary)
const (
	witnessMagic   = "strongroom audit witness"
	witnessVersion = 1
	maxState       = 1 + 8 + 32 + 64*32 // at most 64 subtree roots
	maxWitness     = len(witnessMagic) + 2 + 2 + maxCheckpoint + 2 + maxState
)

// NewWitness pairs signed, a checkpoint made by SignCheckpoint, with st,
// the State it was made of, and checks them as ParseWitness does.
func NewWitness(signed []byte, st State, trusted []*ecdsa.PublicKey) (*Witness, error) {
	c, err := ParseCheckpoint(signed, trusted)
	if err != nil {
		return nil, fmt.Errorf("%w (the witness's checkpoint)", err)
	}
	w := &Witness{Signed: signed, Checkpoint: c, State: st}
	if err := w.check(); err != nil {
		return nil, err
	}
	return w, nil
}

// check requires the State to be the one the checkpoint signs.
func (w *Witness) check() error {
	c, st := &w.Checkpoint, &w.State
	if st.Size() != c.Size || st.Head().Hash != c.Head || st.Root() != c.Root {
		return fmt.Errorf("audit: the witness's state (%d entries) is not the one its checkpoint (%d entries) signs: it was altered", st.Size(), c.Size)
	}
	return nil
}

// MarshalBinary encodes the Witness.
func (w *Witness) MarshalBinary() ([]byte, error) {
	st, err := w.State.MarshalBinary()
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(witnessMagic))
	b.AddUint8(0)
	b.AddUint8(witnessVersion)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(w.Signed) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(st) })
	return b.Bytes()
}

var errMalformedWitness = errors.New("audit: not a witness, or a truncated or malformed one")

// ParseWitness decodes what MarshalBinary returns and checks it: its
// checkpoint as ParseCheckpoint does (signed by one of the trusted keys,
// else an error wrapping ErrUntrusted), and its State against the
// checkpoint's size, root and head. It refuses trailing bytes.
func ParseWitness(data []byte, trusted []*ecdsa.PublicKey) (*Witness, error) {
	if len(data) > maxWitness {
		return nil, errMalformedWitness
	}
	s := cryptobyte.String(data)
	var magic []byte
	var zero, v uint8
	if !s.ReadBytes(&magic, len(witnessMagic)) || string(magic) != witnessMagic || !s.ReadUint8(&zero) || zero != 0 || !s.ReadUint8(&v) {
		return nil, errMalformedWitness
	}
	if v != witnessVersion {
		return nil, fmt.Errorf("audit: witness version %d is not supported (want %d)", v, witnessVersion)
	}
	var signed, state cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&signed) || !s.ReadUint16LengthPrefixed(&state) || !s.Empty() {
		return nil, errMalformedWitness
	}
	st, err := ParseState(state)
	if err != nil {
		return nil, fmt.Errorf("%w (the witness's state)", err)
	}
	return NewWitness(append([]byte(nil), signed...), st, trusted)
}
