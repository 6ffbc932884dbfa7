package audit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// The entry encoding (docs/audit.md, "Entry encoding"):
//
//	"strongroom audit entry v1" || 0x00
//	u8      version = 1
//	u64     seq
//	u64     time, microseconds since the Unix epoch
//	u8<>    actor, role, tenant, action, key, outcome, reason, remote, request
//	u16<>   detail
//	u64     count
//
// It is the RFC 6962 leaf data: LeafHash = SHA-256(0x00 || encoding).
const (
	entryDomain  = "strongroom audit entry v1"
	entryVersion = 1
	chainDomain  = "strongroom audit chain v1"
	// maxEntry bounds an encoding: the prefix, 3 u64s, nine u8<> and one
	// u16<> string.
	maxEntry = len(entryDomain) + 2 + 3*8 + 9*(1+255) + 2 + MaxDetail
)

// Encode returns the canonical encoding of the entry's content: every field
// but Prev and Hash. It fails if the entry does not Validate.
func (e Entry) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.encode(), nil
}

// encode is Encode without Validate.
func (e Entry) encode() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(entryDomain))
	b.AddUint8(0)
	b.AddUint8(entryVersion)
	b.AddUint64(e.Seq)
	b.AddUint64(uint64(e.Time.UnixMicro()))
	for _, s := range []string{e.Actor, e.Role, e.Tenant, string(e.Action), e.Key, string(e.Outcome), e.Reason, e.Remote, e.Request} {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.Detail)) })
	b.AddUint64(e.Count)
	return b.BytesOrPanic() // only a string over its length prefix fails, and Validate bounds them
}

var errMalformedEntry = errors.New("audit: truncated or malformed entry encoding")

// ParseEntry decodes what Encode returns. It refuses trailing bytes and any
// entry that does not Validate, so that an encoding it accepts is the only
// encoding of its entry. Prev and Hash are left zero.
func ParseEntry(data []byte) (Entry, error) {
	if len(data) > maxEntry {
		return Entry{}, errMalformedEntry
	}
	s := cryptobyte.String(data)
	var prefix []byte
	var zero, v uint8
	if !s.ReadBytes(&prefix, len(entryDomain)) || string(prefix) != entryDomain || !s.ReadUint8(&zero) || zero != 0 {
		return Entry{}, errors.New("audit: not an audit entry encoding")
	}
	if !s.ReadUint8(&v) {
		return Entry{}, errMalformedEntry
	}
	if v != entryVersion {
		return Entry{}, fmt.Errorf("audit: entry encoding version %d is not supported (want %d)", v, entryVersion)
	}
	var e Entry
	var t uint64
	var f [9]cryptobyte.String
	var detail cryptobyte.String
	if !s.ReadUint64(&e.Seq) || !s.ReadUint64(&t) {
		return Entry{}, errMalformedEntry
	}
	for i := range f {
		if !s.ReadUint8LengthPrefixed(&f[i]) {
			return Entry{}, errMalformedEntry
		}
	}
	if !s.ReadUint16LengthPrefixed(&detail) || !s.ReadUint64(&e.Count) || !s.Empty() {
		return Entry{}, errMalformedEntry
	}
	if t == 0 || t > uint64(maxTime.UnixMicro()) {
		return Entry{}, fmt.Errorf("audit: entry time %d µs is out of range", t)
	}
	e.Time = time.UnixMicro(int64(t)).UTC()
	e.Actor, e.Role, e.Tenant, e.Action, e.Key = string(f[0]), string(f[1]), string(f[2]), Action(f[3]), string(f[4])
	e.Outcome, e.Reason, e.Remote, e.Request = Outcome(f[5]), string(f[6]), string(f[7]), string(f[8])
	e.Detail = string(detail)
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// LeafHash returns the entry's RFC 6962 leaf hash, SHA-256(0x00 ||
// e.Encode()): its leaf in the Merkle tree.
func LeafHash(e Entry) ([32]byte, error) {
	enc, err := e.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	return hashLeaf(enc), nil
}

// ChainHash links a leaf hash to the chain:
// SHA-256("strongroom audit chain v1" || 0x00 || prev || leaf).
func ChainHash(prev, leaf [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(chainDomain))
	h.Write([]byte{0})
	h.Write(prev[:])
	h.Write(leaf[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Chain makes e the entry after prev: it sets e.Seq to prev.Seq+1 and
// e.Prev to prev.Hash (whatever they held), puts e.Time in UTC truncated to
// the microsecond, and sets e.Hash. It fails if the entry does not Validate.
//
// State.Append does the same and also keeps the Merkle tree; use Chain when
// only the chain is kept.
func Chain(prev Head, e Entry) (Entry, error) {
	e, _, err := chain(prev, e)
	return e, err
}

// chain is Chain, returning the leaf hash too.
func chain(prev Head, e Entry) (Entry, [32]byte, error) {
	if prev.Seq == ^uint64(0) {
		return Entry{}, [32]byte{}, errors.New("audit: the log is full")
	}
	e.Seq, e.Prev, e.Time = prev.Seq+1, prev.Hash, normalTime(e.Time)
	leaf, err := LeafHash(e)
	if err != nil {
		return Entry{}, [32]byte{}, err
	}
	e.Hash = ChainHash(e.Prev, leaf)
	return e, leaf, nil
}
