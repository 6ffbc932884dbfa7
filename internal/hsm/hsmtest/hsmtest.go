// Package hsmtest is the conformance suite every HSM backend passes.
//
// A backend's test calls Run with a function that opens a fresh, empty HSM.
// The suite checks behaviour through the hsm interfaces only, and cross-checks
// every operation against a software reference (the standard library and
// internal/keywrap), so that two backends that pass it produce and accept the
// same bytes.
package hsmtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keywrap"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Run runs the conformance suite. open must return a fresh, empty HSM; Run
// closes it. RSA key generation is slow in some backends, so the suite
// generates one encryption key pair and shares it between subtests.
func Run(t *testing.T, open func(t *testing.T) hsm.HSM) {
	h := open(t)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	s := &suite{h: h, ctx: context.Background()}

	t.Run("Info", s.testInfo)
	t.Run("Random", s.testRandom)
	t.Run("SigningKey", s.testSigningKey)
	t.Run("LabelsAreUniqueAndFound", s.testLabels)

	ek, err := h.GenerateEncryptionKey(s.ctx, "hsmtest-enc", hsm.UseDecrypt)
	if err != nil {
		t.Fatalf("GenerateEncryptionKey() error = %v", err)
	}
	s.ek = ek
	t.Run("EncryptionKey", s.testEncryptionKey)
	t.Run("EncryptionKeyDecrypt", s.testDecrypt)
	t.Run("EncryptionKeyUnwrap", s.testRSAUnwrap)
	t.Run("EncryptionKeySignPSS", s.testSignPSS)
	t.Run("EncryptionKeySignPSSDigest", s.testSignPSSDigest)
	t.Run("SecretKeySealOpen", s.testSealOpen)
	t.Run("SecretKeyWrapMatchesReference", s.testWrapReference)
	t.Run("SecretKeyWrapBindsContext", s.testWrapContext)
	t.Run("SecretKeyWrapRSA", s.testWrapRSA)
	t.Run("SecretKeyDigest", s.testDigest)
	t.Run("NotExportable", s.testNotExportable)
	t.Run("SecretKeyDerive", s.testDerive)
	t.Run("EphemeralKeys", s.testEphemeral)
	t.Run("Destroy", s.testDestroy)
	t.Run("Concurrent", s.testConcurrent)

	uk, err := h.GenerateEncryptionKey(s.ctx, "hsmtest-unwrap-only", hsm.UseUnwrapOnly)
	if err != nil {
		t.Fatalf("GenerateEncryptionKey(unwrap-only) error = %v", err)
	}
	t.Run("UnwrapOnlyKey", func(t *testing.T) { s.testUnwrapOnly(t, uk) })
	// Last: it destroys the shared encryption key pair.
	t.Run("EncryptionKeyDestroy", s.testDestroyEncryptionKey)
}

type suite struct {
	h   hsm.HSM
	ctx context.Context
	ek  hsm.EncryptionKey
}

func (s *suite) testInfo(t *testing.T) {
	info := s.h.Info()
	if info.Backend == "" {
		t.Error("Info().Backend is empty")
	}
	if len(info.OAEPHashes) == 0 {
		t.Error("Info().OAEPHashes is empty: an HSM must support at least one OAEP hash")
	}
	for _, oh := range info.OAEPHashes {
		if !oh.Valid() {
			t.Errorf("Info().OAEPHashes contains unknown value %v", oh)
		}
	}
}

func (s *suite) testRandom(t *testing.T) {
	a, err := s.h.Random(s.ctx, 32)
	if err != nil {
		t.Fatalf("Random(32) error = %v", err)
	}
	b, err := s.h.Random(s.ctx, 32)
	if err != nil {
		t.Fatalf("Random(32) error = %v", err)
	}
	if len(a) != 32 || len(b) != 32 {
		t.Fatalf("Random(32) lengths = %d, %d, want 32", len(a), len(b))
	}
	if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
		t.Errorf("Random(32) returned repeated or zero output %x", a)
	}
	if _, err := s.h.Random(s.ctx, -1); err == nil {
		t.Error("Random(-1) error = nil, want an error")
	}
}

