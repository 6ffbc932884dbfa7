package officer

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Signer is an opened officer key. Its seed redacts itself when printed.
type Signer struct {
	pub *Public

	mu        sync.Mutex
	seed      secret.Key // the 32-byte Ed25519 seed
	destroyed bool
}

// newSigner makes a Signer from a seed (copied) and the identity it holds,
// with the self-signed public key file.
func newSigner(seed []byte, name string, created time.Time) (*Signer, error) {
	k, err := secret.New(seed)
	if err != nil {
		return nil, fmt.Errorf("officer: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(k.Bytes())
	defer clear(priv)
	s := &Signer{seed: k, pub: &Public{
		Name:    name,
		Key:     ed25519.PublicKey(append([]byte(nil), priv[ed25519.SeedSize:]...)),
		Created: created,
	}}
	body := s.pub.body()
	var b cryptobyte.Builder
	b.AddBytes(body)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.Sign(publicDomain, body)) })
	s.pub.raw = b.BytesOrPanic()
	return s, nil
}

// Public returns the officer's public key file, as New wrote it.
func (s *Signer) Public() *Public {
	p := *s.pub
	p.Key = append(ed25519.PublicKey(nil), s.pub.Key...)
	p.raw = append([]byte(nil), s.pub.raw...)
	return &p
}

// Sign signs domain || 0x00 || body with Ed25519. domain names what is
// signed and its version, e.g. "strongroom ceremony approval v1". Sign panics
// after Destroy.
func (s *Signer) Sign(domain string, body []byte) []byte {
	msg := signedMessage(domain, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		panic("officer: Sign after Destroy")
	}
	priv := ed25519.NewKeyFromSeed(s.seed.Bytes())
	defer clear(priv)
	return ed25519.Sign(priv, msg)
}

// Destroy overwrites the seed. The Signer cannot sign afterwards.
func (s *Signer) Destroy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seed.Destroy()
	s.destroyed = true
}
