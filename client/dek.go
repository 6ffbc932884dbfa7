package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// The HPKE KEMs a DEK may be delivered to (RFC 9180 and draft-ietf-hpke-pq
// identifiers): the kem argument of Client.DEK.
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256), the default (kem 0).
	KEMX25519 uint16 = 0x0020
	// KEMMLKEM768X25519 is the ML-KEM-768 + X25519 hybrid (X-Wing):
	// post-quantum, with 1216-byte public keys.
	KEMMLKEM768X25519 uint16 = 0x647a
)

// The KEM ids are the server's: these fail to compile if they drift apart
// (a difference either way is a non-zero or an overflowing array length).
var (
	_ [KEMX25519 - envelope.KEMX25519]struct{}                 = [0]struct{}{}
	_ [KEMMLKEM768X25519 - envelope.KEMMLKEM768X25519]struct{} = [0]struct{}{}
)

var (
	// ErrDecrypt is every failure of DEK.Decrypt to open a ciphertext: a
	// malformed or altered ciphertext, another key's, or another context.
	// Its message says more only when the ciphertext's header names another
	// key (the header is not secret: it tells which DEK to ask for).
	ErrDecrypt = errors.New("client: decryption failed")
	// ErrDestroyed: the DEK was destroyed, or is the zero DEK.
	ErrDestroyed = errors.New("client: the DEK is destroyed")
	// ErrField: Encrypt under a key of type deterministic (which encrypts
	// per field: EncryptField), or EncryptField under another type, or an
	// invalid field name.
	ErrField = errors.New("client: invalid field")
)

// typeDeterministic is the key type that encrypts per field.
const typeDeterministic = "deterministic"

// DEK is the data encryption key of one version of a tenant's key,
// delivered to this client (Client.DEK) to encrypt and decrypt locally. Its
// ciphertexts are the server's, byte for byte (docs/dataplane.md): what
// Encrypt makes the server's Decrypt opens, and Decrypt opens what the
// server's Encrypt made under this key version.
//
// The key material is never printed, logged or marshalled: every fmt verb,
// slog, encoding/json and encoding.TextMarshaler give [REDACTED]. Destroy
// it when done.
//
// A DEK is a handle: copies share the key material, and Destroy on any
// copy destroys it for all. It is safe for concurrent use; Destroy waits
// for the Encrypt and Decrypt calls in flight. The zero DEK is destroyed.
type DEK struct {
	tenantID string
	typ      string
	version  uint32
	k        *dekKey // nil in the zero DEK
}

// dekKey is the key material that copies of a DEK share.
type dekKey struct {
	mu  sync.RWMutex
	key secret.Key    // zero once destroyed
	env *envelope.Key // the key ready to seal and open; nil once destroyed
}

// TenantID is the id of the tenant the key belongs to (not its name): the
// one in the header of every ciphertext under the key.
func (d DEK) TenantID() string { return d.tenantID }

// Type is the key's type, e.g. "data".
func (d DEK) Type() string { return d.typ }

// Version is the key's version, from 1.
func (d DEK) Version() uint32 { return d.version }

func (d DEK) header() envelope.Header {
	return envelope.Header{Tenant: d.tenantID, Type: d.typ, Version: d.version}
}

// use calls f with the key material, unless the DEK is destroyed.
func (d DEK) use(f func(secret.Key) ([]byte, error)) ([]byte, error) {
	return d.useKey(func(k *dekKey) ([]byte, error) { return f(k.key) })
}

// useKey calls f with the key, unless the DEK is destroyed.
func (d DEK) useKey(f func(*dekKey) ([]byte, error)) ([]byte, error) {
	if d.k == nil {
		return nil, ErrDestroyed
	}
	d.k.mu.RLock()
	defer d.k.mu.RUnlock()
	if d.k.key.IsZero() {
		return nil, ErrDestroyed
	}
	return f(d.k)
}

