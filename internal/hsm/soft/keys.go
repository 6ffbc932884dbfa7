package soft

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// load brings the in-memory key maps in line with entries. Handles to keys
// that still exist stay valid; keys gone from the file disappear.
func (h *HSM) load(entries []entry) error {
	enc := map[string]*encryptionKey{}
	sign := map[string]*signingKey{}
	sec := map[string]*secretKey{}
	for _, e := range entries {
		switch e.kind {
		case kindEncryption:
			if k, ok := h.enc[e.label]; ok {
				enc[e.label] = k
				continue
			}
			priv, err := x509.ParsePKCS8PrivateKey(e.der)
			rk, ok := priv.(*rsa.PrivateKey)
			if err != nil || !ok {
				return fmt.Errorf("%w: encryption key %q is not an RSA key", errCorrupt, e.label)
			}
			use := hsm.UseDecrypt
			if e.unwrapOnly {
				use = hsm.UseUnwrapOnly
			}
			enc[e.label] = &encryptionKey{h: h, label: e.label, priv: rk, use: use}
		case kindSigning:
			if k, ok := h.sign[e.label]; ok {
				sign[e.label] = k
				continue
			}
			priv, err := x509.ParsePKCS8PrivateKey(e.der)
			ek, ok := priv.(*ecdsa.PrivateKey)
			if err != nil || !ok || ek.Curve != elliptic.P384() {
				return fmt.Errorf("%w: signing key %q is not a P-384 key", errCorrupt, e.label)
			}
			sign[e.label] = &signingKey{label: e.label, priv: ek}
		case kindSecret:
			if k, ok := h.sec[e.label]; ok {
				sec[e.label] = k
				continue
			}
			k, _ := secret.New(e.der)
			sec[e.label] = newSecretKey(h, e.label, k, hsm.KeySpec{Label: e.label, Exportable: e.exportable, Derivable: e.derivable})
		}
		clear(e.der)
	}
	for l, k := range h.sec {
		if sec[l] != k {
			k.wipe()
		}
	}
	for l, k := range h.enc {
		if enc[l] != k {
			k.destroyed.Store(true)
		}
	}
	h.enc, h.sign, h.sec = enc, sign, sec
	return nil
}

// addEntry returns a mutation that appends e unless its label is taken.
func addEntry(e entry) func([]entry) ([]entry, error) {
	return func(entries []entry) ([]entry, error) {
		for _, x := range entries {
			if x.kind == e.kind && x.label == e.label {
				return nil, fmt.Errorf("%w: %q", hsm.ErrExists, e.label)
			}
		}
		return append(entries, e), nil
	}
}

// GenerateEncryptionKey implements hsm.HSM.
func (h *HSM) GenerateEncryptionKey(ctx context.Context, label string, use hsm.RSAUse) (hsm.EncryptionKey, error) {
	if use != hsm.UseDecrypt && use != hsm.UseUnwrapOnly {
		return nil, fmt.Errorf("soft: %w: RSA key use %v", hsm.ErrUnsupported, use)
	}
	if err := validLabel(label); err != nil {
		return nil, err
	}
	if _, err := h.EncryptionKey(ctx, label); err == nil {
		return nil, fmt.Errorf("%w: %q", hsm.ErrExists, label) // before the slow key generation
	}
	priv, err := rsa.GenerateKey(rand.Reader, hsm.RSABits)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkOpen(); err != nil {
		return nil, err
	}
	if err := h.mutate(addEntry(entry{kind: kindEncryption, label: label, unwrapOnly: use == hsm.UseUnwrapOnly, der: der})); err != nil {
		return nil, err
	}
	return h.enc[label], nil
}

