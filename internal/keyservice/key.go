package keyservice

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/armor"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// A key file, DIR/<kid>.key, byte by byte (docs/keyservice.md):
//
//	header (bound as AES-GCM associated data):
//	  magic     "SRKSKEY" (7 bytes)
//	  version   u8 = 1
//	  kid       u8<>
//	sealed      nonce (12) || AES-256-GCM(file key, payload, aad = header) || tag (16)
//
//	payload:
//	  material  32 bytes
//	  state     u8: 1 active, 2 revoked
//	  created   u64, Unix seconds
//	  revoked   u64, Unix seconds of the last revocation, 0 while active
//	  recipient u16<>: the recipient public key, PKIX DER
//
// The kid is read from the file's header and must be the kid its name
// says; since it is associated data, a file copied under another kid's name,
// or whose header kid was rewritten, is refused.

const (
	keyMagic     = "SRKSKEY"
	keyVersion   = 1
	keySuffix    = ".key"
	maxKeyFile   = 8 << 10
	maxKidLen    = 64
	minRSABits   = 2048
	recipientPEM = "PUBLIC KEY"
	// maxUnix is the last second of year 9999: times beyond are refused.
	maxUnix = 253402300799
)

// State is a key's state.
type State uint8

const (
	// Active keys are delivered.
	Active State = 1
	// Revoked keys are answered with 410 revoked.
	Revoked State = 2
)

func (s State) String() string {
	switch s {
	case Active:
		return "active"
	case Revoked:
		return "revoked"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Info is what may be shown of a key: everything but its material.
type Info struct {
	Kid     string    `json:"kid"`
	State   State     `json:"state"`
	Created time.Time `json:"created"`
	// Revoked is the time of the last revocation; zero while active.
	Revoked time.Time `json:"revoked,omitzero"`
	// Recipient is the SHA-256 of the recipient public key's PKIX DER, hex.
	Recipient string `json:"recipient_sha256"`
}

// key is a key file, opened.
type key struct {
	Info
	material  secret.Key
	recipient *rsa.PublicKey
	der       []byte // recipient, PKIX
}

// ValidKid checks a kid: 1 to 64 characters of A-Z a-z 0-9 . _ -, not
// starting with a dot. It names a file of the directory, and appears in
// URL paths as it is.
func ValidKid(kid string) error {
	if len(kid) == 0 || len(kid) > maxKidLen || kid[0] == '.' {
		return fmt.Errorf("keyservice: invalid kid %q: 1 to %d characters, not starting with a dot", kid, maxKidLen)
	}
	for _, c := range kid {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("keyservice: invalid kid %q: only letters, digits, '.', '_' and '-'", kid)
		}
	}
	return nil
}

// ParseRecipient parses a recipient public key: one PEM block PUBLIC KEY
// (PKIX) holding an RSA key of at least 2048 bits (Strongroom's are
// RSA-4096). It returns the key and its DER.
func ParseRecipient(pemData []byte) (*rsa.PublicKey, []byte, error) {
	der, err := armor.Decode(pemData, recipientPEM, 16<<10)
	if err != nil {
		return nil, nil, fmt.Errorf("keyservice: recipient key: %w", err)
	}
	pub, err := parseRecipientDER(der)
	return pub, der, err
}

func parseRecipientDER(der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("keyservice: recipient key: %w", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("keyservice: recipient key: %T, not RSA", k)
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("keyservice: recipient key: RSA-%d, want at least RSA-%d", pub.N.BitLen(), minRSABits)
	}
	return pub, nil
}

func (d *Dir) keyPath(kid string) string { return filepath.Join(d.path, kid+keySuffix) }

func keyHeader(kid string) []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(keyMagic))
	b.AddUint8(keyVersion)
	addU8String(&b, kid)
	return b.BytesOrPanic()
}

func (d *Dir) seal(k *key) ([]byte, error) {
	payload, err := k.marshalPayload()
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	hdr := keyHeader(k.Kid)
	sealed, err := primitive.Seal(d.fileKey, payload, hdr)
	if err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	return append(hdr, sealed...), nil
}

func (k *key) marshalPayload() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes(k.material.Bytes())
	b.AddUint8(uint8(k.State))
	b.AddUint64(uint64(k.Created.Unix()))
	var revoked uint64
	if !k.Revoked.IsZero() {
		revoked = uint64(k.Revoked.Unix())
	}
	b.AddUint64(revoked)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.der) })
	payload, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	return payload, nil
}

func damaged(kid, what string) error {
	return fmt.Errorf("%w: key file %s%s: %s", ErrDamaged, kid, keySuffix, what)
}

// open reads and opens the key file of kid. No file is ErrNotFound.
func (d *Dir) open(kid string) (*key, error) {
	if err := ValidKid(kid); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	f, err := os.Open(d.keyPath(kid))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, kid)
	} else if err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("keyservice: read key file %s: %w", kid, err)
	}
	if len(data) > maxKeyFile {
		return nil, damaged(kid, "too large")
	}
	return d.parse(kid, data)
}

func (d *Dir) parse(kid string, data []byte) (*key, error) {
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	var fileKid cryptobyte.String
	if !s.ReadBytes(&magic, len(keyMagic)) || string(magic) != keyMagic || !s.ReadUint8(&version) {
		return nil, damaged(kid, "not a key file")
	}
	if version != keyVersion {
		return nil, fmt.Errorf("keyservice: key file %s: version %d is not supported (want %d)", kid, version, keyVersion)
	}
	if !s.ReadUint8LengthPrefixed(&fileKid) {
		return nil, damaged(kid, "truncated")
	}
	if string(fileKid) != kid {
		return nil, damaged(kid, fmt.Sprintf("it holds the key %q (files must not be renamed)", string(fileKid)))
	}
	hdr := data[:len(data)-len(s)]
	payload, err := primitive.Open(d.fileKey, s, hdr)
	if err != nil {
		return nil, damaged(kid, "it does not authenticate")
	}
	defer clear(payload)
	return parsePayload(kid, payload)
}

