// Package transcript is the ceremony's hash-chained, signed record.
//
// Every step of a ceremony is appended as an entry; each entry's hash chains
// over the previous one, so no entry can be dropped, altered or reordered
// without changing the head. At the end the primary signing key signs the
// whole transcript. Anyone holding primary.pub can verify it offline, and
// every bundle names the head the transcript had when the bundle was made.
// The byte-level format is in docs/ceremony.md.
package transcript

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// PEMType is the PEM type of a transcript file.
const PEMType = "STRONGROOM CEREMONY TRANSCRIPT"

const (
	version   = 1
	domain    = "strongroom ceremony transcript v1"
	maxFields = 64
	maxValue  = 4096
)

// Field is one key=value detail of an entry. Values are public: handles,
// digests, names, never key material.
type Field struct {
	Key, Value string
}

// Entry is one step of a ceremony.
type Entry struct {
	Seq    uint32
	Time   time.Time // millisecond precision, UTC
	Event  string
	Fields []Field
	Hash   [32]byte // chain hash after this entry
}

// Get returns the value of a field, or "".
func (e *Entry) Get(key string) string {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

// Log is a transcript being written or read.
type Log struct {
	Release string
	Kind    uint8
	Primary [32]byte // KeyID of the primary signing key
	Entries []Entry

	head [32]byte
}

// New starts a transcript for a release.
func New(release string, kind uint8, primary [32]byte) *Log {
	l := &Log{Release: release, Kind: kind, Primary: primary}
	l.head = genesis(release, kind, primary)
	return l
}

// genesis is the chain's starting value: SHA-256 over the domain, the
// release id, the kind and the primary signing key id.
func genesis(release string, kind uint8, primary [32]byte) [32]byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(domain))
	b.AddUint8(0)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(release)) })
	b.AddUint8(kind)
	b.AddBytes(primary[:])
	return sha256.Sum256(b.BytesOrPanic())
}

// Head is the chain hash after the last entry.
func (l *Log) Head() [32]byte { return l.head }

// Append adds an entry with fields given as key, value pairs, and returns the
// new head.
func (l *Log) Append(now time.Time, event string, kv ...string) ([32]byte, error) {
	if len(kv)%2 != 0 {
		return l.head, errors.New("transcript: fields must come in key, value pairs")
	}
	e := Entry{Seq: uint32(len(l.Entries)), Time: now.UTC().Truncate(time.Millisecond), Event: event}
	for i := 0; i < len(kv); i += 2 {
		e.Fields = append(e.Fields, Field{kv[i], kv[i+1]})
	}
	enc, err := marshalEntry(&e)
	if err != nil {
		return l.head, err
	}
	l.head = chain(l.head, enc)
	e.Hash = l.head
	l.Entries = append(l.Entries, e)
	return l.head, nil
}

// chain computes SHA-256(prev || u32 length || entry).
func chain(prev [32]byte, enc []byte) [32]byte {
	h := sha256.New()
	h.Write(prev[:])
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(len(enc)>>24), byte(len(enc)>>16), byte(len(enc)>>8), byte(len(enc))
	h.Write(n[:])
	h.Write(enc)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func validText(s string, max int) bool {
	return len(s) > 0 && len(s) <= max && utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\n\r")
}

func marshalEntry(e *Entry) ([]byte, error) {
	if !validText(e.Event, 64) || len(e.Fields) > maxFields {
		return nil, fmt.Errorf("transcript: invalid event %q", e.Event)
	}
	var b cryptobyte.Builder
	b.AddUint32(e.Seq)
	b.AddUint64(uint64(e.Time.UnixMilli()))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.Event)) })
	b.AddUint8(uint8(len(e.Fields)))
	for _, f := range e.Fields {
		if !validText(f.Key, 64) || (f.Value != "" && !validText(f.Value, maxValue)) {
			return nil, fmt.Errorf("transcript: invalid field %q", f.Key)
		}
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(f.Key)) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(f.Value)) })
	}
	return b.Bytes()
}

func parseEntry(s cryptobyte.String) (Entry, error) {
	var e Entry
	var ms uint64
	var event cryptobyte.String
	var n uint8
	if !s.ReadUint32(&e.Seq) || !s.ReadUint64(&ms) || ms > 1<<53 ||
		!s.ReadUint8LengthPrefixed(&event) || !s.ReadUint8(&n) || n > maxFields {
		return e, errMalformed
	}
	e.Time = time.UnixMilli(int64(ms)).UTC()
	e.Event = string(event)
	for range n {
		var k, v cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&k) || !s.ReadUint16LengthPrefixed(&v) {
			return e, errMalformed
		}
		e.Fields = append(e.Fields, Field{string(k), string(v)})
	}
	if !s.Empty() {
		return e, errMalformed
	}
	// Re-encode to refuse anything the writer would not have produced.
	if _, err := marshalEntry(&e); err != nil {
		return e, err
	}
	return e, nil
}

