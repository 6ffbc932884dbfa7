// Package release is the per-release bundle: one region's secrets of a
// release, derived by the primary HSM from the release's master secrets and
// sealed to that regional HSM, and Open, which a regional server calls to
// verify a bundle and recover its secrets inside its own HSM.
//
// Each region gets its own secrets under its own release wrapping key (RWK):
// what one regional HSM opens is useless in every other region. The
// primary's own copy of a release (the masters, sealed to the primary's
// unwrap-only key) is never opened outside the primary HSM.
//
// The byte-level format is in docs/ceremony.md.
package release

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// PEMType is the PEM type of a bundle file.
const PEMType = "STRONGROOM RELEASE BUNDLE"

const (
	bundleVersion = 2
	bundleDomain  = "strongroom release bundle v2"
	maxBundle     = 4 << 20
)

// The secrets every release carries, in bundle order.
const (
	SecretKDFSeed = "kdf-seed"
	SecretKDFSalt = "kdf-salt"
	SecretTWK     = "twk"
)

// SecretNames lists the secrets in bundle order.
var SecretNames = []string{SecretKDFSeed, SecretKDFSalt, SecretTWK}

// Kinds of ceremony (and of bundle).
const (
	KindRelease uint8 = 1 // made by the release ceremony
	KindExport  uint8 = 2 // an existing release given to a late region
)

// PrimaryCopy is the Region of the primary's own copy of a release: the
// release's master secrets under an RWK encrypted to the primary's
// unwrap-only encryption key, so that later exports work. No node opens it
// (Open refuses it); only the primary HSM unwraps it, into keys that never
// leave it.
const PrimaryCopy = ""

// WrappedSecret is one release secret wrapped under the RWK.
type WrappedSecret struct {
	Name       string
	Wrapped    []byte   // hsm.SecretKey.Wrap output (RFC 5649 under the context KEK)
	Commitment [32]byte // see CommitmentPrefix
}

// Bundle is a release sealed to one region (or the primary's copy).
type Bundle struct {
	Kind       uint8
	Release    string
	Region     string // PrimaryCopy for the primary's own copy
	Iterations uint32 // PBKDF2 iteration count of the release
	Primary    sign.KeyID
	Recipient  sign.KeyID // the HSM encryption key the RWK is encrypted to
	OAEPHash   hsm.OAEPHash
	RWK        []byte // RSA-OAEP ciphertext of the RWK
	Secrets    []WrappedSecret
	Plan       []byte   // the plan, binary
	Approvals  [][]byte // the approvals counted, binary
	Transcript [32]byte // the transcript head when the bundle was made
	Created    time.Time
	// Issued is when the release was planned: its release plan's creation
	// time, also in the bundles of an export. Releases are ordered by it.
	Issued time.Time

	body, sig []byte
}

func contextOf(domain string, parts ...string) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(domain)) })
	for _, p := range parts {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p)) })
	}
	return b.BytesOrPanic()
}

// WrapContext is the context a secret is wrapped under in a bundle:
// release, region (PrimaryCopy for the masters) and secret name,
// length-prefixed and domain-separated.
func WrapContext(releaseID, region, name string) []byte {
	return contextOf("strongroom release secret v2", releaseID, region, name)
}

// RegionContext is the derivation context (hsm.SecretKey.Derive) of a
// region's secret from the release's master secret of the same name.
func RegionContext(releaseID, region, name string) []byte {
	return contextOf("strongroom region secret v1", releaseID, region, name)
}

// CheckContext is the derivation context of a master secret's check key:
// the primary copy commits to the check key, not to the master itself, so
// that the primary can check a master it may not digest (one unwrapped
// from its copy is never exportable).
func CheckContext(releaseID, name string) []byte {
	return contextOf("strongroom release check v1", releaseID, name)
}