// newDEK makes the DEK of key, which it takes over.
func newDEK(tenantID, typ string, version uint32, key secret.Key) (DEK, error) {
	d := DEK{tenantID: tenantID, typ: typ, version: version}
	env, err := envelope.NewKey(key, d.header())
	if err != nil {
		key.Destroy()
		return DEK{}, fmt.Errorf("client: %w", err)
	}
	d.k = &dekKey{key: key, env: env}
	return d, nil
}

// Encrypt encrypts plaintext under the DEK, bound to context (which must be
// given, identical, to decrypt; nil and empty are the same), exactly as the
// server's Encrypt does. A context over the limits is an error.
//
// A key of type deterministic refuses (ErrField): use EncryptField.
func (d DEK) Encrypt(plaintext []byte, context map[string]string) ([]byte, error) {
	if d.typ == typeDeterministic {
		return nil, fmt.Errorf("%w: keys of type %s encrypt per field: use EncryptField", ErrField, d.typ)
	}
	return d.useKey(func(k *dekKey) ([]byte, error) {
		ct, err := k.env.Seal(context, plaintext)
		if err != nil {
			return nil, fmt.Errorf("client: encrypting: %w", err)
		}
		return ct, nil
	})
}

// Decrypt checks and decrypts a ciphertext made under this key version, by
// Encrypt or by the server, with the context it was made with. Every
// failure to open it is ErrDecrypt.
func (d DEK) Decrypt(ciphertext []byte, context map[string]string) ([]byte, error) {
	return d.useKey(func(k *dekKey) ([]byte, error) {
		if envelope.FormatOf(ciphertext) == envelope.FormatDeterministic {
			return nil, fmt.Errorf("%w: the ciphertext is deterministic: use DecryptField with its field", ErrDecrypt)
		}
		if h, err := envelope.ParseHeader(ciphertext); err == nil && h != d.header() {
			return nil, fmt.Errorf("%w: the ciphertext names tenant %s key %s version %d, this DEK is tenant %s key %s version %d",
				ErrDecrypt, h.Tenant, h.Type, h.Version, d.tenantID, d.typ, d.version)
		}
		pt, err := k.env.Open(ciphertext, context)
		if err != nil {
			return nil, ErrDecrypt
		}
		return pt, nil
	})
}

// EncryptField encrypts plaintext deterministically for field under a key
// of type deterministic, exactly as the server's Encrypt with a field does
// (envelope format 2, docs/dataplane.md): the same field, flag, context and
// plaintext always give the same ciphertext. caseInsensitive folds the
// plaintext first (it must then be UTF-8), and decryption gives the folded
// form. Any other key type refuses (ErrField).
func (d DEK) EncryptField(field string, caseInsensitive bool, plaintext []byte, context map[string]string) ([]byte, error) {
	if d.typ != typeDeterministic {
		return nil, fmt.Errorf("%w: a field is only for keys of type %s, not %s", ErrField, typeDeterministic, d.typ)
	}
	if err := envelope.CheckField(field); err != nil {
		return nil, fmt.Errorf("%w: %d bytes (1 to %d bytes of printable ASCII)", ErrField, len(field), envelope.MaxField)
	}
	return d.use(func(key secret.Key) ([]byte, error) {
		ct, err := envelope.SealDeterministic(key, envelope.FieldHeader{Header: d.header(), Field: field, CaseInsensitive: caseInsensitive}, context, plaintext)
		if err != nil {
			return nil, fmt.Errorf("client: encrypting: %w", err)
		}
		return ct, nil
	})
}

// DecryptField checks and decrypts a deterministic ciphertext made under
// this key version for field, by EncryptField or by the server. A
// ciphertext of another field fails like one of another context: every
// failure is ErrDecrypt.
func (d DEK) DecryptField(field string, ciphertext []byte, context map[string]string) ([]byte, error) {
	return d.use(func(key secret.Key) ([]byte, error) {
		h, err := envelope.ParseFieldHeader(ciphertext)
		if err != nil || !envelope.FieldEqual(h.Field, field) {
			return nil, ErrDecrypt
		}
		if h.Header != d.header() {
			return nil, fmt.Errorf("%w: the ciphertext names tenant %s key %s version %d, this DEK is tenant %s key %s version %d",
				ErrDecrypt, h.Tenant, h.Type, h.Version, d.tenantID, d.typ, d.version)
		}
		pt, err := envelope.OpenDeterministic(key, ciphertext, context)
		if err != nil {
			return nil, ErrDecrypt
		}
		return pt, nil
	})
}