var errMalformed = errors.New("transcript: truncated or malformed transcript")

// body encodes everything the signature covers.
func (l *Log) body() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(l.Release)) })
	b.AddUint8(l.Kind)
	b.AddBytes(l.Primary[:])
	b.AddUint32(uint32(len(l.Entries)))
	for i := range l.Entries {
		enc, err := marshalEntry(&l.Entries[i])
		if err != nil {
			return nil, err
		}
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(enc) })
	}
	b.AddBytes(l.head[:])
	return b.Bytes()
}

// Sign finishes the transcript: the primary signing key signs the body. It
// returns the binary file (callers PEM-armour it).
func (l *Log) Sign(signer crypto.Signer) ([]byte, error) {
	body, err := l.body()
	if err != nil {
		return nil, err
	}
	der, _, err := sign.Append(signer, domain, body)
	if err != nil {
		return nil, fmt.Errorf("transcript: sign: %w", err)
	}
	return der, nil
}

// Parse decodes a binary transcript, recomputes the chain and checks the
// signature with the primary signing key pub. Any altered, dropped, added or
// reordered byte fails.
func Parse(der []byte, pub *ecdsa.PublicKey) (*Log, error) {
	s := cryptobyte.String(der)
	var v, kind uint8
	var release cryptobyte.String
	var count uint32
	l := &Log{}
	if !s.ReadUint8(&v) || !s.ReadUint8LengthPrefixed(&release) || !s.ReadUint8(&kind) ||
		!s.CopyBytes(l.Primary[:]) || !s.ReadUint32(&count) {
		return nil, errMalformed
	}
	if v != version {
		return nil, fmt.Errorf("transcript: version %d is not supported (want %d)", v, version)
	}
	if count > uint32(len(s)) {
		return nil, errMalformed
	}
	l.Release, l.Kind = string(release), kind
	if err := plan.ValidRelease(l.Release); err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	if id, err := sign.KeyIDOf(pub); err != nil || id != l.Primary {
		return nil, errors.New("transcript: it names another primary signing key than the one given")
	}
	l.head = genesis(l.Release, kind, l.Primary)
	for i := range count {
		var enc cryptobyte.String
		if !s.ReadUint24LengthPrefixed(&enc) {
			return nil, errMalformed
		}
		e, err := parseEntry(enc)
		if err != nil {
			return nil, err
		}
		if e.Seq != i {
			return nil, fmt.Errorf("transcript: entry %d carries sequence number %d", i, e.Seq)
		}
		l.head = chain(l.head, enc)
		e.Hash = l.head
		l.Entries = append(l.Entries, e)
	}
	var head [32]byte
	if !s.CopyBytes(head[:]) {
		return nil, errMalformed
	}
	if head != l.head {
		return nil, errors.New("transcript: the recorded head does not match the chain of entries")
	}
	body := der[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, errMalformed
	}
	if !sign.Verify(pub, domain, body, sig) {
		return nil, errors.New("transcript: the primary's signature does not verify")
	}
	return l, nil
}

// Contains reports whether h is the head after some entry (or the genesis).
func (l *Log) Contains(h [32]byte) bool {
	if h == genesis(l.Release, l.Kind, l.Primary) {
		return true
	}
	for _, e := range l.Entries {
		if e.Hash == h {
			return true
		}
	}
	return false
}

// Print writes the transcript for humans.
func (l *Log) Print(w io.Writer) {
	fmt.Fprintf(w, "transcript of release %s (kind %d), primary signing key %s\n", l.Release, l.Kind, hex.EncodeToString(l.Primary[:8]))
	for _, e := range l.Entries {
		var parts []string
		for _, f := range e.Fields {
			parts = append(parts, f.Key+"="+quote(f.Value))
		}
		fmt.Fprintf(w, "%4d  %s  %-22s %s\n      chain %s\n", e.Seq, e.Time.Format("2006-01-02T15:04:05.000Z"), e.Event,
			strings.Join(parts, " "), hex.EncodeToString(e.Hash[:]))
	}
	fmt.Fprintf(w, "head  %s\n", hex.EncodeToString(l.head[:]))
}

func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
