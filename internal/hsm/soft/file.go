package soft

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/scrypt"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// The soft HSM file, byte by byte (docs/formats.md, "Soft HSM file"):
//
//	magic     "SRSOFTHSM" (9 bytes)
//	version   u8 = 1
//	kdf       u8 = 1 (scrypt)
//	logN      u8   scrypt cost N = 2^logN, 10..20
//	r         u8   1..16
//	p         u8   1..4
//	salt      16 bytes
//	check     16 bytes  HMAC-SHA256(K, "strongroom soft-hsm passphrase check")[:16]
//	nonce     12 bytes
//	sealed    AES-256-GCM(K, nonce, payload, aad = all bytes above)
//
// K = scrypt(passphrase, salt, N, r, p, 32). The check value tells a wrong
// passphrase apart from a damaged file; it costs an attacker the same scrypt
// run per guess as the ciphertext itself.
//
// payload:
//
//	version   u8 = 1
//	count     u32
//	count × entry:
//	  kind    u8 (1 RSA encryption key, 2 ECDSA signing key, 3 AES secret key)
//	  flags   u8 (bit 0: exportable, kind 3; bit 1: unwrap-only, kind 1;
//	               bit 2: derivable, kind 3)
//	  label   u16-length-prefixed, 1..255 bytes of printable ASCII (0x21..0x7e)
//	  key     u24-length-prefixed: PKCS#8 DER (kinds 1, 2) or 32 raw bytes (kind 3)

const (
	magic        = "SRSOFTHSM"
	fileVersion  = 1
	kdfScrypt    = 1
	saltSize     = 16
	checkSize    = 16
	nonceSize    = 12
	headerSize   = len(magic) + 5 + saltSize + checkSize + nonceSize
	maxFileSize  = 16 << 20
	checkMessage = "strongroom soft-hsm passphrase check"

	kindEncryption byte = 1
	kindSigning    byte = 2
	kindSecret     byte = 3

	flagExportable byte = 1
	flagUnwrapOnly byte = 2
	flagDerivable  byte = 4
)

// kdfParams are the scrypt parameters of a file.
type kdfParams struct {
	logN, r, p uint8
}

// defaultKDF is scrypt's recommended interactive cost (N=2^15, r=8, p=1).
var defaultKDF = kdfParams{logN: 15, r: 8, p: 1}

func (k kdfParams) valid() bool {
	return k.logN >= 10 && k.logN <= 20 && k.r >= 1 && k.r <= 16 && k.p >= 1 && k.p <= 4
}

var (
	errWrongPassphrase = errors.New("soft: wrong passphrase")
	errCorrupt         = errors.New("soft: the file is damaged or was altered")
)

// entry is one stored key.
type entry struct {
	kind       byte
	exportable bool // kind 3
	unwrapOnly bool // kind 1: hsm.UseUnwrapOnly
	derivable  bool // kind 3
	label      string
	der        []byte // PKCS#8 for kinds 1 and 2; raw AES key for kind 3
}

// header is the plaintext head of a file.
type header struct {
	kdf   kdfParams
	salt  [saltSize]byte
	check [checkSize]byte
}

func (h *header) marshal(nonce []byte) []byte {
	b := make([]byte, 0, headerSize)
	b = append(b, magic...)
	b = append(b, fileVersion, kdfScrypt, h.kdf.logN, h.kdf.r, h.kdf.p)
	b = append(b, h.salt[:]...)
	b = append(b, h.check[:]...)
	return append(b, nonce...)
}

// parseHeader reads the header; it checks structure only.
func parseHeader(data []byte) (header, []byte, []byte, error) {
	var h header
	if len(data) < len(magic) || string(data[:len(magic)]) != magic {
		return h, nil, nil, errors.New("soft: not a Strongroom soft HSM file (bad magic)")
	}
	if len(data) < headerSize+16 {
		return h, nil, nil, errCorrupt
	}
	if data[len(magic)] != fileVersion {
		return h, nil, nil, fmt.Errorf("soft: unsupported file version %d (this build reads version %d)", data[len(magic)], fileVersion)
	}
	p := data[len(magic)+1:]
	if p[0] != kdfScrypt {
		return h, nil, nil, fmt.Errorf("soft: unsupported key derivation %d", p[0])
	}
	h.kdf = kdfParams{logN: p[1], r: p[2], p: p[3]}
	if !h.kdf.valid() {
		return h, nil, nil, fmt.Errorf("soft: scrypt parameters out of range (logN=%d r=%d p=%d)", h.kdf.logN, h.kdf.r, h.kdf.p)
	}
	p = p[4:]
	copy(h.salt[:], p[:saltSize])
	copy(h.check[:], p[saltSize:saltSize+checkSize])
	nonce := p[saltSize+checkSize : saltSize+checkSize+nonceSize]
	return h, nonce, data[headerSize:], nil
}