func (s *suite) testSigningKey(t *testing.T) {
	sk, err := s.h.GenerateSigningKey(s.ctx, "hsmtest-sign")
	if err != nil {
		t.Fatalf("GenerateSigningKey() error = %v", err)
	}
	if sk.Label() != "hsmtest-sign" {
		t.Errorf("Label() = %q, want %q", sk.Label(), "hsmtest-sign")
	}
	pub, ok := sk.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		t.Fatalf("Public() = %T, want a P-384 *ecdsa.PublicKey", sk.Public())
	}
	if !pub.Equal(sk.ECDSAPublicKey()) {
		t.Error("Public() and ECDSAPublicKey() differ")
	}
	msg := []byte("strongroom conformance")
	digest := sha512.Sum384(msg)
	sig, err := sk.Sign(rand.Reader, digest[:], crypto.SHA384)
	if err != nil {
		t.Fatalf("Sign() error = %v", err)
	}
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Error("Sign() produced a signature that ecdsa.VerifyASN1 rejects")
	}
	other := sha512.Sum384([]byte("other"))
	if ecdsa.VerifyASN1(pub, other[:], sig) {
		t.Error("signature verifies for another message")
	}
	if _, err := sk.Sign(rand.Reader, digest[:20], crypto.SHA384); err == nil {
		t.Error("Sign(20-byte digest, SHA384) error = nil, want an error")
	}

	found, err := s.h.SigningKey(s.ctx, "hsmtest-sign")
	if err != nil {
		t.Fatalf("SigningKey(label) error = %v", err)
	}
	if !found.ECDSAPublicKey().Equal(pub) {
		t.Error("SigningKey(label) found a different key")
	}
	sig2, err := found.Sign(rand.Reader, digest[:], crypto.SHA384)
	if err != nil || !ecdsa.VerifyASN1(pub, digest[:], sig2) {
		t.Errorf("found key: Sign() = %v, or signature does not verify", err)
	}
}

func (s *suite) testLabels(t *testing.T) {
	first, err := s.h.GenerateSigningKey(s.ctx, "hsmtest-dup")
	if err != nil {
		t.Fatalf("GenerateSigningKey() error = %v", err)
	}
	if _, err := s.h.GenerateSigningKey(s.ctx, "hsmtest-dup"); !errors.Is(err, hsm.ErrExists) {
		t.Errorf("GenerateSigningKey(existing label) error = %v, want ErrExists", err)
	}
	again, err := s.h.SigningKey(s.ctx, "hsmtest-dup")
	if err != nil || !again.ECDSAPublicKey().Equal(first.ECDSAPublicKey()) {
		t.Errorf("after a refused duplicate, SigningKey(label) = %v, or a different key", err)
	}

	if _, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "hsmtest-aes-dup"}); err != nil {
		t.Fatalf("GenerateSecretKey() error = %v", err)
	}
	if _, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "hsmtest-aes-dup"}); !errors.Is(err, hsm.ErrExists) {
		t.Errorf("GenerateSecretKey(existing label) error = %v, want ErrExists", err)
	}
	if _, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{}); err == nil {
		t.Error("GenerateSecretKey(persistent, no label) error = nil, want an error")
	}
	if _, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "x", Ephemeral: true}); err == nil {
		t.Error("GenerateSecretKey(ephemeral with label) error = nil, want an error")
	}

	for name, find := range map[string]func() error{
		"EncryptionKey": func() error { _, err := s.h.EncryptionKey(s.ctx, "hsmtest-missing"); return err },
		"SigningKey":    func() error { _, err := s.h.SigningKey(s.ctx, "hsmtest-missing"); return err },
		"SecretKey":     func() error { _, err := s.h.SecretKey(s.ctx, "hsmtest-missing"); return err },
	} {
		if err := find(); !errors.Is(err, hsm.ErrNotFound) {
			t.Errorf("%s(missing) error = %v, want ErrNotFound", name, err)
		}
	}
	// Labels are per key kind: a signing key does not answer for an AES key.
	if _, err := s.h.SecretKey(s.ctx, "hsmtest-dup"); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("SecretKey(label of a signing key) error = %v, want ErrNotFound", err)
	}
}

func (s *suite) testEncryptionKey(t *testing.T) {
	pub := s.ek.RSAPublicKey()
	if pub.N.BitLen() != hsm.RSABits || pub.E != 65537 {
		t.Errorf("RSAPublicKey() = %d bits, e=%d, want %d bits, e=65537", pub.N.BitLen(), pub.E, hsm.RSABits)
	}
	if p, ok := s.ek.Public().(*rsa.PublicKey); !ok || !p.Equal(pub) {
		t.Error("Public() and RSAPublicKey() differ")
	}
	found, err := s.h.EncryptionKey(s.ctx, "hsmtest-enc")
	if err != nil {
		t.Fatalf("EncryptionKey(label) error = %v", err)
	}
	if !found.RSAPublicKey().Equal(pub) {
		t.Error("EncryptionKey(label) found a different key")
	}
	if _, err := s.h.GenerateEncryptionKey(s.ctx, "hsmtest-enc", hsm.UseDecrypt); !errors.Is(err, hsm.ErrExists) {
		t.Errorf("GenerateEncryptionKey(existing label) error = %v, want ErrExists", err)
	}
}