// Bytes returns a copy of the 32-byte AES-256 key, for a caller that
// encrypts with its own code; nil once the DEK is destroyed. The copy is the
// caller's: Destroy does not reach it, so wipe it (clear) as soon as it is no
// longer needed, and never log or store it. Data encrypted with it in any
// other way than Encrypt is not in the server's format and does not decrypt
// there.
func (d DEK) Bytes() []byte {
	b, _ := d.use(func(key secret.Key) ([]byte, error) {
		return bytes.Clone(key.Bytes()), nil
	})
	return b
}

// Destroy overwrites the key material (best effort: the Go runtime may have
// copied it before, and the AES key schedule that Encrypt and Decrypt use is
// dropped for the garbage collector, not overwritten) for every copy of the
// DEK; Encrypt and Decrypt are ErrDestroyed from then on, and so are
// EncryptWriter and DecryptReader (streams started before go on to their
// end under their own per-message key). It is safe to call more than once.
func (d DEK) Destroy() {
	if d.k == nil {
		return
	}
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	d.k.key.Destroy()
	d.k.key, d.k.env = secret.Key{}, nil
}

// String implements fmt.Stringer and never reveals the key.
func (DEK) String() string { return secret.Redacted }

// GoString implements fmt.GoStringer for %#v.
func (DEK) GoString() string { return "client.DEK{" + secret.Redacted + "}" }

// Format implements fmt.Formatter so that every verb (%v, %s, %x, %q...)
// prints [REDACTED], and %#v GoString.
func (d DEK) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(d.GoString()))
		return
	}
	_, _ = f.Write([]byte(secret.Redacted))
}

// LogValue implements slog.LogValuer.
func (DEK) LogValue() slog.Value { return slog.StringValue(secret.Redacted) }

