package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"regexp"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/sign"
)

// LabelSigning is the label of the regional HSM's checkpoint signing key
// (ECDSA P-384).
const LabelSigning = "strongroom-audit-signing"

// Checkpoint is a signed statement of a log's state: the Merkle root and the
// chain head of its first Size entries.
type Checkpoint struct {
	// Origin names the log, e.g. "strongroom/eu1" (auditlog.Origin): printable ASCII
	// without spaces, 1 to 128 bytes.
	Origin string
	Size   uint64
	// Root is the RFC 6962 Merkle root of entries 1…Size (EmptyRoot when
	// Size is 0).
	Root [32]byte
	// Head is the chain hash of entry Size (zeros when Size is 0).
	Head [32]byte
	// Time is when it was signed, to the microsecond.
	Time time.Time
	// KeyID identifies the signing key. SignCheckpoint ignores it (and
	// writes the signer's); ParseCheckpoint sets it.
	KeyID sign.KeyID
}

// ErrUntrusted: a checkpoint is signed by a key that is not among the
// trusted ones.
var ErrUntrusted = errors.New("audit: checkpoint signed by an untrusted key")

// The checkpoint encoding (docs/audit.md, "Checkpoints"):
//
//	body:
//	  u8      version = 1
//	  u8<>    origin
//	  u64     size
//	  [32]    root
//	  [32]    head
//	  u64     time, microseconds since the Unix epoch
//	  [32]    key id: SHA-256 of the signing key's PKIX DER
//	u16<>   ECDSA P-384 signature (ASN.1 DER, low S) over
//	        "strongroom audit checkpoint v1" || 0x00 || body
const (
	checkpointDomain  = "strongroom audit checkpoint v1"
	checkpointVersion = 1
	maxCheckpoint     = 1 + 1 + 128 + 8 + 32 + 32 + 8 + 32 + 2 + 256
)

var originRE = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

func validOrigin(o string) error {
	if !originRE.MatchString(o) {
		return fmt.Errorf("audit: log origin %.40q is not 1 to 128 bytes of printable ASCII without spaces (e.g. strongroom/eu1)", o)
	}
	return nil
}

// valid checks what SignCheckpoint and ParseCheckpoint require of a
// checkpoint, besides its signature.
func (c Checkpoint) valid() error {
	if err := validOrigin(c.Origin); err != nil {
		return err
	}
	if err := validTime(c.Time); err != nil {
		return err
	}
	if c.Size == 0 && (c.Root != EmptyRoot || c.Head != [32]byte{}) {
		return errors.New("audit: a checkpoint of the empty log must have the empty root and a zero head")
	}
	return nil
}

// SignCheckpoint signs c with signer, an ECDSA P-384 key (in production the
// regional HSM's hsm.SigningKey labelled LabelSigning), and returns its
// encoding. c.Time is truncated to the microsecond.
func SignCheckpoint(ctx context.Context, signer crypto.Signer, c Checkpoint) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, errors.New("audit: no checkpoint signer")
	}
	c.Time = normalTime(c.Time)
	if err := c.valid(); err != nil {
		return nil, err
	}
	id, err := sign.KeyIDOf(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint signer: %w", err)
	}
	var b cryptobyte.Builder
	b.AddUint8(checkpointVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.Origin)) })
	b.AddUint64(c.Size)
	b.AddBytes(c.Root[:])
	b.AddBytes(c.Head[:])
	b.AddUint64(uint64(c.Time.UnixMicro()))
	b.AddBytes(id[:])
	body, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	signed, _, err := sign.Append(signer, checkpointDomain, body)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return signed, nil
}

// trustedKeys indexes public keys by KeyID.
type trustedKeys map[sign.KeyID]*ecdsa.PublicKey

func newTrustedKeys(pubs []*ecdsa.PublicKey) (trustedKeys, error) {
	keys := make(trustedKeys, len(pubs))
	for i, pub := range pubs {
		if pub == nil || pub.Curve != elliptic.P384() {
			return nil, fmt.Errorf("audit: trusted key %d is not an ECDSA P-384 public key", i)
		}
		id, err := sign.KeyIDOf(pub)
		if err != nil {
			return nil, fmt.Errorf("audit: trusted key %d: %w", i, err)
		}
		keys[id] = pub
	}
	return keys, nil
}

var errMalformedCheckpoint = errors.New("audit: truncated or malformed checkpoint")

// ParseCheckpoint decodes a checkpoint made by SignCheckpoint and checks its
// signature under the trusted key it names. A checkpoint signed by any other
// key fails with an error wrapping ErrUntrusted.
func ParseCheckpoint(data []byte, trusted []*ecdsa.PublicKey) (Checkpoint, error) {
	keys, err := newTrustedKeys(trusted)
	if err != nil {
		return Checkpoint{}, err
	}
	return parseCheckpoint(data, keys)
}

func parseCheckpoint(data []byte, keys trustedKeys) (Checkpoint, error) {
	if len(data) > maxCheckpoint {
		return Checkpoint{}, errMalformedCheckpoint
	}
	s := cryptobyte.String(data)
	var v uint8
	if !s.ReadUint8(&v) {
		return Checkpoint{}, errMalformedCheckpoint
	}
	if v != checkpointVersion {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint version %d is not supported (want %d)", v, checkpointVersion)
	}
	var c Checkpoint
	var origin, sig cryptobyte.String
	var t uint64
	if !s.ReadUint8LengthPrefixed(&origin) || !s.ReadUint64(&c.Size) || !s.CopyBytes(c.Root[:]) ||
		!s.CopyBytes(c.Head[:]) || !s.ReadUint64(&t) || !s.CopyBytes(c.KeyID[:]) {
		return Checkpoint{}, errMalformedCheckpoint
	}
	body := data[:len(data)-len(s)]
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return Checkpoint{}, errMalformedCheckpoint
	}
	if t == 0 || t > uint64(maxTime.UnixMicro()) {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint time %d µs is out of range", t)
	}
	c.Origin, c.Time = string(origin), time.UnixMicro(int64(t)).UTC()
	if err := c.valid(); err != nil {
		return Checkpoint{}, err
	}
	pub, ok := keys[c.KeyID]
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w %s: trust the region's audit signing public key", ErrUntrusted, c.KeyID.Short())
	}
	if !sign.Verify(pub, checkpointDomain, body, sig) {
		return Checkpoint{}, errors.New("audit: checkpoint signature does not verify")
	}
	return c, nil
}

// VerifyInclusion checks an inclusion proof (from InclusionProof over the
// leaf hashes of entries 1…c.Size) that e is entry e.Seq of the log c signs.
func (c Checkpoint) VerifyInclusion(e Entry, proof [][32]byte) error {
	leaf, err := LeafHash(e)
	if err != nil {
		return err
	}
	if err := VerifyInclusion(e.Seq-1, c.Size, leaf, proof, c.Root); err != nil {
		return fmt.Errorf("audit: entry %d is not proven in the checkpoint of size %d: the inclusion proof does not verify", e.Seq, c.Size)
	}
	return nil
}