func (s *suite) testDecrypt(t *testing.T) {
	pub := s.ek.RSAPublicKey()
	msg := []byte("thirty-two bytes of key material")
	for _, oh := range []hsm.OAEPHash{hsm.OAEPSHA256, hsm.OAEPSHA512, hsm.OAEPSHA1} {
		ct, err := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, pub, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ek.Decrypt(rand.Reader, ct, oh.Options())
		if !s.h.Info().SupportsOAEP(oh) {
			if !errors.Is(err, hsm.ErrUnsupported) {
				t.Errorf("Decrypt(OAEP-%v, unsupported) error = %v, want ErrUnsupported", oh, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("Decrypt(OAEP-%v) = %q, %v, want %q", oh, got, err, msg)
		}
		bad := bytes.Clone(ct)
		bad[len(bad)/2] ^= 0x40
		if _, err := s.ek.Decrypt(rand.Reader, bad, oh.Options()); !errors.Is(err, hsm.ErrDecrypt) {
			t.Errorf("Decrypt(altered ciphertext) error = %v, want ErrDecrypt", err)
		}
	}
	ct, _ := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	for name, opts := range map[string]crypto.DecrypterOpts{
		"nil":        nil,
		"PKCS1v15":   &rsa.PKCS1v15DecryptOptions{},
		"mixed MGF1": &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1},
		"label":      &rsa.OAEPOptions{Hash: crypto.SHA256, Label: []byte("l")},
	} {
		if _, err := s.ek.Decrypt(rand.Reader, ct, opts); !errors.Is(err, hsm.ErrUnsupported) {
			t.Errorf("Decrypt(opts %s) error = %v, want ErrUnsupported", name, err)
		}
	}
}

// knownKey is a software-side AES-256 key for cross-checks.
func knownKey(t *testing.T, fill byte) secret.Key {
	t.Helper()
	b := bytes.Repeat([]byte{fill}, secret.Size)
	b[0] = 0x5a
	k, err := secret.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// importKey brings a known key into the HSM through RSA-OAEP unwrap, the only
// way in that every backend shares.
func (s *suite) importKey(t *testing.T, k secret.Key, spec hsm.KeySpec) hsm.SecretKey {
	t.Helper()
	oh := s.h.Info().OAEPHashes[0]
	ct, err := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, s.ek.RSAPublicKey(), k.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := s.ek.Unwrap(s.ctx, ct, oh, spec)
	if err != nil {
		t.Fatalf("EncryptionKey.Unwrap() error = %v", err)
	}
	return sk
}

// softOpen opens an HSM Seal output in software.
func softOpen(k secret.Key, sealed, aad []byte) ([]byte, error) {
	b, _ := aes.NewCipher(k.Bytes())
	g, _ := cipher.NewGCM(b)
	if len(sealed) < hsm.GCMNonceSize {
		return nil, errors.New("short")
	}
	return g.Open(nil, sealed[:hsm.GCMNonceSize], sealed[hsm.GCMNonceSize:], aad)
}

func softSeal(k secret.Key, plaintext, aad []byte) []byte {
	b, _ := aes.NewCipher(k.Bytes())
	g, _ := cipher.NewGCM(b)
	nonce := make([]byte, hsm.GCMNonceSize)
	rand.Read(nonce)
	return g.Seal(nonce, nonce, plaintext, aad)
}

func (s *suite) testRSAUnwrap(t *testing.T) {
	k := knownKey(t, 0x11)
	sk := s.importKey(t, k, hsm.KeySpec{Ephemeral: true})
	sealed, err := sk.Seal(s.ctx, []byte("hello"), []byte("aad"))
	if err != nil {
		t.Fatalf("Seal() error = %v", err)
	}
	if got, err := softOpen(k, sealed, []byte("aad")); err != nil || string(got) != "hello" {
		t.Errorf("software Open of the unwrapped key's Seal = %q, %v; the HSM unwrapped a different key", got, err)
	}
	oh := s.h.Info().OAEPHashes[0]
	ct, _ := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, s.ek.RSAPublicKey(), make([]byte, 16), nil)
	if _, err := s.ek.Unwrap(s.ctx, ct, oh, hsm.KeySpec{Ephemeral: true}); err == nil {
		t.Error("Unwrap(16-byte key) error = nil, want an error: only AES-256 keys")
	}
	ct, _ = rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, s.ek.RSAPublicKey(), k.Bytes(), nil)
	ct[7] ^= 1
	if _, err := s.ek.Unwrap(s.ctx, ct, oh, hsm.KeySpec{Ephemeral: true}); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("Unwrap(altered) error = %v, want ErrDecrypt", err)
	}
}

