//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// TestKeys shares one RSA-4096 key pair between its subtests: SoftHSM2
// generates them slowly.
func TestKeys(t *testing.T) {
	h, u := openTestHSM(t, "keys")
	ctx := context.Background()
	ek, err := h.GenerateEncryptionKey(ctx, "enc", hsm.UseDecrypt)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := h.GenerateSigningKey(ctx, "sign")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Attributes", func(t *testing.T) { testAttributes(t, h, ek.(*encryptionKey), sk.(*signingKey)) })
	t.Run("DuplicateLabels", func(t *testing.T) { testDuplicates(t, h, ek) })
	t.Run("AmbiguousLabel", func(t *testing.T) { testAmbiguous(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, h, u, ek, sk) })
}

// attrs reads attributes of o.
func attrs(t *testing.T, h *HSM, o pkcs11.ObjectHandle, types ...uint) map[uint][]byte {
	t.Helper()
	var a map[uint][]byte
	err := h.pool.do(context.Background(), func(s pkcs11.SessionHandle) (err error) {
		a, err = h.getAttrs(s, o, types...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkBools checks CK_BBOOL attributes of o.
func checkBools(t *testing.T, h *HSM, what string, o pkcs11.ObjectHandle, want map[uint]bool) {
	t.Helper()
	types := make([]uint, 0, len(want))
	for typ := range want {
		types = append(types, typ)
	}
	got := attrs(t, h, o, types...)
	for typ, w := range want {
		if boolAttr(got[typ]) != w {
			t.Errorf("%s: attribute 0x%x = %v, want %v", what, typ, boolAttr(got[typ]), w)
		}
	}
}

// checkSensitive checks that CKA_VALUE (AES) or CKA_PRIVATE_EXPONENT (RSA)
// cannot be read.
func checkSensitive(t *testing.T, h *HSM, what string, o pkcs11.ObjectHandle, typ uint) {
	t.Helper()
	err := h.pool.do(context.Background(), func(s pkcs11.SessionHandle) error {
		_, err := h.getAttrs(s, o, typ)
		return err
	})
	if !isRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Errorf("%s: reading secret attribute 0x%x: error = %v, want CKR_ATTRIBUTE_SENSITIVE", what, typ, err)
	}
}

func testAttributes(t *testing.T, h *HSM, ek *encryptionKey, sk *signingKey) {
	ctx := context.Background()
	locked := map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		pkcs11.CKA_NEVER_EXTRACTABLE: true, pkcs11.CKA_ALWAYS_SENSITIVE: true,
	}
	with := func(m map[uint]bool, extra map[uint]bool) map[uint]bool {
		out := map[uint]bool{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	checkBools(t, h, "RSA private key", ek.priv, with(locked, map[uint]bool{
		pkcs11.CKA_DECRYPT: true, pkcs11.CKA_UNWRAP: true, pkcs11.CKA_SIGN: true, pkcs11.CKA_DERIVE: false,
	}))
	checkSensitive(t, h, "RSA private key", ek.priv, pkcs11.CKA_PRIVATE_EXPONENT)
	a := attrs(t, h, ek.priv, pkcs11.CKA_LABEL, pkcs11.CKA_ID, pkcs11.CKA_PUBLIC_EXPONENT)
	if string(a[pkcs11.CKA_LABEL]) != "enc" || !bytes.Equal(a[pkcs11.CKA_ID], keyID("enc")) ||
		!bytes.Equal(a[pkcs11.CKA_PUBLIC_EXPONENT], []byte{1, 0, 1}) {
		t.Errorf("RSA private key: label %q, id %x, exponent %x", a[pkcs11.CKA_LABEL], a[pkcs11.CKA_ID], a[pkcs11.CKA_PUBLIC_EXPONENT])
	}

	checkBools(t, h, "ECDSA private key", sk.priv, with(locked, map[uint]bool{
		pkcs11.CKA_SIGN: true, pkcs11.CKA_DECRYPT: false, pkcs11.CKA_DERIVE: false,
	}))
	checkSensitive(t, h, "ECDSA private key", sk.priv, pkcs11.CKA_VALUE)
	if a := attrs(t, h, sk.priv, pkcs11.CKA_EC_PARAMS); !bytes.Equal(a[pkcs11.CKA_EC_PARAMS], secp384r1) {
		t.Errorf("ECDSA private key: CKA_EC_PARAMS = %x, want P-384", a[pkcs11.CKA_EC_PARAMS])
	}

	// CKA_DERIVE (for context KEKs) only on exportable keys: a PIN holder
	// could derive an extractable KEK from any key that has it.
	usage := map[uint]bool{
		pkcs11.CKA_ENCRYPT: true, pkcs11.CKA_DECRYPT: true, pkcs11.CKA_WRAP: false, pkcs11.CKA_UNWRAP: false,
		pkcs11.CKA_DERIVE: false, pkcs11.CKA_SIGN: false,
	}
	gen := func(spec hsm.KeySpec) *secretKey {
		k, err := h.GenerateSecretKey(ctx, spec)
		if err != nil {
			t.Fatalf("GenerateSecretKey(%+v) error = %v", spec, err)
		}
		return k.(*secretKey)
	}
	fixed := gen(hsm.KeySpec{Label: "attr-fixed"})
	checkBools(t, h, "persistent AES key", fixed.obj, with(with(locked, usage), nil))
	checkSensitive(t, h, "persistent AES key", fixed.obj, pkcs11.CKA_VALUE)
	if n, _ := ulongAttr(attrs(t, h, fixed.obj, pkcs11.CKA_VALUE_LEN)[pkcs11.CKA_VALUE_LEN]); n != 32 {
		t.Errorf("persistent AES key: CKA_VALUE_LEN = %d", n)
	}
	exp := gen(hsm.KeySpec{Label: "attr-exportable", Exportable: true})
	checkBools(t, h, "exportable AES key", exp.obj, with(with(locked, usage), map[uint]bool{
		pkcs11.CKA_EXTRACTABLE: true, pkcs11.CKA_NEVER_EXTRACTABLE: false, pkcs11.CKA_DERIVE: true,
	}))
	checkSensitive(t, h, "exportable AES key", exp.obj, pkcs11.CKA_VALUE)
	eph := gen(hsm.KeySpec{Ephemeral: true})
	checkBools(t, h, "ephemeral AES key", eph.obj, with(with(locked, usage), map[uint]bool{pkcs11.CKA_TOKEN: false}))

	// Keys that come in by unwrapping: same protection, per spec.
	oh := h.Info().OAEPHashes[0]
	ct, err := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, ek.RSAPublicKey(), bytes.Repeat([]byte{7}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []hsm.KeySpec{{Label: "attr-unwrapped"}, {Ephemeral: true, Exportable: true}} {
		k, err := ek.Unwrap(ctx, ct, oh, spec)
		if err != nil {
			t.Fatalf("Unwrap(%+v) error = %v", spec, err)
		}
		o := k.(*secretKey).obj
		checkBools(t, h, fmt.Sprintf("unwrapped key %+v", spec), o, map[uint]bool{
			pkcs11.CKA_TOKEN: !spec.Ephemeral, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: spec.Exportable,
			pkcs11.CKA_DERIVE: spec.Exportable, pkcs11.CKA_ENCRYPT: true,
		})
		checkSensitive(t, h, "unwrapped key", o, pkcs11.CKA_VALUE)
	}
	// Short keys are refused, whether or not the token reports CKA_VALUE_LEN.
	for _, n := range []int{1, 16, 24, 31, 33} {
		ct, _ := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, ek.RSAPublicKey(), make([]byte, n), nil)
		if _, err := ek.Unwrap(ctx, ct, oh, hsm.KeySpec{Ephemeral: true}); err == nil {
			t.Errorf("Unwrap(%d-byte key) error = nil", n)
		}
	}
	if n := countObjects(t, h, []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)}); n != 2 {
		t.Errorf("%d session objects exist, want 2 (the two ephemeral keys): temporary objects leak", n)
	}
}

func testDuplicates(t *testing.T, h *HSM, ek hsm.EncryptionKey) {
	ctx := context.Background()
	labelled := func(label string) int {
		return countObjects(t, h, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, label)})
	}
	if _, err := h.GenerateEncryptionKey(ctx, "enc", hsm.UseDecrypt); !errors.Is(err, hsm.ErrExists) {
		t.Errorf("GenerateEncryptionKey(existing) error = %v, want ErrExists", err)
	}
	// Private keys share a class: an encryption key's label is taken for
	// signing keys too.
	if _, err := h.GenerateSigningKey(ctx, "enc"); !errors.Is(err, hsm.ErrExists) {
		t.Errorf("GenerateSigningKey(label of an encryption key) error = %v, want ErrExists", err)
	}
	if n := labelled("enc"); n != 2 {
		t.Errorf("%d objects labelled enc, want 2 (the original public and private keys)", n)
	}
	msg := []byte("the original is intact")
	oh := h.Info().OAEPHashes[0]
	ct, _ := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, ek.RSAPublicKey(), msg, nil)
	found, err := h.EncryptionKey(ctx, "enc")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := found.Decrypt(nil, ct, oh.Options()); err != nil || !bytes.Equal(pt, msg) {
		t.Errorf("Decrypt with the original key after a refused duplicate = %q, %v", pt, err)
	}

	k, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Label: "dup-aes"})
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := k.Seal(ctx, msg, nil)
	ctKey, _ := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, ek.RSAPublicKey(), make([]byte, 32), nil)
	if _, err := ek.Unwrap(ctx, ctKey, oh, hsm.KeySpec{Label: "dup-aes"}); !errors.Is(err, hsm.ErrExists) {
		t.Errorf("Unwrap(existing label) error = %v, want ErrExists", err)
	}
	if _, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Label: "dup-aes", Exportable: true}); !errors.Is(err, hsm.ErrExists) {
		t.Errorf("GenerateSecretKey(existing label) error = %v, want ErrExists", err)
	}
	if n := labelled("dup-aes"); n != 1 {
		t.Errorf("%d objects labelled dup-aes, want 1", n)
	}
	again, err := h.SecretKey(ctx, "dup-aes")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Open(ctx, sealed, nil); err != nil || !bytes.Equal(pt, msg) {
		t.Errorf("Open with the original AES key = %q, %v", pt, err)
	}
}