// CommitmentPrefix is what precedes the committed key in a commitment:
// SHA-256(CommitmentPrefix(release, region, name) || key). The key is the
// region's secret in a region's bundle, the master's check key in the
// primary copy (region PrimaryCopy).
func CommitmentPrefix(releaseID, region, name string) []byte {
	return contextOf("strongroom release commitment v2", releaseID, region, name)
}

func (b *Bundle) marshalBody() ([]byte, error) {
	if err := inRange("creation", b.Created); err != nil {
		return nil, err
	}
	if err := inRange("issue", b.Issued); err != nil {
		return nil, err
	}
	var x cryptobyte.Builder
	x.AddUint8(bundleVersion)
	x.AddUint8(b.Kind)
	x.AddUint8LengthPrefixed(func(x *cryptobyte.Builder) { x.AddBytes([]byte(b.Release)) })
	x.AddUint8LengthPrefixed(func(x *cryptobyte.Builder) { x.AddBytes([]byte(b.Region)) })
	x.AddUint32(b.Iterations)
	x.AddBytes(b.Primary[:])
	x.AddBytes(b.Recipient[:])
	x.AddUint8(uint8(b.OAEPHash))
	x.AddUint16LengthPrefixed(func(x *cryptobyte.Builder) { x.AddBytes(b.RWK) })
	x.AddUint8(uint8(len(b.Secrets)))
	for _, s := range b.Secrets {
		x.AddUint8LengthPrefixed(func(x *cryptobyte.Builder) { x.AddBytes([]byte(s.Name)) })
		x.AddUint8LengthPrefixed(func(x *cryptobyte.Builder) { x.AddBytes(s.Wrapped) })
		x.AddBytes(s.Commitment[:])
	}
	x.AddUint24LengthPrefixed(func(x *cryptobyte.Builder) { x.AddBytes(b.Plan) })
	x.AddUint24LengthPrefixed(func(x *cryptobyte.Builder) {
		for _, a := range b.Approvals {
			x.AddUint16LengthPrefixed(func(x *cryptobyte.Builder) { x.AddBytes(a) })
		}
	})
	x.AddBytes(b.Transcript[:])
	x.AddUint64(uint64(b.Created.Unix()))
	x.AddUint64(uint64(b.Issued.Unix()))
	return x.Bytes()
}

// Sign signs the bundle with the primary signing key and returns its binary
// encoding.
func (b *Bundle) Sign(signer crypto.Signer) ([]byte, error) {
	body, err := b.marshalBody()
	if err != nil {
		return nil, err
	}
	der, sig, err := sign.Append(signer, bundleDomain, body)
	if err != nil {
		return nil, fmt.Errorf("release: sign the bundle: %w", err)
	}
	b.body, b.sig = body, sig
	return der, nil
}

var errMalformed = errors.New("release: truncated or malformed bundle")

// maxUnix is 9999-12-31T23:59:59Z, the last time a bundle may carry.
const maxUnix = 253402300799

// inRange refuses a time a bundle cannot carry (before 1970 or after 9999).
func inRange(what string, t time.Time) error {
	if t.Unix() < 0 || t.Unix() > maxUnix {
		return fmt.Errorf("release: bundle %s time %s is out of range", what, t.Format(time.RFC3339))
	}
	return nil
}

