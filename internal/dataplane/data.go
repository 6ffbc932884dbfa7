package dataplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Field is what a deterministic encryption binds besides the key: the
// field's name and whether it matches case-insensitively (see
// envelope.FieldHeader). Keys of type deterministic need one; no other type
// takes one.
type Field struct {
	Name            string
	CaseInsensitive bool
}

// deterministic reports whether keys of type typ encrypt deterministically
// (envelope format 2).
func deterministic(typ string) bool { return typ == tenant.TypeDeterministic }

// Encrypt seals plaintext under the DEK of the tenant's active key of type
// typ (tenant.ErrNoActiveKey if there is none), bound to the caller's
// context (see envelope.Seal; an invalid context is envelope.ErrContext).
// The ciphertext names the key (tenant, type, version), so it decrypts for
// as long as that version is not destroyed, after any number of rotations.
// It returns the key used, without material. rec is the request's audit
// entry (nil: the system), for the entry of a DEK load it causes.
//
// Keys of type deterministic need a field: use EncryptField.
func (s *Service) Encrypt(ctx context.Context, rec *audit.Entry, tenantID, typ string, plaintext []byte, context map[string]string) ([]byte, tenant.Key, error) {
	return s.EncryptField(ctx, rec, tenantID, typ, Field{}, plaintext, context)
}

// EncryptField is Encrypt with a field. Keys of type deterministic need
// one, and seal deterministically (envelope.SealDeterministic: the same
// field, flag, context and plaintext under one key version give the same
// ciphertext); every other type refuses one, and seals as Encrypt. Both
// refusals, and an invalid field name, are envelope.ErrField; a
// case-insensitive plaintext that is not UTF-8 is envelope.ErrFold.
func (s *Service) EncryptField(ctx context.Context, rec *audit.Entry, tenantID, typ string, f Field, plaintext []byte, context map[string]string) ([]byte, tenant.Key, error) {
	if err := envelope.CheckContext(context); err != nil {
		return nil, tenant.Key{}, err
	}
	det := deterministic(typ)
	switch {
	case det && f.Name == "":
		return nil, tenant.Key{}, reason.New(envelope.ErrField,
			"keys of type %s encrypt deterministically, per field: give the field (e.g. \"users.email\")", typ)
	case det:
		if err := envelope.CheckField(f.Name); err != nil {
			return nil, tenant.Key{}, err
		}
	case f != Field{}:
		return nil, tenant.Key{}, reason.New(envelope.ErrField,
			"a field and case-insensitive matching are only for keys of type %s, not %s", tenant.TypeDeterministic, typ)
	}
	dek, k, err := s.DEK(ctx, rec, tenant.KeyRef{Tenant: tenantID, Type: typ})
	if err != nil {
		return nil, tenant.Key{}, err
	}
	defer dek.Destroy()
	ct, err := seal(dek, envelope.Header{Tenant: tenantID, Type: typ, Version: k.Version}, f, context, plaintext)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	return ct, k, nil
}

// seal seals plaintext under dek, the DEK of the key h names: in format 2
// for field f if the key's type is deterministic, in format 1 otherwise.
// Anything that re-encrypts (e.g. moving data to the active key) must use it
// with the field of the ciphertext it replaces, so that a deterministic
// ciphertext stays deterministic in its field.
func seal(dek secret.Key, h envelope.Header, f Field, context map[string]string, plaintext []byte) ([]byte, error) {
	var ct []byte
	var err error
	if deterministic(h.Type) {
		ct, err = envelope.SealDeterministic(dek, envelope.FieldHeader{Header: h, Field: f.Name, CaseInsensitive: f.CaseInsensitive}, context, plaintext)
	} else {
		ct, err = envelope.Seal(dek, h, context, plaintext)
	}
	if err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	return ct, nil
}

// Decrypt opens a ciphertext of Encrypt (or of a client that encrypts
// locally with a delivered DEK) for tenant tenantID, with the context it was
// sealed with. The key is the one the ciphertext names, active or archived;
// a destroyed one is tenant.ErrKeyDestroyed. Everything else that fails — a
// malformed or altered ciphertext, one of another tenant, one naming a key
// version this tenant never had, another context — is the one opaque
// envelope.ErrDecrypt. It returns the key used, without material.
//
// Deterministic ciphertexts need their field: use DecryptField.
func (s *Service) Decrypt(ctx context.Context, rec *audit.Entry, tenantID string, ciphertext []byte, context map[string]string) ([]byte, tenant.Key, error) {
	return s.DecryptField(ctx, rec, tenantID, "", ciphertext, context)
}

