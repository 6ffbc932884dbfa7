package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// Encrypt seals plaintext under the DEK of the tenant's active key of type
// typ (ErrNoActiveKey if there is none), bound to the caller's context (see
// envelope.Seal; an invalid context is envelope.ErrContext). The ciphertext
// names the key (tenant, type, version), so it decrypts for as long as that
// version is not destroyed, after any number of rotations. It returns the
// key used, without material.
func (s *Service) Encrypt(ctx context.Context, tenantID, typ string, plaintext []byte, context map[string]string) ([]byte, store.Key, error) {
	if err := envelope.CheckContext(context); err != nil {
		return nil, store.Key{}, err
	}
	dek, k, err := s.DEK(ctx, tenantID, typ, 0)
	if err != nil {
		return nil, store.Key{}, err
	}
	defer dek.Destroy()
	ct, err := envelope.Seal(dek, envelope.Header{Tenant: tenantID, Type: typ, Version: k.Version}, context, plaintext)
	if err != nil {
		return nil, store.Key{}, fmt.Errorf("tenant: %w", err)
	}
	return ct, k, nil
}

// Decrypt opens a ciphertext of Encrypt (or of a client that encrypts
// locally with a delivered DEK) for tenant tenantID, with the context it was
// sealed with. The key is the one the ciphertext names, active or archived;
// a destroyed one is ErrKeyDestroyed. Everything else that fails — a
// malformed or altered ciphertext, one of another tenant, one naming a key
// version this tenant never had, another context — is the one opaque
// envelope.ErrDecrypt. It returns the key used, without material.
func (s *Service) Decrypt(ctx context.Context, tenantID string, ciphertext []byte, context map[string]string) ([]byte, store.Key, error) {
	h, err := envelope.ParseHeader(ciphertext)
	if err != nil || h.Tenant != tenantID {
		return nil, store.Key{}, fmt.Errorf("tenant: %w", envelope.ErrDecrypt)
	}
	k, err := s.key(ctx, tenantID, h.Type, h.Version)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		// The header names no key of this tenant: as opaque as a bad tag.
		return nil, store.Key{}, fmt.Errorf("tenant: %w", envelope.ErrDecrypt)
	case err != nil:
		return nil, store.Key{}, err
	}
	dek, err := s.dek(ctx, k)
	if err != nil {
		return nil, store.Key{}, err
	}
	defer dek.Destroy()
	pt, err := envelope.Open(dek, ciphertext, context)
	if err != nil {
		return nil, store.Key{}, fmt.Errorf("tenant: %w", err)
	}
	return pt, meta(k), nil
}

// SealDEK delivers a DEK to a client that encrypts locally: the DEK of key
// version (0 = the active key) sealed with HPKE to the client's public key
// of KEM kem (envelope.KEMX25519 or envelope.KEMMLKEM768X25519; see
// envelope.SealDEK for the suite and the info that binds tenant, type and
// version). The client opens it with envelope.OpenDEK.
//
// An explicit archived version is delivered too, on purpose: a client that
// encrypts locally must be able to decrypt its data under archived keys, as
// Decrypt does on the server. New data must use the active key (version 0);
// archived DEKs are for decryption only. A destroyed version is
// ErrKeyDestroyed.
func (s *Service) SealDEK(ctx context.Context, tenantID, typ string, version uint32, kem uint16, publicKey []byte) ([]byte, store.Key, error) {
	if err := envelope.CheckPublicKey(kem, publicKey); err != nil {
		return nil, store.Key{}, err // refused before anything is derived
	}
	dek, k, err := s.DEK(ctx, tenantID, typ, version)
	if err != nil {
		return nil, store.Key{}, err
	}
	defer dek.Destroy()
	sealed, err := envelope.SealDEK(kem, publicKey, envelope.Header{Tenant: tenantID, Type: typ, Version: k.Version}, dek)
	if err != nil {
		return nil, store.Key{}, err
	}
	return sealed, k, nil
}