// deriveKey runs scrypt and returns the file key and its check value.
func deriveKey(passphrase []byte, h *header) (secret.Key, [checkSize]byte, error) {
	var check [checkSize]byte
	k, err := scrypt.Key(passphrase, h.salt[:], 1<<h.kdf.logN, int(h.kdf.r), int(h.kdf.p), secret.Size)
	if err != nil {
		return secret.Key{}, check, fmt.Errorf("soft: key derivation: %w", err)
	}
	key, _ := secret.New(k)
	clear(k)
	m := hmac.New(sha256.New, key.Bytes())
	m.Write([]byte(checkMessage))
	copy(check[:], m.Sum(nil))
	return key, check, nil
}

// open decrypts a file with an already derived key.
func open(key secret.Key, data []byte) ([]entry, error) {
	_, nonce, sealed, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	aead := newGCM(key)
	payload, err := aead.Open(nil, nonce, sealed, data[:headerSize])
	if err != nil {
		return nil, errCorrupt
	}
	defer clear(payload)
	return parsePayload(payload)
}

// seal encrypts entries into a complete file under key with a fresh nonce.
func seal(key secret.Key, h *header, nonce []byte, entries []entry) ([]byte, error) {
	payload, err := marshalPayload(entries)
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	hdr := h.marshal(nonce)
	return newGCM(key).Seal(hdr, nonce, payload, hdr), nil
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

func marshalPayload(entries []entry) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(1)
	b.AddUint32(uint32(len(entries)))
	for _, e := range entries {
		var flags byte
		if e.exportable {
			flags |= flagExportable
		}
		if e.unwrapOnly {
			flags |= flagUnwrapOnly
		}
		if e.derivable {
			flags |= flagDerivable
		}
		b.AddUint8(e.kind)
		b.AddUint8(flags)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.label)) })
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.der) })
	}
	return b.Bytes()
}

func parsePayload(p []byte) ([]entry, error) {
	s := cryptobyte.String(p)
	var version uint8
	var count uint32
	if !s.ReadUint8(&version) || version != 1 || !s.ReadUint32(&count) {
		return nil, errCorrupt
	}
	if count > uint32(len(s)) { // every entry takes several bytes
		return nil, errCorrupt
	}
	entries := make([]entry, 0, count)
	seen := make(map[[2]string]bool)
	for range count {
		var e entry
		var flags uint8
		var label, der cryptobyte.String
		if !s.ReadUint8(&e.kind) || !s.ReadUint8(&flags) ||
			!s.ReadUint16LengthPrefixed(&label) || !s.ReadUint24LengthPrefixed(&der) {
			return nil, errCorrupt
		}
		allowed := map[byte]byte{kindEncryption: flagUnwrapOnly, kindSecret: flagExportable | flagDerivable}[e.kind]
		if e.kind < kindEncryption || e.kind > kindSecret || flags&^allowed != 0 ||
			validLabel(string(label)) != nil || (e.kind == kindSecret && len(der) != secret.Size) {
			return nil, errCorrupt
		}
		id := [2]string{string(e.kind), string(label)}
		if seen[id] {
			return nil, errCorrupt
		}
		seen[id] = true
		e.exportable = flags&flagExportable != 0
		e.unwrapOnly = flags&flagUnwrapOnly != 0
		e.derivable = flags&flagDerivable != 0
		e.label = string(label)
		e.der = append([]byte(nil), der...)
		entries = append(entries, e)
	}
	if !s.Empty() {
		return nil, errCorrupt
	}
	return entries, nil
}

// validLabel checks a persistent key label: 1..255 bytes of printable ASCII.
func validLabel(l string) error {
	if len(l) == 0 || len(l) > 255 {
		return errors.New("soft: a key label must be 1 to 255 bytes")
	}
	for i := 0; i < len(l); i++ {
		if l[i] < 0x21 || l[i] > 0x7e {
			return fmt.Errorf("soft: key label %q has a character outside printable ASCII", l)
		}
	}
	return nil
}
