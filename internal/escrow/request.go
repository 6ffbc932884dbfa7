// Package escrow is the key escrow server and its client library.
//
// Release bundles travel from the primary to the regions as files (across an
// air gap) or through a key escrow server. The escrow holds nothing secret
// but its own ECDSA P-384 signing key, kept in an HSM and certified by the
// primary signing key: bundles are sealed to their regions' HSMs already.
// A region's key broker asks the escrow for its region's bundles with a fresh
// nonce; the escrow answers with every bundle of that region in its directory,
// in a binary answer it signs, which echoes the nonce and the region. The
// client (Fetch) checks the escrow's certificate against the pinned primary,
// the answer's signature, the nonce, the region and every bundle.
//
// The byte-level formats and the protocol are in docs/escrow.md.
package escrow

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// LabelSigning is the label of the escrow's signing key in its HSM.
const LabelSigning = "strongroom-escrow-signing"

// RequestPEMType is the PEM type of an escrow enrollment request.
const RequestPEMType = "STRONGROOM ESCROW ENROLLMENT REQUEST"

const requestDomain = "strongroom escrow enrollment request v1"

// ErrInitialized: the HSM already holds an escrow signing key; nothing was
// changed.
var ErrInitialized = errors.New("escrow: the HSM already holds an escrow signing key")

// Request asks the primary to certify an escrow's signing key. It is signed
// with that key, proving possession of the private half.
type Request struct {
	Name    string // the escrow's name, same rule as region names (e.g. escrow1)
	Signing *ecdsa.PublicKey
	Created time.Time
	Nonce   [16]byte

	raw []byte // the DER, for the certificate's request hash
}

// Digest is the SHA-256 of the request's binary encoding; the certificate
// names it.
func (r *Request) Digest() [32]byte { return sha256.Sum256(r.raw) }

// KeyID identifies the escrow signing key.
func (r *Request) KeyID() sign.KeyID {
	id, _ := sign.KeyIDOf(r.Signing)
	return id
}

// ValidName checks an escrow name: the rule of region names (a lower-case
// letter, then up to 31 lower-case letters, digits or hyphens).
func ValidName(name string) error {
	if enroll.ValidRegion(name) != nil {
		return fmt.Errorf("escrow: invalid escrow name %q: use a lower-case letter followed by up to 31 lower-case letters, digits or hyphens (e.g. escrow1)", name)
	}
	return nil
}

// Init creates the escrow signing key in h and returns its enrollment
// request. It refuses, changing nothing, if h already holds an escrow signing
// key, or if it holds the primary signing key (the escrow key is used by an
// online server; the primary's keys must not be within its reach).
func Init(ctx context.Context, h hsm.HSM, name string, now time.Time) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	switch _, err := h.SigningKey(ctx, LabelSigning); {
	case err == nil:
		return nil, fmt.Errorf("%w (%s); it was left untouched", ErrInitialized, LabelSigning)
	case !errors.Is(err, hsm.ErrNotFound):
		return nil, err
	}
	switch _, err := h.SigningKey(ctx, enroll.LabelPrimarySigning); {
	case err == nil:
		return nil, fmt.Errorf("escrow: the HSM holds the primary signing key (%s); the escrow's key must live in an HSM of its own, since the escrow server is online", enroll.LabelPrimarySigning)
	case !errors.Is(err, hsm.ErrNotFound):
		return nil, err
	}
	key, err := h.GenerateSigningKey(ctx, LabelSigning)
	if errors.Is(err, hsm.ErrExists) {
		return nil, fmt.Errorf("%w (%s, created concurrently); it was left untouched", ErrInitialized, LabelSigning)
	}
	if err != nil {
		return nil, fmt.Errorf("escrow: generate the escrow signing key: %w", err)
	}
	r := &Request{
		Name:    name,
		Signing: key.ECDSAPublicKey(),
		Created: now.UTC().Truncate(time.Second),
	}
	if _, err := rand.Read(r.Nonce[:]); err != nil {
		return nil, err
	}
	return signRequest(r, key)
}

func (r *Request) body() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Name)) })
	sign.AddKey(&b, r.Signing)
	b.AddUint64(uint64(r.Created.Unix()))
	b.AddBytes(r.Nonce[:])
	return b.Bytes()
}

// signRequest signs r with the escrow signing key and returns the PEM.
func signRequest(r *Request, key hsm.SigningKey) ([]byte, error) {
	body, err := r.body()
	if err != nil {
		return nil, err
	}
	der, _, err := sign.Append(key, requestDomain, body)
	if err != nil {
		return nil, fmt.Errorf("escrow: sign the request (proof of possession): %w", err)
	}
	r.raw = der
	return encodePEM(RequestPEMType, der), nil
}

// ParseRequest decodes an escrow enrollment request and checks its proof of
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
		return nil, fmt.Errorf("escrow: request version %d is not supported (want %d)", version, formatVersion)
	}
	r := &Request{raw: append([]byte(nil), der...)}
	var name cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&name) {
		return nil, errTruncated
	}
	r.Name = string(name)
	if err := ValidName(r.Name); err != nil {
		return nil, err
	}
	var err error
	if r.Signing, err = sign.ReadKey(&s); err != nil {
		return nil, err
	}
	var created uint64
	if !s.ReadUint64(&created) || created > enroll.MaxUnix || !s.CopyBytes(r.Nonce[:]) {
		return nil, errTruncated
	}
	r.Created = time.Unix(int64(created), 0).UTC()
	body := der[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, errTruncated
	}
	if !sign.Verify(r.Signing, requestDomain, body, sig) {
		return nil, errors.New("escrow: the request's proof of possession does not verify: it was altered or not signed by its key")
	}
	return r, nil
}
