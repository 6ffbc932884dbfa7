package enroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// PrimaryPEMType is the PEM type of primary.pub.
const PrimaryPEMType = "STRONGROOM PRIMARY PUBLIC KEYS"

const primaryDomain = "strongroom primary public keys v1"

// Primary is the content of primary.pub: the public halves of the primary
// HSM's encryption and signing key pairs. It is self-signed with both keys,
// proving that whoever made it held both private halves.
type Primary struct {
	Encryption *rsa.PublicKey
	Signing    *ecdsa.PublicKey
	OAEPHashes []hsm.OAEPHash // what the primary HSM can wrap and unwrap with
	Created    time.Time

	// certs remembers the region certificates whose signature verified,
	// for a primary parsed from its file (nil otherwise: nothing is
	// remembered).
	certs *verifiedCerts
}

// maxVerifiedCerts bounds the certificates a Primary remembers: a region
// has one at a time, and a plan names at most plan.MaxRegions.
const maxVerifiedCerts = 1024

// verifiedCerts is a set of region certificates whose signature verified
// (Certificate.Verify): every installed bundle embeds its plan, and every
// plan the same few certificates, whose P-384 signature is then checked
// once rather than once per bundle opened. Only signatures that verified
// are remembered, under a digest of the signing key's id, the signed body
// and the signature: a certificate differing in any byte, or a primary
// whose signing key was changed, is verified afresh.
type verifiedCerts struct {
	mu   sync.Mutex
	seen map[[32]byte]struct{}
}

func certDigest(issuer sign.KeyID, body, sig []byte) [32]byte {
	h := sha256.New()
	h.Write(issuer[:])
	var n [8]byte
	binary.BigEndian.PutUint32(n[:4], uint32(len(body)))
	binary.BigEndian.PutUint32(n[4:], uint32(len(sig)))
	h.Write(n[:])
	h.Write(body)
	h.Write(sig)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// verified reports whether the signature with digest d verified before.
func (v *verifiedCerts) verified(d [32]byte) bool {
	if v == nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.seen[d]
	return ok
}

// remember records that the signature with digest d verified.
func (v *verifiedCerts) remember(d [32]byte) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.seen) >= maxVerifiedCerts {
		clear(v.seen)
	}
	v.seen[d] = struct{}{}
}

// SigningKeyID identifies the primary signing key.
func (p *Primary) SigningKeyID() sign.KeyID {
	id, _ := sign.KeyIDOf(p.Signing)
	return id
}

// EncryptionKeyID identifies the primary encryption key.
func (p *Primary) EncryptionKeyID() sign.KeyID {
	id, _ := sign.KeyIDOf(p.Encryption)
	return id
}

func (p *Primary) body() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	addRSAKey(&b, p.Encryption)
	sign.AddKey(&b, p.Signing)
	addHashes(&b, p.OAEPHashes)
	b.AddUint64(uint64(p.Created.Unix()))
	return b.Bytes()
}

// signPrimary makes primary.pub with the primary HSM's keys.
func signPrimary(ctx context.Context, p *Primary, enc hsm.EncryptionKey, sig hsm.SigningKey) ([]byte, error) {
	body, err := p.body()
	if err != nil {
		return nil, err
	}
	msg := sign.Message(primaryDomain, body)
	ecSig, err := primitive.SignP384(rand.Reader, sig, msg)
	if err != nil {
		return nil, fmt.Errorf("enroll: sign primary.pub: %w", err)
	}
	pssSig, err := enc.SignPSS(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("enroll: sign primary.pub with the encryption key: %w", err)
	}
	var b cryptobyte.Builder
	b.AddBytes(body)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ecSig) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(pssSig) })
	der, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return encodePEM(PrimaryPEMType, der), nil
}

// ParsePrimary decodes primary.pub and checks both self-signatures.
func ParsePrimary(data []byte) (*Primary, error) {
	der, err := decodePEM(data, PrimaryPEMType)
	if err != nil {
		return nil, err
	}
	return parsePrimaryDER(der)
}

func parsePrimaryDER(der []byte) (*Primary, error) {
	s := cryptobyte.String(der)
	var version uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("enroll: primary.pub version %d is not supported (want %d)", version, formatVersion)
	}
	p := &Primary{certs: &verifiedCerts{seen: map[[32]byte]struct{}{}}}
	var err error
	if p.Encryption, err = readRSAKey(&s); err != nil {
		return nil, err
	}
	if p.Signing, err = sign.ReadKey(&s); err != nil {
		return nil, err
	}
	if p.OAEPHashes, err = readHashes(&s); err != nil {
		return nil, err
	}
	var created uint64
	if !s.ReadUint64(&created) || created > MaxUnix {
		return nil, errTruncated
	}
	p.Created = time.Unix(int64(created), 0).UTC()
	body := der[:len(der)-len(s)]
	var ecSig, pssSig cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&ecSig) || !s.ReadUint16LengthPrefixed(&pssSig) || !s.Empty() {
		return nil, errTruncated
	}
	msg := sign.Message(primaryDomain, body)
	if !primitive.VerifyP384(p.Signing, msg, ecSig) {
		return nil, errors.New("enroll: primary.pub: the signing key's self-signature does not verify")
	}
	if err := verifyPSS(p.Encryption, msg, pssSig); err != nil {
		return nil, errors.New("enroll: primary.pub: the encryption key's self-signature does not verify")
	}
	return p, nil
}

// MaxUnix bounds timestamps in every format to something time.Unix handles sanely (year 9999).
const MaxUnix = 253402300799

func verifyPSS(pub *rsa.PublicKey, msg, sig []byte) error {
	d := sha256.Sum256(msg)
	return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
}
