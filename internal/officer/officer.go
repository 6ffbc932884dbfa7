// Package officer owns crypto officers' identity keys.
//
// Each crypto officer holds an Ed25519 key pair of their own. The public half
// travels as a self-signed public key file (proof of possession), which
// ceremony plans embed; the private half stays in a key file sealed under the
// officer's passphrase (scrypt, AES-256-GCM). Officers sign with a domain
// string, so that a signature made for one purpose is never valid for
// another. The byte-level formats are in docs/ceremony-formats.md.
package officer

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/armor"
)

const (
	// PublicPEMType is the PEM type of an officer's public key file.
	PublicPEMType = "STRONGROOM OFFICER PUBLIC KEY"
	// KeyPEMType is the PEM type of an officer's sealed private key file.
	KeyPEMType = "STRONGROOM OFFICER KEY"

	formatVersion = 1
	maxPEMSize    = 64 << 10
	maxNameLen    = 64
	// maxUnix bounds timestamps to something time.Unix handles sanely (year 9999).
	maxUnix = 253402300799
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidName checks an officer name: 1 to 64 ASCII letters, digits, dots,
// underscores or hyphens, starting with a letter or digit.
func ValidName(name string) error {
	if len(name) == 0 || len(name) > maxNameLen || !nameRE.MatchString(name) {
		return fmt.Errorf("officer: invalid officer name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. alice)", name)
	}
	return nil
}

// New makes a new officer identity: an Ed25519 key pair. It returns the key
// file, sealed under passphrase, and the self-signed public key file.
func New(name string, passphrase []byte, now time.Time) (keyPEM, pubPEM []byte, err error) {
	return newWithKDF(name, passphrase, now, defaultKDF)
}

func newWithKDF(name string, passphrase []byte, now time.Time, kdf kdfParams) (keyPEM, pubPEM []byte, err error) {
	if err := ValidName(name); err != nil {
		return nil, nil, err
	}
	if len(passphrase) == 0 {
		return nil, nil, errors.New("officer: empty passphrase; set STRONGROOM_OFFICER_PASSPHRASE or pass --passphrase-file")
	}
	created := now.UTC().Truncate(time.Second)
	if created.Unix() < 0 || created.Unix() > maxUnix {
		return nil, nil, fmt.Errorf("officer: creation time %s out of range", created.Format(time.RFC3339))
	}
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := rand.Read(seed); err != nil {
		return nil, nil, err
	}
	s, err := newSigner(seed, name, created)
	if err != nil {
		return nil, nil, err
	}
	defer s.Destroy()
	keyDER, err := sealKeyFile(s, passphrase, kdf)
	if err != nil {
		return nil, nil, err
	}
	return encodePEM(KeyPEMType, keyDER), s.pub.PEM(), nil
}

// signedMessage is what a signature covers: domain || 0x00 || body.
func signedMessage(domain string, body []byte) []byte {
	if domain == "" || strings.IndexByte(domain, 0) >= 0 {
		panic("officer: a signature domain must be non-empty and free of NUL bytes")
	}
	m := make([]byte, 0, len(domain)+1+len(body))
	m = append(m, domain...)
	m = append(m, 0)
	return append(m, body...)
}

// decodePEM unwraps exactly one PEM block of the given type.
func decodePEM(data []byte, typ string) ([]byte, error) {
	der, err := armor.Decode(data, typ, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("officer: %w", err)
	}
	return der, nil
}

func encodePEM(typ string, der []byte) []byte { return armor.Encode(typ, der) }

var errTruncated = errors.New("officer: truncated or malformed data")