// Parse decodes a binary bundle. It checks structure only; Verify checks the
// signature.
func Parse(der []byte) (*Bundle, error) {
	if len(der) > maxBundle {
		return nil, errMalformed
	}
	s := cryptobyte.String(der)
	b := &Bundle{}
	var v, hash, n uint8
	var rel, region, rwk, planDER, approvals cryptobyte.String
	if !s.ReadUint8(&v) {
		return nil, errMalformed
	}
	if v != bundleVersion {
		return nil, fmt.Errorf("release: bundle version %d is not supported (want %d; a version 1 bundle gives every region the same secrets: run a new release ceremony)", v, bundleVersion)
	}
	if !s.ReadUint8(&b.Kind) || !s.ReadUint8LengthPrefixed(&rel) || !s.ReadUint8LengthPrefixed(&region) ||
		!s.ReadUint32(&b.Iterations) || !s.CopyBytes(b.Primary[:]) || !s.CopyBytes(b.Recipient[:]) ||
		!s.ReadUint8(&hash) || !s.ReadUint16LengthPrefixed(&rwk) || !s.ReadUint8(&n) {
		return nil, errMalformed
	}
	b.Release, b.Region, b.OAEPHash, b.RWK = string(rel), string(region), hsm.OAEPHash(hash), []byte(rwk)
	if b.Kind != KindRelease && b.Kind != KindExport {
		return nil, fmt.Errorf("release: unknown bundle kind %d", b.Kind)
	}
	if err := plan.ValidRelease(b.Release); err != nil {
		return nil, err
	}
	if b.Region != PrimaryCopy {
		if err := enroll.ValidRegion(b.Region); err != nil {
			return nil, err
		}
	}
	if !b.OAEPHash.Valid() || len(b.RWK) == 0 {
		return nil, errMalformed
	}
	if int(n) != len(SecretNames) {
		return nil, fmt.Errorf("release: the bundle carries %d secrets, not %d", n, len(SecretNames))
	}
	for i := range int(n) {
		var name, wrapped cryptobyte.String
		var ws WrappedSecret
		if !s.ReadUint8LengthPrefixed(&name) || !s.ReadUint8LengthPrefixed(&wrapped) || !s.CopyBytes(ws.Commitment[:]) {
			return nil, errMalformed
		}
		ws.Name, ws.Wrapped = string(name), []byte(wrapped)
		if ws.Name != SecretNames[i] || len(ws.Wrapped) != 40 {
			return nil, fmt.Errorf("release: bundle secret %d is %q of %d bytes, want %q of 40", i, ws.Name, len(ws.Wrapped), SecretNames[i])
		}
		b.Secrets = append(b.Secrets, ws)
	}
	if !s.ReadUint24LengthPrefixed(&planDER) || !s.ReadUint24LengthPrefixed(&approvals) {
		return nil, errMalformed
	}
	b.Plan = []byte(planDER)
	for !approvals.Empty() {
		var a cryptobyte.String
		if !approvals.ReadUint16LengthPrefixed(&a) {
			return nil, errMalformed
		}
		b.Approvals = append(b.Approvals, []byte(a))
	}
	var created, issued uint64
	if !s.CopyBytes(b.Transcript[:]) || !s.ReadUint64(&created) || created > maxUnix ||
		!s.ReadUint64(&issued) || issued > maxUnix {
		return nil, errMalformed
	}
	b.Created = time.Unix(int64(created), 0).UTC()
	b.Issued = time.Unix(int64(issued), 0).UTC()
	b.body = der[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, errMalformed
	}
	b.sig = []byte(sig)
	return b, nil
}

// VerifySignature checks that the primary p signed the bundle.
func (b *Bundle) VerifySignature(p *enroll.Primary) error {
	if b.Primary != p.SigningKeyID() {
		return reason.New(ErrInvalidBundle, "bundle %s is signed by primary key %s, not the pinned %s", b.Name(), b.Primary.Short(), p.SigningKeyID().Short())
	}
	if !sign.Verify(p.Signing, bundleDomain, b.body, b.sig) {
		return reason.New(ErrInvalidBundle, "bundle %s was altered or corrupted, or signed by another primary: its signature does not verify", b.Name())
	}
	return nil
}

// Name is the bundle's conventional file name: RELEASE.REGION.bundle, or
// RELEASE.primary for the primary's copy.
func (b *Bundle) Name() string { return FileName(b.Release, b.Region) }

// FileName is the conventional file name of a bundle.
func FileName(releaseID, region string) string {
	if region == PrimaryCopy {
		return releaseID + ".primary"
	}
	return releaseID + "." + region + ".bundle"
}
