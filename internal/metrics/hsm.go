package metrics

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"io"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// hsmOps are the op label values of strongroom_hsm_operation_duration_seconds.
var hsmOps = []string{
	"random",
	"generate_rsa", "generate_ecdsa", "generate_aes",
	"find_rsa", "find_ecdsa", "find_aes",
	"rsa_decrypt", "rsa_unwrap", "rsa_sign_pss", "rsa_destroy",
	"ecdsa_sign",
	"aes_seal", "aes_open", "aes_wrap", "aes_unwrap", "aes_derive", "aes_digest", "aes_wrap_rsa", "aes_destroy",
}

// hsmRefusals are the HSM errors that are answers, not faults.
var hsmRefusals = []error{hsm.ErrNotFound, hsm.ErrExists, hsm.ErrUnsupported, hsm.ErrDecrypt,
	hsm.ErrNotExportable, hsm.ErrNotPermitted}

// HSM returns h with every operation timed, on h and on every key it
// returns (strongroom_hsm_operation_duration_seconds). Info and the keys'
// public halves and labels are not operations of the HSM: not timed. The
// keys it returns are h's keys wrapped; SecretKey.Wrap unwraps its argument
// again, since backends accept only their own keys there.
func (m *Metrics) HSM(h hsm.HSM) hsm.HSM {
	if m == nil || h == nil {
		return h
	}
	return &timedHSM{h: h, o: m.hsm}
}

type timedHSM struct {
	h hsm.HSM
	o *ops
}

func (t *timedHSM) time(op string, start time.Time, err error) {
	t.o.get(op).observe(classify(err, hsmRefusals), start)
}

func (t *timedHSM) Info() hsm.Info { return t.h.Info() }
func (t *timedHSM) Close() error   { return t.h.Close() }

func (t *timedHSM) Random(ctx context.Context, n int) (b []byte, err error) {
	defer func(start time.Time) { t.time("random", start, err) }(time.Now())
	return t.h.Random(ctx, n)
}

func (t *timedHSM) GenerateEncryptionKey(ctx context.Context, label string, use hsm.RSAUse) (hsm.EncryptionKey, error) {
	start := time.Now()
	k, err := t.h.GenerateEncryptionKey(ctx, label, use)
	t.time("generate_rsa", start, err)
	return t.rsa(k, err)
}

func (t *timedHSM) GenerateSigningKey(ctx context.Context, label string) (hsm.SigningKey, error) {
	start := time.Now()
	k, err := t.h.GenerateSigningKey(ctx, label)
	t.time("generate_ecdsa", start, err)
	return t.ecdsa(k, err)
}

func (t *timedHSM) GenerateSecretKey(ctx context.Context, spec hsm.KeySpec) (hsm.SecretKey, error) {
	start := time.Now()
	k, err := t.h.GenerateSecretKey(ctx, spec)
	t.time("generate_aes", start, err)
	return t.aes(k, err)
}

func (t *timedHSM) EncryptionKey(ctx context.Context, label string) (hsm.EncryptionKey, error) {
	start := time.Now()
	k, err := t.h.EncryptionKey(ctx, label)
	t.time("find_rsa", start, err)
	return t.rsa(k, err)
}

func (t *timedHSM) SigningKey(ctx context.Context, label string) (hsm.SigningKey, error) {
	start := time.Now()
	k, err := t.h.SigningKey(ctx, label)
	t.time("find_ecdsa", start, err)
	return t.ecdsa(k, err)
}

func (t *timedHSM) SecretKey(ctx context.Context, label string) (hsm.SecretKey, error) {
	start := time.Now()
	k, err := t.h.SecretKey(ctx, label)
	t.time("find_aes", start, err)
	return t.aes(k, err)
}

func (t *timedHSM) rsa(k hsm.EncryptionKey, err error) (hsm.EncryptionKey, error) {
	if err != nil || k == nil {
		return k, err
	}
	return &timedRSA{k: k, t: t}, nil
}

func (t *timedHSM) ecdsa(k hsm.SigningKey, err error) (hsm.SigningKey, error) {
	if err != nil || k == nil {
		return k, err
	}
	return &timedECDSA{k: k, t: t}, nil
}

func (t *timedHSM) aes(k hsm.SecretKey, err error) (hsm.SecretKey, error) {
	if err != nil || k == nil {
		return k, err
	}
	return &timedAES{k: k, t: t}, nil
}

// timedRSA is an hsm.EncryptionKey, timed.
type timedRSA struct {
	k hsm.EncryptionKey
	t *timedHSM
}

func (r *timedRSA) Public() crypto.PublicKey                   { return r.k.Public() }
func (r *timedRSA) Label() string                              { return r.k.Label() }
func (r *timedRSA) Use() hsm.RSAUse                            { return r.k.Use() }
func (r *timedRSA) RSAPublicKey() *rsa.PublicKey               { return r.k.RSAPublicKey() }
func (r *timedRSA) time(op string, start time.Time, err error) { r.t.time(op, start, err) }