func (s *suite) testSignPSS(t *testing.T) {
	msg := []byte("proof of possession")
	sig, err := s.ek.SignPSS(s.ctx, msg)
	if err != nil {
		t.Fatalf("SignPSS() error = %v", err)
	}
	d := sha256.Sum256(msg)
	opts := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
	if err := rsa.VerifyPSS(s.ek.RSAPublicKey(), crypto.SHA256, d[:], sig, opts); err != nil {
		t.Errorf("rsa.VerifyPSS(SignPSS output) = %v", err)
	}
}

func (s *suite) testSignPSSDigest(t *testing.T) {
	pub := s.ek.RSAPublicKey()
	opts := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
	msg := []byte("upload certificate to be signed")
	d := sha256.Sum256(msg)
	sig, err := s.ek.SignPSSDigest(s.ctx, d[:])
	if err != nil {
		t.Fatalf("SignPSSDigest() error = %v", err)
	}
	if err := rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, opts); err != nil {
		t.Errorf("rsa.VerifyPSS(SignPSSDigest output) = %v", err)
	}
	other := sha256.Sum256([]byte("other"))
	if rsa.VerifyPSS(pub, crypto.SHA256, other[:], sig, opts) == nil {
		t.Error("SignPSSDigest signature verifies for another digest")
	}
	// A salt length other than 32 must not verify: the salt length is fixed.
	if rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 20, Hash: crypto.SHA256}) == nil {
		t.Error("SignPSSDigest signature verifies with salt length 20, want only 32")
	}

	// SignPSS(m) and SignPSSDigest(SHA-256(m)) are the same operation.
	sig1, err := s.ek.SignPSS(s.ctx, msg)
	if err != nil {
		t.Fatalf("SignPSS() error = %v", err)
	}
	for name, sg := range map[string][]byte{"SignPSS(m)": sig1, "SignPSSDigest(SHA-256(m))": sig} {
		if err := rsa.VerifyPSS(pub, crypto.SHA256, d[:], sg, opts); err != nil {
			t.Errorf("rsa.VerifyPSS(%s) = %v", name, err)
		}
	}

	for _, n := range []int{0, 20, 31, 33, 48, 64} {
		if _, err := s.ek.SignPSSDigest(s.ctx, make([]byte, n)); err == nil {
			t.Errorf("SignPSSDigest(%d-byte digest) error = nil, want an error", n)
		}
	}
}

func (s *suite) testSealOpen(t *testing.T) {
	sk, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "hsmtest-gcm"})
	if err != nil {
		t.Fatalf("GenerateSecretKey() error = %v", err)
	}
	if sk.Label() != "hsmtest-gcm" {
		t.Errorf("Label() = %q", sk.Label())
	}
	pt, aad := []byte("attack at dawn"), []byte("context")
	a, err := sk.Seal(s.ctx, pt, aad)
	if err != nil {
		t.Fatalf("Seal() error = %v", err)
	}
	b, _ := sk.Seal(s.ctx, pt, aad)
	if len(a) != hsm.GCMNonceSize+len(pt)+hsm.GCMTagSize {
		t.Errorf("len(Seal()) = %d, want %d", len(a), hsm.GCMNonceSize+len(pt)+hsm.GCMTagSize)
	}
	if bytes.Equal(a[:hsm.GCMNonceSize], b[:hsm.GCMNonceSize]) {
		t.Error("two Seal calls used the same nonce")
	}
	found, err := s.h.SecretKey(s.ctx, "hsmtest-gcm")
	if err != nil {
		t.Fatalf("SecretKey(label) error = %v", err)
	}
	if got, err := found.Open(s.ctx, a, aad); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Open(Seal()) = %q, %v, want %q", got, err, pt)
	}
	if got, err := sk.Seal(s.ctx, nil, nil); err != nil || len(got) != hsm.GCMNonceSize+hsm.GCMTagSize {
		t.Errorf("Seal(empty) = %d bytes, %v", len(got), err)
	}
	cases := map[string][]byte{"empty": nil, "short": a[:hsm.GCMNonceSize+hsm.GCMTagSize-1]}
	for i := 0; i < len(a); i += 7 {
		bad := bytes.Clone(a)
		bad[i] ^= 0x01
		cases[fmt.Sprintf("bit flip at %d", i)] = bad
	}
	for name, bad := range cases {
		if _, err := sk.Open(s.ctx, bad, aad); !errors.Is(err, hsm.ErrDecrypt) {
			t.Errorf("Open(%s) error = %v, want ErrDecrypt", name, err)
		}
	}
	if _, err := sk.Open(s.ctx, a, []byte("other context")); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("Open(wrong aad) error = %v, want ErrDecrypt", err)
	}

	// Cross-check with software on a known key, both directions.
	k := knownKey(t, 0x22)
	ik := s.importKey(t, k, hsm.KeySpec{Ephemeral: true})
	if got, err := ik.Open(s.ctx, softSeal(k, pt, aad), aad); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("HSM Open of software AES-GCM = %q, %v", got, err)
	}
}

