package dataplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Encrypt seals plaintext under the DEK of the tenant's active key of type
// typ (tenant.ErrNoActiveKey if there is none), bound to the caller's
// context (see envelope.Seal; an invalid context is envelope.ErrContext).
// The ciphertext names the key (tenant, type, version), so it decrypts for
// as long as that version is not destroyed, after any number of rotations.
// It returns the key used, without material. rec is the request's audit
// entry (nil: the system), for the entry of a DEK load it causes.
func (s *Service) Encrypt(ctx context.Context, rec *audit.Entry, tenantID, typ string, plaintext []byte, context map[string]string) ([]byte, tenant.Key, error) {
	if err := envelope.CheckContext(context); err != nil {
		return nil, tenant.Key{}, err
	}
	dek, k, err := s.DEK(ctx, rec, tenant.KeyRef{Tenant: tenantID, Type: typ})
	if err != nil {
		return nil, tenant.Key{}, err
	}
	defer dek.Destroy()
	ct, err := envelope.Seal(dek, envelope.Header{Tenant: tenantID, Type: typ, Version: k.Version}, context, plaintext)
	if err != nil {
		return nil, tenant.Key{}, fmt.Errorf("dataplane: %w", err)
	}
	return ct, k, nil
}

// Decrypt opens a ciphertext of Encrypt (or of a client that encrypts
// locally with a delivered DEK) for tenant tenantID, with the context it was
// sealed with. The key is the one the ciphertext names, active or archived;
// a destroyed one is tenant.ErrKeyDestroyed. Everything else that fails — a
// malformed or altered ciphertext, one of another tenant, one naming a key
// version this tenant never had, another context — is the one opaque
// envelope.ErrDecrypt. It returns the key used, without material.
func (s *Service) Decrypt(ctx context.Context, rec *audit.Entry, tenantID string, ciphertext []byte, context map[string]string) ([]byte, tenant.Key, error) {
	h, err := envelope.ParseHeader(ciphertext)
	if err != nil || h.Tenant != tenantID {
		return nil, tenant.Key{}, fmt.Errorf("dataplane: %w", envelope.ErrDecrypt)
	}
	k, err := s.key(ctx, tenant.KeyRef{Tenant: tenantID, Type: h.Type, Version: h.Version})
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		// The header names no key of this tenant: as opaque as a bad tag.
		return nil, tenant.Key{}, fmt.Errorf("dataplane: %w", envelope.ErrDecrypt)
	case err != nil:
		return nil, tenant.Key{}, err
	}
	dek, err := s.dek(ctx, rec, k)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	defer dek.Destroy()
	pt, err := envelope.Open(dek, ciphertext, context)
	if err != nil {
		return nil, tenant.Key{}, fmt.Errorf("dataplane: %w", err)
	}
	return pt, k.Meta(), nil
}

// Rewrap moves a ciphertext of the tenant to the active key of its type,
// bound to the same context, without the plaintext leaving this call (it
// is wiped before Rewrap returns). It returns the new ciphertext, the key
// it was under and the key it is under now. A ciphertext already under the
// active key is opened (so a forged one is refused as by Decrypt) and
// returned as it is, with from and to the same version: rewrapping twice
// changes nothing. Errors are Decrypt's (envelope.ErrDecrypt,
// tenant.ErrKeyDestroyed) and Encrypt's (tenant.ErrNoActiveKey).
func (s *Service) Rewrap(ctx context.Context, rec *audit.Entry, tenantID string, ciphertext []byte, context map[string]string) (out []byte, from, to tenant.Key, err error) {
	pt, from, err := s.Decrypt(ctx, rec, tenantID, ciphertext, context)
	if err != nil {
		return nil, from, tenant.Key{}, err
	}
	defer clear(pt)
	dek, to, err := s.DEK(ctx, rec, tenant.KeyRef{Tenant: tenantID, Type: from.Type})
	if err != nil {
		return nil, from, tenant.Key{}, err
	}
	defer dek.Destroy()
	if to.Version == from.Version {
		return ciphertext, from, to.Meta(), nil
	}
	ct, err := envelope.Seal(dek, envelope.Header{Tenant: tenantID, Type: from.Type, Version: to.Version}, context, pt)
	if err != nil {
		return nil, from, tenant.Key{}, fmt.Errorf("dataplane: %w", err)
	}
	return ct, from, to.Meta(), nil
}

// SealDEK delivers a DEK to a client that encrypts locally: the DEK of key
// version r (version 0 = the active key) sealed with HPKE to the client's
// public key of KEM kem (envelope.KEMX25519 or envelope.KEMMLKEM768X25519;
// see envelope.SealDEK for the suite and the info that binds tenant, type
// and version). The client opens it with envelope.OpenDEK.
//
// An explicit archived version is delivered too, on purpose: a client that
// encrypts locally must be able to decrypt its data under archived keys, as
// Decrypt does on the server. New data must use the active key (version 0);
// archived DEKs are for decryption only. A destroyed version is
// tenant.ErrKeyDestroyed.
func (s *Service) SealDEK(ctx context.Context, rec *audit.Entry, r tenant.KeyRef, kem uint16, publicKey []byte) ([]byte, tenant.Key, error) {
	if err := envelope.CheckPublicKey(kem, publicKey); err != nil {
		return nil, tenant.Key{}, err // refused before anything is derived
	}
	dek, k, err := s.DEK(ctx, rec, r)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	defer dek.Destroy()
	sealed, err := envelope.SealDEK(kem, publicKey, envelope.Header{Tenant: r.Tenant, Type: r.Type, Version: k.Version}, dek)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	return sealed, k, nil
}
