package officer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/scrypt"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// The officer key file, byte by byte (docs/ceremony-formats.md):
//
//	header (bound as AES-GCM associated data):
//	  magic     "SROFFICERKEY" (12 bytes)
//	  version   u8 = 1
//	  name      u8<>
//	  public    32 bytes, the Ed25519 public key
//	  created   u64
//	  kdf       u8 = 1 (scrypt)
//	  logN, r, p  u8 each: 10..20, 1..16, 1..4
//	  salt      16 bytes
//	  check     16 bytes  HMAC-SHA256(K, "strongroom officer key passphrase check")[:16]
//	  nonce     12 bytes
//	sealed      48 bytes  AES-256-GCM(K, nonce, seed, aad = header)
//	checksum    32 bytes  SHA-256(header || sealed)
//
// K = scrypt(passphrase, salt, 2^logN, r, p, 32). The checksum tells
// accidental damage anywhere in the file apart from a wrong passphrase before
// scrypt runs; the check value tells a wrong passphrase apart from a file
// altered on purpose (checksum recomputed). Neither helps a guesser: each
// guess still costs one scrypt run.

const (
	keyMagic     = "SROFFICERKEY"
	kdfScrypt    = 1
	saltSize     = 16
	checkSize    = 16
	nonceSize    = 12
	sealedSize   = ed25519.SeedSize + 16
	checksumSize = sha256.Size
	checkMessage = "strongroom officer key passphrase check"
)

var (
	// ErrWrongPassphrase: the passphrase does not open the key file.
	ErrWrongPassphrase = errors.New("officer: wrong passphrase")
	// ErrDamaged: the key file is damaged or was altered.
	ErrDamaged = errors.New("officer: the officer key file is damaged or was altered")
)

// kdfParams are the scrypt parameters of a key file.
type kdfParams struct {
	logN, r, p uint8
}

// defaultKDF is scrypt's recommended interactive cost (N=2^15, r=8, p=1).
var defaultKDF = kdfParams{logN: 15, r: 8, p: 1}

func (k kdfParams) valid() bool {
	return k.logN >= 10 && k.logN <= 20 && k.r >= 1 && k.r <= 16 && k.p >= 1 && k.p <= 4
}

// keyFile is a parsed key file.
type keyFile struct {
	name     string
	pub      ed25519.PublicKey
	created  time.Time
	kdf      kdfParams
	salt     [saltSize]byte
	check    [checkSize]byte
	nonce    [nonceSize]byte
	sealed   [sealedSize]byte
	checksum [checksumSize]byte
}

func (k *keyFile) header() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(keyMagic))
	b.AddUint8(formatVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(k.name)) })
	b.AddBytes(k.pub)
	b.AddUint64(uint64(k.created.Unix()))
	b.AddUint8(kdfScrypt)
	b.AddBytes([]byte{k.kdf.logN, k.kdf.r, k.kdf.p})
	b.AddBytes(k.salt[:])
	b.AddBytes(k.check[:])
	b.AddBytes(k.nonce[:])
	return b.BytesOrPanic()
}

// marshal encodes the file with the checksum it holds.
func (k *keyFile) marshal() []byte {
	out := append(k.header(), k.sealed[:]...)
	return append(out, k.checksum[:]...)
}

func (k *keyFile) sum() [checksumSize]byte {
	return sha256.Sum256(append(k.header(), k.sealed[:]...))
}

func damaged(what string) error { return fmt.Errorf("%w: %s", ErrDamaged, what) }

// parseKeyFile checks the structure of a key file, not its checksum.
func parseKeyFile(der []byte) (*keyFile, error) {
	s := cryptobyte.String(der)
	var magic []byte
	if !s.ReadBytes(&magic, len(keyMagic)) || string(magic) != keyMagic {
		return nil, damaged("bad magic")
	}
	var version, kdf uint8
	if !s.ReadUint8(&version) {
		return nil, damaged("truncated")
	}
	if version != formatVersion {
		return nil, fmt.Errorf("officer: officer key file version %d is not supported (want %d)", version, formatVersion)
	}
	k := &keyFile{pub: make(ed25519.PublicKey, ed25519.PublicKeySize)}
	var name cryptobyte.String
	var created uint64
	if !s.ReadUint8LengthPrefixed(&name) || !s.CopyBytes(k.pub) || !s.ReadUint64(&created) ||
		!s.ReadUint8(&kdf) || !s.ReadUint8(&k.kdf.logN) || !s.ReadUint8(&k.kdf.r) || !s.ReadUint8(&k.kdf.p) ||
		!s.CopyBytes(k.salt[:]) || !s.CopyBytes(k.check[:]) || !s.CopyBytes(k.nonce[:]) ||
		!s.CopyBytes(k.sealed[:]) || !s.CopyBytes(k.checksum[:]) || !s.Empty() {
		return nil, damaged("truncated or malformed")
	}
	if ValidName(string(name)) != nil {
		return nil, damaged("invalid officer name")
	}
	if created > maxUnix {
		return nil, damaged("creation time out of range")
	}
	if kdf != kdfScrypt || !k.kdf.valid() {
		return nil, damaged(fmt.Sprintf("unknown key derivation %d or scrypt parameters out of range (logN=%d r=%d p=%d)", kdf, k.kdf.logN, k.kdf.r, k.kdf.p))
	}
	if checkKey(k.pub) != nil {
		return nil, damaged("not an Ed25519 public key")
	}
	k.name, k.created = string(name), time.Unix(int64(created), 0).UTC()
	return k, nil
}