// DecryptField is Decrypt with the field a ciphertext is expected to
// belong to. It dispatches on the format byte: a deterministic ciphertext
// (format 2) needs its field, and one whose field differs is
// envelope.ErrDecrypt, like one naming a key of another type than
// deterministic; a format 1 ciphertext binds no field and refuses one. Both
// refusals are envelope.ErrField. A case-insensitive ciphertext gives the
// folded plaintext.
func (s *Service) DecryptField(ctx context.Context, rec *audit.Entry, tenantID, field string, ciphertext []byte, context map[string]string) ([]byte, tenant.Key, error) {
	var h envelope.Header
	var err error
	switch envelope.FormatOf(ciphertext) {
	case envelope.Format:
		if h, err = envelope.ParseHeader(ciphertext); err == nil && field != "" {
			return nil, tenant.Key{}, reason.New(envelope.ErrField,
				"the ciphertext is of format 1, which binds no field: decrypt it without one (and re-encrypt it to make it searchable)")
		}
	case envelope.FormatDeterministic:
		var fh envelope.FieldHeader
		fh, err = envelope.ParseFieldHeader(ciphertext)
		switch {
		case err != nil:
		case field == "":
			return nil, tenant.Key{}, reason.New(envelope.ErrField,
				"the ciphertext is deterministic (format 2): give the field it was encrypted for")
		case !envelope.FieldEqual(fh.Field, field) || !deterministic(fh.Type):
			err = envelope.ErrDecrypt
		}
		h = fh.Header
	default:
		err = envelope.ErrMalformed
	}
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
	var pt []byte
	if envelope.FormatOf(ciphertext) == envelope.FormatDeterministic {
		pt, err = envelope.OpenDeterministic(dek, ciphertext, context)
	} else {
		pt, err = envelope.Open(dek, ciphertext, context)
	}
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
//
// A deterministic ciphertext (format 2) stays deterministic in its field,
// with its case flag: both come from its header, and f may be zero; an f
// naming another field is envelope.ErrDecrypt, as DecryptField. A format 1
// ciphertext of a deterministic key (random, from before format 2) needs
// f: it is sealed again in format 2 for that field, even under the same
// version, and only then becomes searchable. A field for any other type is
// envelope.ErrField.
func (s *Service) Rewrap(ctx context.Context, rec *audit.Entry, tenantID string, f Field, ciphertext []byte, context map[string]string) (out []byte, from, to tenant.Key, err error) {
	field := f
	upgrade := false
	var pt []byte
	switch envelope.FormatOf(ciphertext) {
	case envelope.FormatDeterministic:
		fh, err := envelope.ParseFieldHeader(ciphertext)
		if err != nil || (f.Name != "" && !envelope.FieldEqual(fh.Field, f.Name)) {
			return nil, tenant.Key{}, tenant.Key{}, fmt.Errorf("dataplane: %w", envelope.ErrDecrypt)
		}
		field = Field{Name: fh.Field, CaseInsensitive: fh.CaseInsensitive}
		pt, from, err = s.DecryptField(ctx, rec, tenantID, fh.Field, ciphertext, context)
		if err != nil {
			return nil, from, tenant.Key{}, err
		}
	default:
		pt, from, err = s.DecryptField(ctx, rec, tenantID, "", ciphertext, context)
		if err != nil {
			return nil, from, tenant.Key{}, err
		}
		switch {
		case deterministic(from.Type) && f.Name == "":
			clear(pt)
			return nil, from, tenant.Key{}, reason.New(envelope.ErrField,
				"the ciphertext is of format 1 under a deterministic key: give the field to rewrap it into (it becomes deterministic, format 2)")
		case deterministic(from.Type):
			upgrade = true
		case f.Name != "":
			clear(pt)
			return nil, from, tenant.Key{}, reason.New(envelope.ErrField, "only deterministic keys take a field")
		}
	}
	defer clear(pt)
	dek, to, err := s.DEK(ctx, rec, tenant.KeyRef{Tenant: tenantID, Type: from.Type})
	if err != nil {
		return nil, from, tenant.Key{}, err
	}
	defer dek.Destroy()
	if to.Version == from.Version && !upgrade {
		return ciphertext, from, to.Meta(), nil
	}
	ct, err := seal(dek, envelope.Header{Tenant: tenantID, Type: from.Type, Version: to.Version}, field, context, pt)
	if err != nil {
		return nil, from, tenant.Key{}, err
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
	k, err := s.key(ctx, r)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	// A public key the seal would refuse is refused before a DEK is
	// derived for it. A trial encapsulation costs as much as the seal,
	// so it is made only when the DEK is not cached (a warm request
	// finds a bad key at the seal, for nothing more).
	if !s.cache.Has(cacheID(k.KeyRef())) {
		if err := envelope.CheckPublicKey(kem, publicKey); err != nil {
			return nil, tenant.Key{}, err
		}
	}
	dek, err := s.dek(ctx, rec, k)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	k = k.Meta()
	defer dek.Destroy()
	sealed, err := envelope.SealDEK(kem, publicKey, envelope.Header{Tenant: r.Tenant, Type: r.Type, Version: k.Version}, dek)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	return sealed, k, nil
}

// DEKBatch delivers the DEKs of several key versions of a tenant to one
// client with a single HPKE encapsulation (envelope.SealDEKs): NewDEKBatch
// encapsulates, then Seal seals one DEK after the other, in the order of
// the answer. A version Seal refuses takes no place in the batch. It is not
// safe for concurrent use.
type DEKBatch struct {
	s      *Service
	sealer *envelope.DEKSealer
}

// NewDEKBatch encapsulates to the client's public key of KEM kem, and
// returns the batch and its enc. A public key the KEM refuses is
// envelope.ErrPublicKey, found before any DEK is derived.
func (s *Service) NewDEKBatch(kem uint16, publicKey []byte) (*DEKBatch, []byte, error) {
	sealer, enc, err := envelope.NewDEKSealer(kem, publicKey)
	if err != nil {
		return nil, nil, err
	}
	return &DEKBatch{s: s, sealer: sealer}, enc, nil
}

// Seal seals the next DEK of the batch: the DEK of key version r (version
// 0 = the active key), as SealDEK delivers it. rec is the delivery's audit
// entry.
func (b *DEKBatch) Seal(ctx context.Context, rec *audit.Entry, r tenant.KeyRef) ([]byte, tenant.Key, error) {
	k, err := b.s.key(ctx, r)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	dek, err := b.s.dek(ctx, rec, k)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	defer dek.Destroy()
	k = k.Meta()
	sealed, err := b.sealer.Seal(envelope.Header{Tenant: r.Tenant, Type: r.Type, Version: k.Version}, dek)
	if err != nil {
		return nil, tenant.Key{}, err
	}
	return sealed, k, nil
}
