package officer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

const publicDomain = "strongroom officer public key v1"

// Public is an officer's public key file: a name bound to an Ed25519 public
// key, self-signed with that key.
type Public struct {
	Name    string
	Key     ed25519.PublicKey
	Created time.Time

	raw []byte // the binary encoding, self-signature included
}

// ID is the SHA-256 of the 32-byte Ed25519 public key.
func (p *Public) ID() [32]byte { return sha256.Sum256(p.Key) }

// ShortID is the first 8 bytes of ID in hex, for display.
func (p *Public) ShortID() string {
	id := p.ID()
	return hex.EncodeToString(id[:8])
}

// Marshal returns the binary encoding (the PEM body), for embedding in other
// files. It is nil for a Public not made by this package: only the private
// half can make the self-signature.
func (p *Public) Marshal() []byte { return bytes.Clone(p.raw) }

// PEM returns the public key file (for a Public made by this package).
func (p *Public) PEM() []byte { return encodePEM(PublicPEMType, p.raw) }

func (p *Public) body() []byte {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p.Name)) })
	b.AddBytes(p.Key)
	b.AddUint64(uint64(p.Created.Unix()))
	return b.BytesOrPanic()
}

// ParsePublic decodes an officer's public key file and checks its
// self-signature.
func ParsePublic(data []byte) (*Public, error) {
	der, err := decodePEM(data, PublicPEMType)
	if err != nil {
		return nil, err
	}
	return ParsePublicDER(der)
}

// ParsePublicDER decodes the binary form (as embedded in other files) and
// checks its self-signature.
func ParsePublicDER(der []byte) (*Public, error) {
	s := cryptobyte.String(der)
	var version uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("officer: public key version %d is not supported (want %d)", version, formatVersion)
	}
	p := &Public{raw: bytes.Clone(der)}
	var name cryptobyte.String
	key := make([]byte, ed25519.PublicKeySize)
	var created uint64
	if !s.ReadUint8LengthPrefixed(&name) || !s.CopyBytes(key) || !s.ReadUint64(&created) || created > maxUnix {
		return nil, errTruncated
	}
	if err := ValidName(string(name)); err != nil {
		return nil, err
	}
	p.Name, p.Key, p.Created = string(name), key, time.Unix(int64(created), 0).UTC()
	if err := checkKey(p.Key); err != nil {
		return nil, err
	}
	body := der[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&sig) || !s.Empty() {
		return nil, errTruncated
	}
	if !Verify(p.Key, publicDomain, body, sig) {
		return nil, fmt.Errorf("officer: the public key of %s: self-signature does not verify (altered, or not made with its private key)", p.Name)
	}
	return p, nil
}

// Verify checks an officer's signature sig over domain || 0x00 || body
// (as made by Signer.Sign). It is false for keys that are not proper
// Ed25519 public keys.
func Verify(key ed25519.PublicKey, domain string, body, sig []byte) bool {
	if checkKey(key) != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(key, signedMessage(domain, body), sig)
}

// checkKey refuses public keys of the wrong size and the points of small
// order (a signature by such a key can be made without any private key).
func checkKey(key ed25519.PublicKey) error {
	if len(key) != ed25519.PublicKeySize {
		return errors.New("officer: an Ed25519 public key must be 32 bytes")
	}
	if smallOrder(key) {
		return errors.New("officer: the Ed25519 public key is a point of small order, not a real key")
	}
	return nil
}

var (
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// smallOrderY holds the y coordinates of the 8 points of order dividing 8:
	// 1 (order 1), -1 (order 2), 0 (order 4) and ±y8 (order 8).
	smallOrderY = func() []*big.Int {
		y8 := leInt(mustHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"))
		return []*big.Int{
			big.NewInt(0),
			big.NewInt(1),
			new(big.Int).Sub(fieldP, big.NewInt(1)),
			y8,
			new(big.Int).Sub(fieldP, y8),
		}
	}()
)

// smallOrder reports whether an encoded point has small order, whatever its
// (possibly non-canonical) encoding of y.
func smallOrder(key []byte) bool {
	enc := bytes.Clone(key)
	enc[31] &= 0x7f // the sign of x
	y := leInt(enc)
	y.Mod(y, fieldP)
	for _, s := range smallOrderY {
		if y.Cmp(s) == 0 {
			return true
		}
	}
	return false
}

func leInt(le []byte) *big.Int {
	be := make([]byte, len(le))
	for i, c := range le {
		be[len(le)-1-i] = c
	}
	return new(big.Int).SetBytes(be)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