// MarshalJSON implements json.Marshaler.
func (DEK) MarshalJSON() ([]byte, error) { return []byte(`"` + secret.Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (used by YAML, TOML, XML...).
func (DEK) MarshalText() ([]byte, error) { return []byte(secret.Redacted), nil }

// DEK asks for the DEK of a tenant's key (POST /v1/tenants/{tenant}/dek), to
// encrypt and decrypt locally: typ "" is data, version 0 the active key
// (ask for an archived version by number to decrypt old data), kem 0
// KEMX25519 (or KEMMLKEM768X25519). It makes a fresh HPKE key pair of that
// KEM, sends the public half, and opens the sealed DEK locally; the private
// half never leaves this process. The caller destroys the DEK when done.
func (c *Client) DEK(ctx context.Context, tenant, typ string, version uint32, kem uint16) (DEK, error) {
	if err := seg("tenant name", tenant); err != nil {
		return DEK{}, err
	}
	if typ == "" {
		typ = "data"
	}
	if kem == 0 {
		kem = KEMX25519
	}
	pair, err := newDeliveryKey(kem)
	if err != nil {
		return DEK{}, err
	}
	var r api.DEKResponse
	req := api.DEKRequest{Type: typ, Version: version, KEM: kem, PublicKey: pair.pub}
	if err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/dek", nil, req, &r); err != nil {
		return DEK{}, err
	}
	if r.Type != typ || (version != 0 && r.Version != version) || r.TenantID == "" {
		return DEK{}, fmt.Errorf("client: asked for the DEK of %s version %d, the server answered %s version %d", typ, version, r.Type, r.Version)
	}
	h := envelope.Header{Tenant: r.TenantID, Type: r.Type, Version: r.Version}
	key, err := envelope.OpenDEK(pair.priv, kem, h, r.Sealed)
	if err != nil {
		return DEK{}, fmt.Errorf("client: opening the delivered DEK: %w", err)
	}
	return newDEK(r.TenantID, r.Type, r.Version, key)
}

// DEKResult is one DEK of a DEKs answer: the DEK, or the API error that
// refused its key (e.g. key_destroyed, not_found), in Error.
type DEKResult struct {
	DEK   DEK
	Error *api.Error
}

// DEKs asks for the DEKs of several key versions of a tenant in one request
// (POST /v1/tenants/{tenant}/deks): one HPKE encapsulation for all of them,
// where DEK makes one per key. keys name the versions (an empty type is
// data, version 0 the active key), from 1 to 64; kem is as DEK's. The
// results are in the order of keys; a key the server refused has its error
// and no DEK, and the others are delivered all the same. An error is
// returned when the request failed, or the answer does not open: then no
// DEK is returned. The caller destroys the DEKs when done.
func (c *Client) DEKs(ctx context.Context, tenant string, kem uint16, keys ...api.DEKKey) ([]DEKResult, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	if kem == 0 {
		kem = KEMX25519
	}
	asked := make([]api.DEKKey, len(keys))
	for i, k := range keys {
		if k.Type == "" {
			k.Type = "data"
		}
		asked[i] = k
	}
	pair, err := newDeliveryKey(kem)
	if err != nil {
		return nil, err
	}
	var r api.DEKsResponse
	if err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/deks", nil, api.DEKsRequest{KEM: kem, PublicKey: pair.pub, Keys: asked}, &r); err != nil {
		return nil, err
	}
	if len(r.Items) != len(asked) || r.TenantID == "" {
		return nil, fmt.Errorf("client: asked for %d DEKs, the server answered %d", len(asked), len(r.Items))
	}
	var hs []envelope.Header
	var sealed [][]byte
	for i, it := range r.Items {
		if it.Type != asked[i].Type || (asked[i].Version != 0 && it.Version != asked[i].Version) {
			return nil, fmt.Errorf("client: asked for the DEK of %s version %d, the server answered %s version %d",
				asked[i].Type, asked[i].Version, it.Type, it.Version)
		}
		if it.Error == nil {
			hs = append(hs, envelope.Header{Tenant: r.TenantID, Type: it.Type, Version: it.Version})
			sealed = append(sealed, it.Sealed)
		}
	}
	var opened []secret.Key
	if len(sealed) > 0 {
		if opened, err = envelope.OpenDEKs(pair.priv, kem, r.Enc, hs, sealed); err != nil {
			return nil, fmt.Errorf("client: opening the delivered DEKs: %w", err)
		}
	}
	out := make([]DEKResult, len(r.Items))
	for i, it := range r.Items {
		if it.Error != nil {
			out[i].Error = it.Error
			continue
		}
		key := opened[0]
		opened = opened[1:]
		if out[i].DEK, err = newDEK(r.TenantID, it.Type, it.Version, key); err != nil {
			for _, k := range opened {
				k.Destroy()
			}
			for _, o := range out[:i] {
				o.DEK.Destroy()
			}
			return nil, err
		}
	}
	return out, nil
}

// deliveryKey is a fresh HPKE key pair of a KEM, made for one request and
// dropped after it: an answer sealed to an earlier pair (replayed, or
// another request's) does not open, so a party inside TLS cannot hand the
// client an older delivery, e.g. an archived version as the active one.
type deliveryKey struct {
	priv hpke.PrivateKey
	pub  []byte // priv's public key, serialized
}

// newDeliveryKey makes the key pair of kem for one request.
func newDeliveryKey(kem uint16) (deliveryKey, error) {
	var m hpke.KEM
	switch kem {
	case KEMX25519:
		m = hpke.DHKEM(ecdh.X25519())
	case KEMMLKEM768X25519:
		m = hpke.MLKEM768X25519()
	default:
		return deliveryKey{}, fmt.Errorf("client: HPKE KEM %#04x: use %#04x (X25519) or %#04x (ML-KEM-768+X25519)",
			kem, KEMX25519, KEMMLKEM768X25519)
	}
	priv, err := m.GenerateKey()
	if err != nil {
		return deliveryKey{}, fmt.Errorf("client: making an HPKE key pair: %w", err)
	}
	return deliveryKey{priv: priv, pub: priv.PublicKey().Bytes()}, nil
}