func (s *suite) testWrapReference(t *testing.T) {
	w := knownKey(t, 0x33)
	k := knownKey(t, 0x44)
	hw := s.importKey(t, w, hsm.KeySpec{Ephemeral: true, Exportable: true})
	hk := s.importKey(t, k, hsm.KeySpec{Ephemeral: true, Exportable: true})
	ctxt := []byte("release=2026-1 region=eu1 secret=kdf-seed")

	got, err := hw.Wrap(s.ctx, hk, ctxt)
	if err != nil {
		t.Fatalf("Wrap() error = %v", err)
	}
	kek, _ := aes.NewCipher(hsm.ContextKEK(w, ctxt).Bytes())
	want, err := keywrap.WrapPad(kek, k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Wrap() = %x, want the reference KWP(ContextKEK(w, ctx), k) = %x", got, want)
	}

	// A software-made wrap unwraps into the HSM as the same key.
	u, err := hw.Unwrap(s.ctx, want, ctxt, hsm.KeySpec{Ephemeral: true})
	if err != nil {
		t.Fatalf("Unwrap(reference wrap) error = %v", err)
	}
	sealed, err := u.Seal(s.ctx, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := softOpen(k, sealed, nil); err != nil {
		t.Errorf("the unwrapped key is not the wrapped one: %v", err)
	}
}

func (s *suite) testWrapContext(t *testing.T) {
	wk, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := wk.Wrap(s.ctx, k, []byte("ctx-a"))
	if err != nil {
		t.Fatalf("Wrap() error = %v", err)
	}
	if len(wrapped) != 40 {
		t.Errorf("len(Wrap()) = %d, want 40", len(wrapped))
	}
	u, err := wk.Unwrap(s.ctx, wrapped, []byte("ctx-a"), hsm.KeySpec{Ephemeral: true})
	if err != nil {
		t.Fatalf("Unwrap(same context) error = %v", err)
	}
	sealed, _ := k.Seal(s.ctx, []byte("same key?"), nil)
	if got, err := u.Open(s.ctx, sealed, nil); err != nil || string(got) != "same key?" {
		t.Errorf("unwrapped key differs from the original: %q, %v", got, err)
	}
	if _, err := wk.Unwrap(s.ctx, wrapped, []byte("ctx-b"), hsm.KeySpec{Ephemeral: true}); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("Unwrap(other context) error = %v, want ErrDecrypt", err)
	}
	bad := bytes.Clone(wrapped)
	bad[3] ^= 0x80
	if _, err := wk.Unwrap(s.ctx, bad, []byte("ctx-a"), hsm.KeySpec{Ephemeral: true}); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("Unwrap(altered) error = %v, want ErrDecrypt", err)
	}
	if _, err := wk.Unwrap(s.ctx, wrapped[:24], []byte("ctx-a"), hsm.KeySpec{Ephemeral: true}); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("Unwrap(truncated) error = %v, want ErrDecrypt", err)
	}
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// recipientKey is a software RSA key pair standing in for another HSM's
// encryption key (2048 bits: generation speed, not strength, matters here).
func recipientKey(t *testing.T) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return rsaKey
}