// GenerateSigningKey implements hsm.HSM.
func (h *HSM) GenerateSigningKey(ctx context.Context, label string) (hsm.SigningKey, error) {
	if err := validLabel(label); err != nil {
		return nil, err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkOpen(); err != nil {
		return nil, err
	}
	if err := h.mutate(addEntry(entry{kind: kindSigning, label: label, der: der})); err != nil {
		return nil, err
	}
	return h.sign[label], nil
}

// GenerateSecretKey implements hsm.HSM.
func (h *HSM) GenerateSecretKey(ctx context.Context, spec hsm.KeySpec) (hsm.SecretKey, error) {
	raw := make([]byte, secret.Size)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	defer clear(raw)
	return h.addSecret(raw, spec)
}

// addSecret stores raw as a new secret key per spec.
func (h *HSM) addSecret(raw []byte, spec hsm.KeySpec) (hsm.SecretKey, error) {
	if spec.Ephemeral && spec.Label != "" {
		return nil, errors.New("soft: an ephemeral key has no label")
	}
	if !spec.Ephemeral {
		if err := validLabel(spec.Label); err != nil {
			return nil, err
		}
	}
	if len(raw) != secret.Size {
		return nil, fmt.Errorf("%w: only AES-256 keys (32 bytes), got %d bytes", hsm.ErrUnsupported, len(raw))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkOpen(); err != nil {
		return nil, err
	}
	if spec.Ephemeral {
		k, _ := secret.New(raw)
		sk := newSecretKey(h, "", k, spec)
		h.eph[sk] = struct{}{}
		return sk, nil
	}
	e := entry{kind: kindSecret, label: spec.Label, exportable: spec.Exportable, derivable: spec.Derivable,
		der: append([]byte(nil), raw...)}
	if err := h.mutate(addEntry(e)); err != nil {
		return nil, err
	}
	return h.sec[spec.Label], nil
}

// find looks a key up, re-reading the file once on a miss so that keys made
// by other processes since Open are seen.
func find[K any](h *HSM, label string, m func() map[string]K) (K, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var zero K
	if err := h.checkOpen(); err != nil {
		return zero, err
	}
	if k, ok := m()[label]; ok {
		return k, nil
	}
	if err := h.reload(); err != nil {
		return zero, err
	}
	if k, ok := m()[label]; ok {
		return k, nil
	}
	return zero, fmt.Errorf("%w: %q in %s", hsm.ErrNotFound, label, h.path)
}

// EncryptionKey implements hsm.HSM.
func (h *HSM) EncryptionKey(ctx context.Context, label string) (hsm.EncryptionKey, error) {
	return find(h, label, func() map[string]*encryptionKey { return h.enc })
}

// SigningKey implements hsm.HSM.
func (h *HSM) SigningKey(ctx context.Context, label string) (hsm.SigningKey, error) {
	return find(h, label, func() map[string]*signingKey { return h.sign })
}

// SecretKey implements hsm.HSM.
func (h *HSM) SecretKey(ctx context.Context, label string) (hsm.SecretKey, error) {
	return find(h, label, func() map[string]*secretKey { return h.sec })
}

// destroySecret removes a persistent secret key from the file.
func (h *HSM) destroySecret(k *secretKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkOpen(); err != nil {
		return err
	}
	if k.ephemeral {
		delete(h.eph, k)
		k.wipe()
		return nil
	}
	return h.mutate(func(entries []entry) ([]entry, error) {
		out, _ := without(entries, kindSecret, k.label)
		return out, nil
	})
}

// destroyEncryption removes an encryption key pair from the file, or
// returns an error wrapping hsm.ErrNotFound if it is not there.
func (h *HSM) destroyEncryption(k *encryptionKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkOpen(); err != nil {
		return err
	}
	// A handle destroyed before names no key, even if a new key pair has
	// taken its label since.
	if k.destroyed.Load() || h.enc[k.label] != k {
		return fmt.Errorf("%w: encryption key %q in %s", hsm.ErrNotFound, k.label, h.path)
	}
	err := h.mutate(func(entries []entry) ([]entry, error) {
		out, found := without(entries, kindEncryption, k.label)
		if !found {
			return nil, fmt.Errorf("%w: encryption key %q in %s", hsm.ErrNotFound, k.label, h.path)
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	return nil
}

// without returns entries but the one of kind labelled label, and whether
// there was one.
func without(entries []entry, kind byte, label string) ([]entry, bool) {
	out := entries[:0:0]
	for _, e := range entries {
		if e.kind == kind && e.label == label {
			continue
		}
		out = append(out, e)
	}
	return out, len(out) < len(entries)
}

func secretEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
