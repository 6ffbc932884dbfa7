package backup

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// PEMType is the PEM type of a backup file.
const PEMType = "STRONGROOM KEY BACKUP"

// MaxSize is the largest file Parse reads, in bytes. A valid file is under
// 1 KiB.
const MaxSize = 8 << 10

const (
	formatVersion = 1
	// sealedSize is the length of the sealed part: nonce, secret, tag.
	sealedSize = primitive.NonceSize + secret.Size + primitive.TagSize

	// aadDomain prefixes the associated data: aadDomain || 0x00 || header.
	aadDomain = "strongroom key backup v1"
	// The HKDF-SHA-256 info strings of the two keys derived from the
	// export key. Nothing else may derive from the export key under them.
	keyIDLabel   = "strongroom key backup export key id v1"
	fileKeyLabel = "strongroom key backup file key v1"
)

// The errors of the package, for errors.Is. None of them, nor any error
// this package returns, contains key material.
var (
	// ErrMalformed: the file is not a well-formed backup of this version.
	ErrMalformed = errors.New("backup: malformed key backup file")
	// ErrOtherKey: the file was sealed under another export key.
	ErrOtherKey = errors.New("backup: this backup was made under another export key: it belongs to another tenant, region or database")
	// ErrOpen: the file names this export key but does not decrypt. It is
	// deliberately opaque.
	ErrOpen = errors.New("backup: the backup does not open: it was altered or damaged")
)

// altered starts the reasons of a file whose bytes changed since it was
// written.
const altered = "the backup file was altered or corrupted"

// errOpen is ErrOpen with its reason.
var errOpen = reason.New(ErrOpen, altered+": it does not decrypt")

// KeyID identifies an export key without revealing anything about it: the
// first 8 bytes of HKDF-SHA-256 of the key, with an empty salt and the info
// "strongroom key backup export key id v1". exportKey must not be empty.
func KeyID(exportKey secret.Key) [8]byte {
	b, err := primitive.HKDF(exportKey.Bytes(), nil, []byte(keyIDLabel), 8)
	if err != nil {
		panic(err) // unreachable: the length is fixed and valid
	}
	return [8]byte(b)
}

// fileKey is the AES-256-GCM key of backup files: HKDF-SHA-256 of the
// export key, empty salt, info "strongroom key backup file key v1". The
// caller destroys it.
func fileKey(exportKey secret.Key) secret.Key {
	b, err := primitive.HKDF(exportKey.Bytes(), nil, []byte(fileKeyLabel), secret.Size)
	if err != nil {
		panic(err) // unreachable: the length is fixed and valid
	}
	defer clear(b)
	k, err := secret.New(b)
	if err != nil {
		panic(err) // unreachable: the length is secret.Size
	}
	return k
}

// File is a parsed backup file: its header and the sealed secret.
type File struct {
	Header Header
	// Sealed is nonce (12) || AES-256-GCM ciphertext of the secret (32) ||
	// tag (16).
	Sealed []byte
}

// Seal makes a backup file of the tenant secret s under exportKey. h.KeyID
// may be left zero; Seal sets it to KeyID(exportKey), and any other value
// is ErrOtherKey. An invalid header is an error wrapping store.ErrInvalid.
func Seal(exportKey secret.Key, h Header, s secret.Key) ([]byte, error) {
	if exportKey.IsZero() || s.IsZero() {
		return nil, errors.New("backup: empty export key or secret")
	}
	id := KeyID(exportKey)
	if h.KeyID == ([8]byte{}) {
		h.KeyID = id
	} else if h.KeyID != id {
		return nil, fmt.Errorf("%w (the header names export key %x, the key given is %x)", ErrOtherKey, h.KeyID, id)
	}
	h, err := h.Check()
	if err != nil {
		return nil, fmt.Errorf("backup: invalid header: %w", err)
	}
	kf := fileKey(exportKey)
	defer kf.Destroy()
	sealed, err := primitive.Seal(kf, s.Bytes(), aad(h))
	if err != nil {
		return nil, fmt.Errorf("backup: seal: %w", err)
	}
	return File{Header: h, Sealed: sealed}.Encode()
}