func (s *suite) testWrapRSA(t *testing.T) {
	priv := recipientKey(t)
	k := knownKey(t, 0x55)
	hk := s.importKey(t, k, hsm.KeySpec{Ephemeral: true, Exportable: true})
	for _, oh := range []hsm.OAEPHash{hsm.OAEPSHA256, hsm.OAEPSHA512, hsm.OAEPSHA1} {
		ct, err := hk.WrapRSA(s.ctx, &priv.PublicKey, oh)
		if !s.h.Info().SupportsOAEP(oh) {
			if !errors.Is(err, hsm.ErrUnsupported) {
				t.Errorf("WrapRSA(OAEP-%v, unsupported) error = %v, want ErrUnsupported", oh, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("WrapRSA(OAEP-%v) error = %v", oh, err)
			continue
		}
		got, err := rsa.DecryptOAEP(oh.Hash().New(), nil, priv, ct, nil)
		if err != nil || !bytes.Equal(got, k.Bytes()) {
			t.Errorf("WrapRSA(OAEP-%v) does not decrypt to the key: %v", oh, err)
		}
	}
	// The wrapped key round-trips into this HSM's own encryption key.
	oh := s.h.Info().OAEPHashes[0]
	ct, err := hk.WrapRSA(s.ctx, s.ek.RSAPublicKey(), oh)
	if err != nil {
		t.Fatalf("WrapRSA(own key) error = %v", err)
	}
	back, err := s.ek.Unwrap(s.ctx, ct, oh, hsm.KeySpec{Ephemeral: true})
	if err != nil {
		t.Fatalf("Unwrap(WrapRSA()) error = %v", err)
	}
	sealed, _ := back.Seal(s.ctx, []byte("rt"), nil)
	if _, err := softOpen(k, sealed, nil); err != nil {
		t.Errorf("WrapRSA then Unwrap gave another key: %v", err)
	}
}

func (s *suite) testNotExportable(t *testing.T) {
	wk, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	// Only exportable keys may wrap or unwrap under a context.
	fixedWrapper, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixedWrapper.Wrap(s.ctx, wk, []byte("c")); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Wrap under a non-exportable key error = %v, want ErrNotExportable", err)
	}
	if _, err := fixedWrapper.Unwrap(s.ctx, make([]byte, 40), []byte("c"), hsm.KeySpec{Ephemeral: true}); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Unwrap under a non-exportable key error = %v, want ErrNotExportable", err)
	}
	if _, err := fixedWrapper.Digest(s.ctx, nil); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Digest of a non-exportable key error = %v, want ErrNotExportable", err)
	}
	fixed, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "hsmtest-fixed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wk.Wrap(s.ctx, fixed, []byte("c")); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Wrap(non-exportable key) error = %v, want ErrNotExportable", err)
	}
	if _, err := fixed.WrapRSA(s.ctx, &recipientKey(t).PublicKey, hsm.OAEPSHA256); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("WrapRSA(non-exportable key) error = %v, want ErrNotExportable", err)
	}
	// Unwrapped keys are not exportable unless asked for.
	k := knownKey(t, 0x66)
	ik := s.importKey(t, k, hsm.KeySpec{Ephemeral: true})
	if _, err := wk.Wrap(s.ctx, ik, []byte("c")); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Wrap(unwrapped, non-exportable key) error = %v, want ErrNotExportable", err)
	}
}

func (s *suite) testDigest(t *testing.T) {
	k := knownKey(t, 0x77)
	hk := s.importKey(t, k, hsm.KeySpec{Ephemeral: true, Exportable: true})
	for _, prefix := range [][]byte{nil, []byte("strongroom commitment prefix")} {
		got, err := hk.Digest(s.ctx, prefix)
		if err != nil {
			t.Fatalf("Digest(%q) error = %v", prefix, err)
		}
		want := sha256.Sum256(append(bytes.Clone(prefix), k.Bytes()...))
		if got != want {
			t.Errorf("Digest(%q) = %x, want SHA-256(prefix || key) = %x", prefix, got, want)
		}
	}
	other, _ := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	a, _ := hk.Digest(s.ctx, nil)
	b, err := other.Digest(s.ctx, nil)
	if err != nil || a == b {
		t.Errorf("Digest of two different keys = %x, %x, %v", a, b, err)
	}
}

// testDerive: Derive matches its software reference, binds the context,
// makes keys per spec, and needs an exportable or derivable base.
func (s *suite) testDerive(t *testing.T) {
	base := knownKey(t, 0x88)
	hb := s.importKey(t, base, hsm.KeySpec{Ephemeral: true, Exportable: true})
	digest := func(k hsm.SecretKey) [32]byte {
		t.Helper()
		d, err := k.Digest(s.ctx, nil)
		if err != nil {
			t.Fatalf("Digest(derived) error = %v", err)
		}
		return d
	}
	ctxt := []byte("release=2026-1 region=eu1 secret=kdf-seed")
	d, err := hb.Derive(s.ctx, ctxt, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatalf("Derive() error = %v", err)
	}
	if got, want := digest(d), sha256.Sum256(hsm.DeriveKey(base, ctxt).Bytes()); got != want {
		t.Errorf("Derive() made a key whose SHA-256 is %x, want the reference DeriveKey's %x", got, want)
	}
	other, err := hb.Derive(s.ctx, []byte("release=2026-1 region=us1 secret=kdf-seed"), hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	if digest(other) == digest(d) {
		t.Error("Derive() of two contexts made the same key")
	}
	if k := hsm.DeriveKey(base, ctxt); k.Equal(hsm.ContextKEK(base, ctxt)) {
		t.Error("DeriveKey equals ContextKEK for the same context: the two are not domain-separated")
	}
	// A derived key that is not exportable stays in the HSM.
	fixed, err := hb.Derive(s.ctx, ctxt, hsm.KeySpec{Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixed.Digest(s.ctx, nil); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Digest(derived, not exportable) error = %v, want ErrNotExportable", err)
	}
	// Only exportable or derivable keys derive.
	if _, err := fixed.Derive(s.ctx, ctxt, hsm.KeySpec{Ephemeral: true, Exportable: true}); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Derive from a key neither exportable nor derivable error = %v, want ErrNotExportable", err)
	}
	db := s.importKey(t, base, hsm.KeySpec{Ephemeral: true, Derivable: true})
	d2, err := db.Derive(s.ctx, ctxt, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatalf("Derive from a derivable key error = %v", err)
	}
	if digest(d2) != digest(d) {
		t.Error("Derive from a derivable copy of the base made another key")
	}
	if _, err := db.Digest(s.ctx, nil); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Digest(derivable, not exportable) error = %v, want ErrNotExportable", err)
	}
}

