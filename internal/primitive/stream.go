package primitive

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Stream is AES-256-GCM for one chunked message in the STREAM construction
// (Hoang, Reyhanitabar, Rogaway and Vizár, "Online authenticated-encryption
// and its nonce-reuse misuse-resistance", 2015): the nonce of chunk i is
//
//	u88 i (11 bytes, big-endian) || u8 last
//
// where last is 1 for the final chunk and 0 otherwise. The key must be used
// for one message only (a per-message subkey); the counter is kept here, so
// no caller ever chooses a nonce. Reordered, dropped, duplicated or
// appended chunks and a truncation at a chunk boundary all fail to open.
//
// A Stream either seals or opens; it is not safe for concurrent use.
type Stream struct {
	aead  cipher.AEAD
	n     uint64 // the next chunk's counter
	done  bool   // the last chunk was sealed or opened
	nonce [NonceSize]byte
}

// errStreamDone: a chunk after the last one, or past the counter's range.
var errStreamDone = errors.New("primitive: the stream is finished")

// NewStream returns the Stream of a one-message key.
func NewStream(key secret.Key) (*Stream, error) {
	if key.IsZero() {
		return nil, fmt.Errorf("%w: empty key", ErrParameter)
	}
	block, err := aes.NewCipher(key.Bytes())
	if err != nil {
		return nil, err
	}
	// A counter nonce, not a random one: the key is used for one message.
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Stream{aead: aead}, nil
}

// next sets the nonce of the next chunk.
func (s *Stream) next(last bool) error {
	if s.done || s.n == 1<<64-1 {
		return errStreamDone
	}
	clear(s.nonce[:3])
	binary.BigEndian.PutUint64(s.nonce[3:11], s.n)
	s.nonce[11] = 0
	if last {
		s.nonce[11] = 1
	}
	return nil
}

// Seal encrypts the next chunk, appending ciphertext || tag (TagSize bytes
// longer than plaintext) to dst; dst and plaintext may overlap exactly. The
// chunk after the last one is an error.
func (s *Stream) Seal(dst, plaintext, aad []byte, last bool) ([]byte, error) {
	if err := s.next(last); err != nil {
		return nil, err
	}
	if uint64(len(plaintext)) > maxSealPlaintext {
		return nil, fmt.Errorf("%w: chunk longer than GCM allows", ErrParameter)
	}
	out := s.aead.Seal(dst, s.nonce[:], plaintext, aad)
	s.n++
	s.done = last
	return out, nil
}

// Open checks and decrypts the next chunk (ciphertext || tag), whose
// position the caller knows only as last or not, appending the plaintext to
// dst; dst and ciphertext may overlap exactly. Every failure is ErrDecrypt,
// and the counter moves only on success.
func (s *Stream) Open(dst, ciphertext, aad []byte, last bool) ([]byte, error) {
	if err := s.next(last); err != nil {
		return nil, ErrDecrypt
	}
	out, err := s.aead.Open(dst, s.nonce[:], ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	s.n++
	s.done = last
	return out, nil
}

// Done reports whether the last chunk was sealed or opened.
func (s *Stream) Done() bool { return s.done }