// parsePayload parses a key file's opened payload.
func parsePayload(kid string, payload []byte) (*key, error) {
	p := cryptobyte.String(payload)
	var material []byte
	var state uint8
	var created, revoked uint64
	var der cryptobyte.String
	if !p.ReadBytes(&material, secret.Size) || !p.ReadUint8(&state) || !p.ReadUint64(&created) ||
		!p.ReadUint64(&revoked) || !p.ReadUint16LengthPrefixed(&der) || !p.Empty() {
		return nil, damaged(kid, "malformed contents")
	}
	if State(state) != Active && State(state) != Revoked {
		return nil, damaged(kid, "unknown state")
	}
	if (State(state) == Revoked) != (revoked != 0) {
		return nil, damaged(kid, "revocation time and state disagree")
	}
	if created > maxUnix || revoked > maxUnix {
		return nil, damaged(kid, "time out of range")
	}
	pub, err := parseRecipientDER(der)
	if err != nil {
		return nil, damaged(kid, err.Error())
	}
	k := &key{
		Info: Info{
			Kid: kid, State: State(state), Created: time.Unix(int64(created), 0).UTC(),
			Recipient: fingerprint(der),
		},
		recipient: pub, der: slices.Clone(der),
	}
	if revoked != 0 {
		k.Revoked = time.Unix(int64(revoked), 0).UTC()
	}
	k.material, _ = secret.New(material)
	return k, nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Create makes the key kid for recipientPEM (ParseRecipient). material, if
// not nil, must be exactly 32 bytes (a key moved from elsewhere); nil draws
// 32 bytes from the operating system's generator. A kid that exists is
// refused.
func (d *Dir) Create(kid string, recipientPEM, material []byte) (Info, error) {
	if err := ValidKid(kid); err != nil {
		return Info{}, err
	}
	_, der, err := ParseRecipient(recipientPEM)
	if err != nil {
		return Info{}, err
	}
	var m secret.Key
	if material == nil {
		b := make([]byte, secret.Size)
		rand.Read(b)
		m, _ = secret.New(b)
		clear(b)
	} else if m, err = secret.New(material); err != nil {
		return Info{}, fmt.Errorf("keyservice: key material: %d bytes, want exactly %d", len(material), secret.Size)
	}
	defer m.Destroy()
	unlock, err := lock(d.path)
	if err != nil {
		return Info{}, err
	}
	defer unlock()
	if _, err := os.Lstat(d.keyPath(kid)); err == nil {
		return Info{}, fmt.Errorf("keyservice: the key %s exists already", kid)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("keyservice: %w", err)
	}
	k := &key{Info: Info{Kid: kid, State: Active, Created: d.now().UTC().Truncate(time.Second), Recipient: fingerprint(der)}, material: m, der: der}
	data, err := d.seal(k)
	if err != nil {
		return Info{}, err
	}
	if err := d.appendable(); err != nil {
		return Info{}, err
	}
	if err := writeAtomic(d.keyPath(kid), data); err != nil {
		return Info{}, err
	}
	if err := d.appendLocked(Entry{Action: ActionCreate, Kid: kid, Outcome: OutcomeOK, Reason: "recipient " + k.Recipient}); err != nil {
		return Info{}, err
	}
	return k.Info, nil
}

// Revoke revokes the key kid: fetches are answered 410 revoked from now on.
func (d *Dir) Revoke(kid string) (Info, error) { return d.setState(kid, Revoked) }

// Restore makes the revoked key kid active again.
func (d *Dir) Restore(kid string) (Info, error) { return d.setState(kid, Active) }

func (d *Dir) setState(kid string, to State) (Info, error) {
	unlock, err := lock(d.path)
	if err != nil {
		return Info{}, err
	}
	defer unlock()
	k, err := d.open(kid)
	if err != nil {
		return Info{}, err
	}
	defer k.material.Destroy()
	if k.State == to {
		return k.Info, fmt.Errorf("keyservice: the key %s is %s already", kid, to)
	}
	k.State = to
	action := ActionRestore
	if to == Revoked {
		action = ActionRevoke
		k.Revoked = d.now().UTC().Truncate(time.Second)
	} else {
		k.Revoked = time.Time{}
	}
	data, err := d.seal(k)
	if err != nil {
		return Info{}, err
	}
	if err := d.appendable(); err != nil {
		return Info{}, err
	}
	if err := writeAtomic(d.keyPath(kid), data); err != nil {
		return Info{}, err
	}
	if err := d.appendLocked(Entry{Action: action, Kid: kid, Outcome: OutcomeOK}); err != nil {
		return Info{}, err
	}
	return k.Info, nil
}

// Key returns what may be shown of the key kid.
func (d *Dir) Key(kid string) (Info, error) {
	k, err := d.open(kid)
	if err != nil {
		return Info{}, err
	}
	k.material.Destroy()
	return k.Info, nil
}

// List returns the directory's keys by kid. A key file that does not open
// is an error: nothing is listed past a damaged file.
func (d *Dir) List() ([]Info, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	var out []Info
	for _, e := range entries {
		kid, ok := strings.CutSuffix(e.Name(), keySuffix)
		if !ok || !e.Type().IsRegular() || ValidKid(kid) != nil {
			continue
		}
		info, err := d.Key(kid)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}