// deriveKey runs scrypt and returns the file key and its check value.
func deriveKey(passphrase []byte, k *keyFile) (secret.Key, [checkSize]byte, error) {
	var check [checkSize]byte
	b, err := scrypt.Key(passphrase, k.salt[:], 1<<k.kdf.logN, int(k.kdf.r), int(k.kdf.p), secret.Size)
	if err != nil {
		return secret.Key{}, check, fmt.Errorf("officer: key derivation: %w", err)
	}
	key, _ := secret.New(b)
	clear(b)
	m := hmac.New(sha256.New, key.Bytes())
	m.Write([]byte(checkMessage))
	copy(check[:], m.Sum(nil))
	return key, check, nil
}

func newGCM(key secret.Key) cipher.AEAD {
	b, err := aes.NewCipher(key.Bytes())
	if err != nil {
		panic(err) // unreachable: 32-byte key
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// sealKeyFile seals the signer's seed under passphrase.
func sealKeyFile(s *Signer, passphrase []byte, kdf kdfParams) ([]byte, error) {
	if !kdf.valid() {
		return nil, errors.New("officer: scrypt parameters out of range")
	}
	k := &keyFile{name: s.pub.Name, pub: s.pub.Key, created: s.pub.Created, kdf: kdf}
	if _, err := rand.Read(k.salt[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(k.nonce[:]); err != nil {
		return nil, err
	}
	key, check, err := deriveKey(passphrase, k)
	if err != nil {
		return nil, err
	}
	defer key.Destroy()
	k.check = check
	s.mu.Lock()
	sealed := newGCM(key).Seal(nil, k.nonce[:], s.seed.Bytes(), k.header())
	s.mu.Unlock()
	copy(k.sealed[:], sealed)
	k.checksum = k.sum()
	return k.marshal(), nil
}

// Open opens an officer key file with its passphrase. A wrong passphrase
// gives an error wrapping ErrWrongPassphrase; a damaged or altered file one
// wrapping ErrDamaged.
func Open(keyPEM, passphrase []byte) (*Signer, error) {
	der, err := decodePEM(keyPEM, KeyPEMType)
	if err != nil {
		return nil, err
	}
	return openDER(der, passphrase)
}

func openDER(der, passphrase []byte) (*Signer, error) {
	k, err := parseKeyFile(der)
	if err != nil {
		return nil, err
	}
	if sum := k.sum(); !bytes.Equal(sum[:], k.checksum[:]) {
		return nil, damaged("checksum mismatch")
	}
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("officer: empty passphrase for the officer key of %s", k.name)
	}
	key, check, err := deriveKey(passphrase, k)
	if err != nil {
		return nil, err
	}
	defer key.Destroy()
	if subtle.ConstantTimeCompare(check[:], k.check[:]) != 1 {
		return nil, fmt.Errorf("%w for the officer key of %s", ErrWrongPassphrase, k.name)
	}
	seed, err := newGCM(key).Open(nil, k.nonce[:], k.sealed[:], k.header())
	if err != nil {
		return nil, fmt.Errorf("%w: the sealed key of %s does not authenticate", ErrDamaged, k.name)
	}
	defer clear(seed)
	s, err := newSigner(seed, k.name, k.created)
	if err != nil {
		return nil, err
	}
	if !s.pub.Key.Equal(k.pub) {
		s.Destroy()
		return nil, fmt.Errorf("%w: the sealed key of %s does not match its public key", ErrDamaged, k.name)
	}
	return s, nil
}