func (r *timedRSA) Decrypt(rand io.Reader, msg []byte, opts crypto.DecrypterOpts) (pt []byte, err error) {
	defer func(start time.Time) { r.time("rsa_decrypt", start, err) }(time.Now())
	return r.k.Decrypt(rand, msg, opts)
}

func (r *timedRSA) Unwrap(ctx context.Context, ciphertext []byte, hash hsm.OAEPHash, spec hsm.KeySpec) (hsm.SecretKey, error) {
	start := time.Now()
	k, err := r.k.Unwrap(ctx, ciphertext, hash, spec)
	r.time("rsa_unwrap", start, err)
	return r.t.aes(k, err)
}

func (r *timedRSA) SignPSS(ctx context.Context, message []byte) (sig []byte, err error) {
	defer func(start time.Time) { r.time("rsa_sign_pss", start, err) }(time.Now())
	return r.k.SignPSS(ctx, message)
}

func (r *timedRSA) SignPSSDigest(ctx context.Context, digest []byte) (sig []byte, err error) {
	defer func(start time.Time) { r.time("rsa_sign_pss", start, err) }(time.Now())
	return r.k.SignPSSDigest(ctx, digest)
}

func (r *timedRSA) Destroy(ctx context.Context) (err error) {
	defer func(start time.Time) { r.time("rsa_destroy", start, err) }(time.Now())
	return r.k.Destroy(ctx)
}

// timedECDSA is an hsm.SigningKey, timed.
type timedECDSA struct {
	k hsm.SigningKey
	t *timedHSM
}

func (e *timedECDSA) Public() crypto.PublicKey         { return e.k.Public() }
func (e *timedECDSA) Label() string                    { return e.k.Label() }
func (e *timedECDSA) ECDSAPublicKey() *ecdsa.PublicKey { return e.k.ECDSAPublicKey() }

func (e *timedECDSA) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) (sig []byte, err error) {
	defer func(start time.Time) { e.t.time("ecdsa_sign", start, err) }(time.Now())
	return e.k.Sign(rand, digest, opts)
}

// timedAES is an hsm.SecretKey, timed.
type timedAES struct {
	k hsm.SecretKey
	t *timedHSM
}

// inner is the backend's own key behind k, if k is one of ours.
func inner(k hsm.SecretKey) hsm.SecretKey {
	if a, ok := k.(*timedAES); ok {
		return a.k
	}
	return k
}

func (a *timedAES) Label() string { return a.k.Label() }

func (a *timedAES) Seal(ctx context.Context, plaintext, additionalData []byte) (out []byte, err error) {
	defer func(start time.Time) { a.t.time("aes_seal", start, err) }(time.Now())
	return a.k.Seal(ctx, plaintext, additionalData)
}

func (a *timedAES) Open(ctx context.Context, sealed, additionalData []byte) (out []byte, err error) {
	defer func(start time.Time) { a.t.time("aes_open", start, err) }(time.Now())
	return a.k.Open(ctx, sealed, additionalData)
}

func (a *timedAES) Wrap(ctx context.Context, key hsm.SecretKey, context []byte) (out []byte, err error) {
	defer func(start time.Time) { a.t.time("aes_wrap", start, err) }(time.Now())
	return a.k.Wrap(ctx, inner(key), context)
}

func (a *timedAES) Unwrap(ctx context.Context, wrapped, context []byte, spec hsm.KeySpec) (hsm.SecretKey, error) {
	start := time.Now()
	k, err := a.k.Unwrap(ctx, wrapped, context, spec)
	a.t.time("aes_unwrap", start, err)
	return a.t.aes(k, err)
}

func (a *timedAES) Derive(ctx context.Context, context []byte, spec hsm.KeySpec) (hsm.SecretKey, error) {
	start := time.Now()
	k, err := a.k.Derive(ctx, context, spec)
	a.t.time("aes_derive", start, err)
	return a.t.aes(k, err)
}

func (a *timedAES) Digest(ctx context.Context, prefix []byte) (d [32]byte, err error) {
	defer func(start time.Time) { a.t.time("aes_digest", start, err) }(time.Now())
	return a.k.Digest(ctx, prefix)
}

func (a *timedAES) WrapRSA(ctx context.Context, pub *rsa.PublicKey, hash hsm.OAEPHash) (out []byte, err error) {
	defer func(start time.Time) { a.t.time("aes_wrap_rsa", start, err) }(time.Now())
	return a.k.WrapRSA(ctx, pub, hash)
}

func (a *timedAES) Destroy(ctx context.Context) (err error) {
	defer func(start time.Time) { a.t.time("aes_destroy", start, err) }(time.Now())
	return a.k.Destroy(ctx)
}