// testUnwrapOnly: an unwrap-only key never decrypts, unwraps only into
// keys that are not exportable, still proves possession, and is known as
// such when found again by its label.
func (s *suite) testUnwrapOnly(t *testing.T, uk hsm.EncryptionKey) {
	if uk.Use() != hsm.UseUnwrapOnly {
		t.Errorf("Use() = %v, want unwrap-only", uk.Use())
	}
	found, err := s.h.EncryptionKey(s.ctx, uk.Label())
	if err != nil {
		t.Fatalf("EncryptionKey(%s) error = %v", uk.Label(), err)
	}
	if found.Use() != hsm.UseUnwrapOnly {
		t.Errorf("EncryptionKey(%s) use = %v, want unwrap-only", uk.Label(), found.Use())
	}
	if s.ek.Use() != hsm.UseDecrypt {
		t.Errorf("a decrypting key's Use() = %v", s.ek.Use())
	}
	oh := s.h.Info().OAEPHashes[0]
	k := knownKey(t, 0x99)
	ct, err := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, uk.RSAPublicKey(), k.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []hsm.EncryptionKey{uk, found} {
		if pt, err := key.Decrypt(nil, ct, oh.Options()); !errors.Is(err, hsm.ErrNotPermitted) || pt != nil {
			t.Errorf("Decrypt() with an unwrap-only key = %d bytes, %v, want ErrNotPermitted", len(pt), err)
		}
		if _, err := key.Unwrap(s.ctx, ct, oh, hsm.KeySpec{Ephemeral: true, Exportable: true}); !errors.Is(err, hsm.ErrNotPermitted) {
			t.Errorf("Unwrap(exportable) with an unwrap-only key error = %v, want ErrNotPermitted", err)
		}
	}
	u, err := uk.Unwrap(s.ctx, ct, oh, hsm.KeySpec{Ephemeral: true, Derivable: true})
	if err != nil {
		t.Fatalf("Unwrap(not exportable, derivable) with an unwrap-only key error = %v", err)
	}
	if _, err := u.Digest(s.ctx, nil); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Digest of a key unwrapped by an unwrap-only key error = %v, want ErrNotExportable", err)
	}
	if _, err := u.WrapRSA(s.ctx, &recipientKey(t).PublicKey, oh); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("WrapRSA of a key unwrapped by an unwrap-only key error = %v, want ErrNotExportable", err)
	}
	// It is the key that was encrypted, and it can unwrap under a context
	// (derivable) what was wrapped under it in software.
	inner := knownKey(t, 0xaa)
	ctxt := []byte("release=2026-1 region= secret=twk")
	kek, _ := aes.NewCipher(hsm.ContextKEK(k, ctxt).Bytes())
	w, err := keywrap.WrapPad(kek, inner.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	iu, err := u.Unwrap(s.ctx, w, ctxt, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		t.Fatalf("Unwrap under the unwrapped key error = %v", err)
	}
	if d, err := iu.Digest(s.ctx, nil); err != nil || d != sha256.Sum256(inner.Bytes()) {
		t.Errorf("the key unwrapped under the unwrapped key is not the one wrapped: %v", err)
	}
	if _, err := uk.SignPSS(s.ctx, []byte("proof of possession")); err != nil {
		t.Errorf("SignPSS() with an unwrap-only key error = %v", err)
	}
	// Sealed against change, it can still be deleted.
	if err := uk.Destroy(s.ctx); err != nil {
		t.Errorf("Destroy(unwrap-only key pair) error = %v", err)
	}
	if _, err := s.h.EncryptionKey(s.ctx, uk.Label()); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("EncryptionKey(destroyed unwrap-only key) error = %v, want ErrNotFound", err)
	}
}