func testAmbiguous(t *testing.T, h *HSM) {
	// Two processes racing could create two keys with one label; lookups
	// must refuse to pick one.
	for range 2 {
		err := h.pool.do(context.Background(), func(s pkcs11.SessionHandle) error {
			tmpl := append(secretTemplate(hsm.KeySpec{Label: "twice"}), attr(pkcs11.CKA_VALUE_LEN, 32))
			_, err := h.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.SecretKey(context.Background(), "twice")
	wantErr(t, "ambiguous label", err, `several AES key objects are labelled "twice"`)
}

func testConcurrent(t *testing.T, h *HSM, u URI, ek hsm.EncryptionKey, sk hsm.SigningKey) {
	ctx := context.Background()
	aes, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Label: "conc", Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	oh := h.Info().OAEPHashes[0]
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 8 {
		wg.Go(func() {
			for i := range 6 {
				if err := concurrentStep(ctx, h, aes, ek, sk, oh, fmt.Sprintf("g%d-i%d", g, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Meanwhile, other HSMs on the same token open and close.
	for range 2 {
		wg.Go(func() {
			for range 2 {
				o, err := Open(ctx, u.String())
				if err != nil {
					errs <- err
					return
				}
				if _, err := o.Random(ctx, 16); err != nil {
					errs <- err
				}
				if err := o.Close(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
}

func concurrentStep(ctx context.Context, h *HSM, aes hsm.SecretKey, ek hsm.EncryptionKey, sk hsm.SigningKey,
	oh hsm.OAEPHash, tag string) error {
	pt := []byte("message " + tag)
	sealed, err := aes.Seal(ctx, pt, []byte(tag))
	if err != nil {
		return err
	}
	if got, err := aes.Open(ctx, sealed, []byte(tag)); err != nil || !bytes.Equal(got, pt) {
		return fmt.Errorf("Open = %q, %v", got, err)
	}
	d := sha512.Sum384(pt)
	if _, err := sk.Sign(nil, d[:], crypto.SHA384); err != nil {
		return err
	}
	ct, _ := rsa.EncryptOAEP(oh.Hash().New(), rand.Reader, ek.RSAPublicKey(), pt, nil)
	if got, err := ek.Decrypt(nil, ct, oh.Options()); err != nil || !bytes.Equal(got, pt) {
		return fmt.Errorf("Decrypt = %q, %v", got, err)
	}
	k, err := h.GenerateSecretKey(ctx, hsm.KeySpec{Ephemeral: true, Exportable: true})
	if err != nil {
		return err
	}
	w, err := aes.Wrap(ctx, k, []byte(tag))
	if err != nil {
		return err
	}
	u, err := aes.Unwrap(ctx, w, []byte(tag), hsm.KeySpec{Label: "unwrapped-" + tag})
	if err != nil {
		return err
	}
	if _, err := h.Random(ctx, 32); err != nil {
		return err
	}
	return errors.Join(k.Destroy(ctx), u.Destroy(ctx))
}
