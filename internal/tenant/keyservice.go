package tenant

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// How Strongroom authenticates to a tenant's key service.
const (
	AuthBearer = "bearer" // a bearer secret, kept wrapped under a release's TWK
	AuthMTLS   = "mtls"   // a TLS client certificate whose key is in the regional HSM
)

// The RSA-OAEP hashes a key service may encrypt its answers with.
const (
	OAEPSHA256 = "sha256" // RSA-OAEP-256, the default
	OAEPSHA1   = "sha1"   // RSA-OAEP (SHA-1), only if registered so
)

// Bounds of a key-service registration.
const (
	MaxKeyServiceURL = 2048
	MaxKeyServiceKID = 256
	MaxKeyServiceCA  = 64 << 10
	MaxBearer        = 4096
)

// KeyService is the registration of a tenant's key service for one
// cache-only key version (docs/cache-only.md): where to fetch the key
// material, how to trust and authenticate to the service, and whether it
// revoked the key.
type KeyService struct {
	ID      string // the registration's id (NewID)
	Tenant  string // tenant ID
	Type    string
	Version uint32
	URL     string // https://host[:port][/path]
	KID     string
	CA      []byte // the CA (or self-signed) certificate(s), PEM
	Auth    string // AuthBearer or AuthMTLS
	OAEP    string // OAEPSHA256 or OAEPSHA1
	// Release and Bearer: the bearer secret wrapped under that release's
	// TWK (WrapBearer); empty for mtls, whose client key pair is the
	// tenant's (KeyServiceCredentials).
	Release string
	Bearer  []byte
	Created time.Time
	// Revoked is when the key service answered that it revoked the key
	// (HTTP 410); zero if it did not, or the revocation was lifted.
	Revoked time.Time
}

// KeyServiceCredentials are what a tenant's key services know Strongroom
// by, one set per tenant, made on first need: the recipient key pair that
// answers are encrypted to (RSA-4096, RSA-OAEP, in the regional HSM) and
// the mTLS client key pair (ECDSA P-384, in the regional HSM) with its
// self-signed certificate.
type KeyServiceCredentials struct {
	Tenant     string
	Recipient  string // the recipient key pair's label in the regional HSM
	ClientKey  string // the client key pair's label
	ClientCert []byte // DER
	Created    time.Time
}

// KeyRef returns the key version the registration is for.
func (ks KeyService) KeyRef() KeyRef {
	return KeyRef{Tenant: ks.Tenant, Type: ks.Type, Version: ks.Version}
}

// Meta returns ks without the wrapped bearer secret.
func (ks KeyService) Meta() KeyService {
	ks.Bearer = nil
	return ks
}

// Check validates a registration's fields (not the certificates' content).
func (ks KeyService) Check() error {
	if !ValidID(ks.ID) {
		return fmt.Errorf("tenant: invalid key-service registration id %q", ks.ID)
	}
	if err := ks.KeyRef().check(); err != nil {
		return err
	}
	u, err := url.Parse(ks.URL)
	switch {
	case len(ks.URL) > MaxKeyServiceURL || err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("tenant: the key service's URL must be https://host[:port][/path], without user, query or fragment")
	case ks.KID == "" || len(ks.KID) > MaxKeyServiceKID || !printableASCII(ks.KID):
		return fmt.Errorf("tenant: the key service's kid must be 1 to %d printable ASCII characters", MaxKeyServiceKID)
	case len(ks.CA) == 0 || len(ks.CA) > MaxKeyServiceCA:
		return fmt.Errorf("tenant: the key service's CA certificate must be 1 to %d bytes of PEM", MaxKeyServiceCA)
	case ks.OAEP != OAEPSHA256 && ks.OAEP != OAEPSHA1:
		return fmt.Errorf("tenant: oaep must be %q or %q, not %q", OAEPSHA256, OAEPSHA1, ks.OAEP)
	}
	switch ks.Auth {
	case AuthBearer:
		if len(ks.Bearer) == 0 {
			return errors.New("tenant: a bearer registration has a wrapped bearer secret")
		}
		return plan.ValidRelease(ks.Release)
	case AuthMTLS:
		if len(ks.Bearer) != 0 || ks.Release != "" {
			return errors.New("tenant: an mtls registration has no bearer secret")
		}
		return nil
	}
	return fmt.Errorf("tenant: auth must be %q or %q, not %q", AuthBearer, AuthMTLS, ks.Auth)
}

func (r KeyRef) check() error {
	switch {
	case !tenantRE.MatchString(r.Tenant):
		return fmt.Errorf("tenant: invalid tenant id %q", r.Tenant)
	case !typeRE.MatchString(r.Type):
		return fmt.Errorf("tenant: invalid key type %q", r.Type)
	case r.Version == 0:
		return errors.New("tenant: key versions start at 1")
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// bearerAAD binds a wrapped bearer secret to its registration: the key
// version, the registration's id, the release, the URL and the kid.
func (ks KeyService) bearerAAD() []byte {
	var b cryptobyte.Builder
	add8 := func(s string) {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
	}
	add8("strongroom key-service bearer v1")
	add8(ks.Tenant)
	add8(ks.Type)
	b.AddUint32(ks.Version)
	add8(ks.ID)
	add8(ks.Release)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(ks.URL)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(ks.KID)) })
	return b.BytesOrPanic()
}

const bearerWrapVersion = 1

// ErrUnwrapBearer: a wrapped bearer secret does not open under this TWK
// and registration.
var ErrUnwrapBearer = errors.New("tenant: the wrapped bearer secret does not open (altered, or another registration or release)")

// WrapBearer seals a key service's bearer secret under the TWK of the
// release ks names, bound to ks (tenant, type, version, id, release, URL,
// kid) as associated data:
//
//	u8 version = 1 || u8<> release id || AES-256-GCM(TWK, bearer, aad(ks))
func WrapBearer(twk secret.Key, ks KeyService, bearer secret.Text) ([]byte, error) {
	if err := plan.ValidRelease(ks.Release); err != nil {
		return nil, err
	}
	if bearer.Len() == 0 || bearer.Len() > MaxBearer {
		return nil, fmt.Errorf("tenant: a bearer secret is 1 to %d bytes", MaxBearer)
	}
	sealed, err := primitive.Seal(twk, bearer.Bytes(), ks.bearerAAD())
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint8(bearerWrapVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(ks.Release)) })
	b.AddBytes(sealed)
	return b.Bytes()
}

// UnwrapBearer opens ks.Bearer under twk (the TWK of ks.Release).
func UnwrapBearer(twk secret.Key, ks KeyService) (secret.Text, error) {
	s := cryptobyte.String(ks.Bearer)
	var v uint8
	var rel cryptobyte.String
	if !s.ReadUint8(&v) || v != bearerWrapVersion || !s.ReadUint8LengthPrefixed(&rel) || len(s) < 12+1+16 {
		return secret.Text{}, errors.New("tenant: malformed wrapped bearer secret")
	}
	if string(rel) != ks.Release {
		return secret.Text{}, fmt.Errorf("tenant: the bearer secret is wrapped under release %s, the registration names %s", rel, ks.Release)
	}
	pt, err := primitive.Open(twk, s, ks.bearerAAD())
	if err != nil {
		return secret.Text{}, ErrUnwrapBearer
	}
	defer clear(pt)
	return secret.NewText(pt)
}