// Open checks that f was sealed under exportKey (ErrOtherKey, before any
// decryption) and decrypts the secret (ErrOpen on any alteration). It does
// not check that f belongs to the caller's tenant, nor that it describes the
// stored key being restored: see Header.Matches and docs/backup-format.md.
func Open(exportKey secret.Key, f File) (secret.Key, error) {
	if exportKey.IsZero() {
		return secret.Key{}, errors.New("backup: empty export key")
	}
	h, err := f.Header.Check()
	if err != nil {
		return secret.Key{}, reason.Wrap(ErrMalformed, err, altered+": its header is invalid")
	}
	if len(f.Sealed) != sealedSize {
		return secret.Key{}, reason.New(ErrMalformed, altered+": the sealed secret is %d bytes, not %d", len(f.Sealed), sealedSize)
	}
	if id := KeyID(exportKey); id != h.KeyID {
		return secret.Key{}, reason.Wrap(ErrOtherKey, fmt.Errorf("the file names export key %x, the key given is %x", h.KeyID, id),
			"the backup was made under another export key: it belongs to another tenant, region or database")
	}
	kf := fileKey(exportKey)
	defer kf.Destroy()
	pt, err := primitive.Open(kf, f.Sealed, aad(h))
	if err != nil {
		return secret.Key{}, errOpen
	}
	defer clear(pt)
	s, err := secret.New(pt)
	if err != nil {
		return secret.Key{}, errOpen // unreachable: the length was checked
	}
	return s, nil
}

// aad is the associated data of a checked header: aadDomain || 0x00 ||
// the binary header.
func aad(h Header) []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(aadDomain))
	b.AddUint8(0)
	h.marshal(&b)
	return b.BytesOrPanic()
}

// Encode returns the file in its canonical form: what Seal returned, and
// what Parse accepts.
func (f File) Encode() ([]byte, error) {
	h, err := f.Header.Check()
	if err != nil {
		return nil, fmt.Errorf("backup: invalid header: %w", err)
	}
	if len(f.Sealed) != sealedSize {
		return nil, fmt.Errorf("backup: the sealed secret is %d bytes, not %d", len(f.Sealed), sealedSize)
	}
	var b cryptobyte.Builder
	h.marshal(&b)
	b.AddBytes(f.Sealed)
	body, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMType, Headers: h.pemHeaders(), Bytes: body}), nil
}

// Parse reads a backup file, strictly: at most MaxSize bytes; exactly one
// PEM block of type PEMType with only whitespace around it; a known
// version; every header field valid; the sealed secret of exactly its size
// and nothing after it; and the whole block exactly as Encode writes it
// (CRLF line ends are accepted), informational PEM headers included. Every
// error wraps ErrMalformed. Parse does not decrypt: see Open.
func Parse(data []byte) (File, error) {
	if len(data) > MaxSize {
		return File{}, reason.New(ErrMalformed, "this is not a key backup file: it is larger than %d bytes", MaxSize)
	}
	text := bytes.Trim(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), " \t\r\n")
	switch n := bytes.Count(text, []byte("-----BEGIN")); {
	case n == 0:
		return File{}, reason.New(ErrMalformed, "this is not a key backup file: not a PEM file (expected %q)", "-----BEGIN "+PEMType+"-----")
	case n > 1:
		return File{}, reason.New(ErrMalformed, "the backup file holds more than one PEM block: a backup file holds exactly one")
	}
	if !bytes.HasPrefix(text, []byte("-----BEGIN ")) {
		return File{}, reason.New(ErrMalformed, "the backup file has data before its PEM block")
	}
	block, rest := pem.Decode(text)
	if block == nil {
		return File{}, reason.New(ErrMalformed, altered+": its PEM block is damaged")
	}
	if block.Type != PEMType {
		return File{}, reason.New(ErrMalformed, "this is not a key backup file: a %q PEM block, not a %q", block.Type, PEMType)
	}
	if len(rest) != 0 {
		return File{}, reason.New(ErrMalformed, "the backup file has data after its PEM block")
	}
	f, err := parseBody(block.Bytes)
	if err != nil {
		return File{}, err
	}
	if !maps.Equal(block.Headers, f.Header.pemHeaders()) {
		return File{}, reason.New(ErrMalformed, altered+": its PEM headers disagree with its authenticated header (they are informational and must not be edited)")
	}
	canon, err := f.Encode()
	if err != nil || !bytes.Equal(bytes.TrimRight(canon, "\n"), text) {
		return File{}, reason.New(ErrMalformed, altered+": its PEM block is not in the canonical form that key export writes (re-wrapped or re-encoded)")
	}
	return f, nil
}

// parseBody reads the binary body: header, then the sealed secret.
func parseBody(body []byte) (File, error) {
	s := cryptobyte.String(body)
	h, err := readHeader(&s)
	if err != nil {
		if _, ok := reason.Of(err); ok {
			return File{}, err
		}
		return File{}, reason.Wrap(ErrMalformed, err, altered+": its header does not read")
	}
	if len(s) != sealedSize {
		return File{}, reason.New(ErrMalformed, altered+": the sealed secret is %d bytes, not %d", len(s), sealedSize)
	}
	return File{Header: h, Sealed: bytes.Clone(s)}, nil
}