func (s *suite) testEphemeral(t *testing.T) {
	k, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	if k.Label() != "" {
		t.Errorf("ephemeral key Label() = %q, want empty", k.Label())
	}
	sealed, err := k.Seal(s.ctx, []byte("e"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(s.ctx, sealed, nil); err != nil {
		t.Errorf("ephemeral Open(Seal()) error = %v", err)
	}
	if err := k.Destroy(s.ctx); err != nil {
		t.Errorf("Destroy(ephemeral) error = %v", err)
	}
	if _, err := k.Seal(s.ctx, []byte("e"), nil); err == nil {
		t.Error("Seal after Destroy succeeded")
	}
}

func (s *suite) testDestroy(t *testing.T) {
	k, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "hsmtest-destroy"})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Destroy(s.ctx); err != nil {
		t.Fatalf("Destroy() error = %v", err)
	}
	if _, err := s.h.SecretKey(s.ctx, "hsmtest-destroy"); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("SecretKey(destroyed) error = %v, want ErrNotFound", err)
	}
	// The label is free again.
	if _, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "hsmtest-destroy"}); err != nil {
		t.Errorf("GenerateSecretKey(label of a destroyed key) error = %v", err)
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	sk, err := s.h.GenerateSecretKey(s.ctx, hsm.KeySpec{Label: "hsmtest-conc"})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.h.SigningKey(s.ctx, "hsmtest-sign")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				pt := []byte(fmt.Sprintf("goroutine %d message %d", g, i))
				sealed, err := sk.Seal(s.ctx, pt, nil)
				if err != nil {
					errs <- err
					return
				}
				if got, err := sk.Open(s.ctx, sealed, nil); err != nil || !bytes.Equal(got, pt) {
					errs <- fmt.Errorf("Open = %q, %v", got, err)
					return
				}
				d := sha512.Sum384(pt)
				if _, err := sig.Sign(rand.Reader, d[:], crypto.SHA384); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
}

// testDestroyEncryptionKey destroys the shared key pair: it is not found
// any more, its handle decrypts and signs nothing, destroying it again is
// ErrNotFound, and its label is free for a new key pair (so its public half
// is gone too).
func (s *suite) testDestroyEncryptionKey(t *testing.T) {
	oh := s.h.Info().OAEPHashes[0]
	ct, err := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, s.ek.RSAPublicKey(), []byte("before the destroy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ek.Destroy(s.ctx); err != nil {
		t.Fatalf("EncryptionKey.Destroy() error = %v", err)
	}
	if _, err := s.h.EncryptionKey(s.ctx, "hsmtest-enc"); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("EncryptionKey(destroyed) error = %v, want ErrNotFound", err)
	}
	if _, err := s.ek.Decrypt(rand.Reader, ct, oh.Options()); err == nil {
		t.Error("Decrypt with a destroyed key pair succeeded")
	}
	d := sha256.Sum256([]byte("after the destroy"))
	if _, err := s.ek.SignPSSDigest(s.ctx, d[:]); err == nil {
		t.Error("SignPSSDigest with a destroyed key pair succeeded")
	}
	if err := s.ek.Destroy(s.ctx); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("Destroy(destroyed) error = %v, want ErrNotFound", err)
	}
	again, err := s.h.GenerateEncryptionKey(s.ctx, "hsmtest-enc", hsm.UseDecrypt)
	if err != nil {
		t.Fatalf("GenerateEncryptionKey(label of a destroyed key pair) error = %v", err)
	}
	if again.RSAPublicKey().Equal(s.ek.RSAPublicKey()) {
		t.Error("the new key pair is the destroyed one")
	}
	// The stale handle names no key: it must not destroy the new pair.
	if err := s.ek.Destroy(s.ctx); !errors.Is(err, hsm.ErrNotFound) {
		t.Errorf("Destroy(stale handle, label reused) error = %v, want ErrNotFound", err)
	}
	if _, err := again.SignPSSDigest(s.ctx, d[:]); err != nil {
		t.Errorf("the new key pair after a stale Destroy: SignPSSDigest error = %v", err)
	}
	if found, err := s.h.EncryptionKey(s.ctx, "hsmtest-enc"); err != nil || !found.RSAPublicKey().Equal(again.RSAPublicKey()) {
		t.Errorf("EncryptionKey(hsmtest-enc) after a stale Destroy = %v, want the new key pair", err)
	}
	if err := again.Destroy(s.ctx); err != nil {
		t.Errorf("Destroy(new key pair) error = %v", err)
	}
}
