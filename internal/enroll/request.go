package enroll

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// RequestPEMType is the PEM type of an enrollment request.
const RequestPEMType = "STRONGROOM ENROLLMENT REQUEST"

const requestDomain = "strongroom enrollment request v1"

// Request asks the primary to certify a regional HSM's encryption key. It is
// signed with that key (RSA-PSS), proving possession of the private half.
type Request struct {
	Region     string
	Encryption *rsa.PublicKey
	OAEPHashes []hsm.OAEPHash // what the regional HSM can decrypt, best first
	HSM        string         // free-text description of the regional HSM
	Created    time.Time
	Nonce      [16]byte

	raw []byte // the DER, for the certificate's request hash
}

// Digest is the SHA-256 of the request's binary encoding; the certificate
// names it.
func (r *Request) Digest() [32]byte { return sha256.Sum256(r.raw) }

// KeyID identifies the regional encryption key.
func (r *Request) KeyID() sign.KeyID {
	id, _ := sign.KeyIDOf(r.Encryption)
	return id
}

const maxDescription = 256

func (r *Request) body() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Region)) })
	addRSAKey(&b, r.Encryption)
	addHashes(&b, r.OAEPHashes)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.HSM)) })
	b.AddUint64(uint64(r.Created.Unix()))
	b.AddBytes(r.Nonce[:])
	return b.Bytes()
}

// signRequest signs r with the regional encryption key and returns the PEM.
func signRequest(ctx context.Context, r *Request, enc hsm.EncryptionKey) ([]byte, error) {
	if len(r.HSM) > maxDescription {
		r.HSM = r.HSM[:maxDescription]
	}
	body, err := r.body()
	if err != nil {
		return nil, err
	}
	sig, err := enc.SignPSS(ctx, sign.Message(requestDomain, body))
	if err != nil {
		return nil, fmt.Errorf("enroll: sign the request (proof of possession): %w", err)
	}
	var b cryptobyte.Builder
	b.AddBytes(body)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	der, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	r.raw = der
	return encodePEM(RequestPEMType, der), nil
}

// ParseRequest decodes an enrollment request and checks its proof of
// possession. Any altered byte makes it fail.
func ParseRequest(data []byte) (*Request, error) {
	der, err := decodePEM(data, RequestPEMType)
	if err != nil {
		return nil, err
	}
	return parseRequestDER(der)
}

func parseRequestDER(der []byte) (*Request, error) {
	s := cryptobyte.String(der)
	var version uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("enroll: request version %d is not supported (want %d)", version, formatVersion)
	}
	r := &Request{raw: append([]byte(nil), der...)}
	var err error
	if r.Region, err = readRegion(&s); err != nil {
		return nil, err
	}
	if r.Encryption, err = readRSAKey(&s); err != nil {
		return nil, err
	}
	if r.OAEPHashes, err = readHashes(&s); err != nil {
		return nil, err
	}
	var desc cryptobyte.String
	var created uint64
	if !s.ReadUint16LengthPrefixed(&desc) || len(desc) > maxDescription || !utf8.Valid(desc) ||
		!s.ReadUint64(&created) || created > MaxUnix || !s.CopyBytes(r.Nonce[:]) {
		return nil, errTruncated
	}
	r.HSM = string(desc)
	r.Created = time.Unix(int64(created), 0).UTC()
	body := der[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, errTruncated
	}
	if err := verifyPSS(r.Encryption, sign.Message(requestDomain, body), sig); err != nil {
		return nil, errors.New("enroll: the request's proof of possession does not verify: it was altered or not signed by its key")
	}
	return r, nil
}
