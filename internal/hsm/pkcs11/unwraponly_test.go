//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// TestUnwrapOnlyTokenPolicy: an unwrap-only key is enforced by the token
// itself, not only by this package: a raw C_Decrypt with it is refused, and
// so is a raw C_UnwrapKey into a key that would be readable (not sensitive,
// or extractable), while an unwrap into a sensitive, non-extractable key
// works. This is what a PIN holder driving the token by hand meets.
func TestUnwrapOnlyTokenPolicy(t *testing.T) {
	h, _ := openTestHSM(t, "unwrap-only")
	ctx := context.Background()
	ek, err := h.GenerateEncryptionKey(ctx, "primary-enc", hsm.UseUnwrapOnly)
	if err != nil {
		t.Fatal(err)
	}
	k := ek.(*encryptionKey)
	checkBools(t, h, "unwrap-only private key", k.priv, map[uint]bool{
		pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: true, pkcs11.CKA_SIGN: true,
		pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_MODIFIABLE: false,
	})
	// SoftHSM2 decrypts and unwraps RSA-OAEP with SHA-1 only.
	secret := make([]byte, hsm.SecretKeySize)
	rand.Read(secret)
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, k.RSAPublicKey(), secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	mech := oaepMech(hsm.OAEPSHA1)
	aes := func(sensitive, extractable bool) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_PRIVATE, true),
			attr(pkcs11.CKA_SENSITIVE, sensitive), attr(pkcs11.CKA_EXTRACTABLE, extractable),
			attr(pkcs11.CKA_ENCRYPT, true),
		}
	}
	err = h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		c := h.mod.ctx
		if err := c.DecryptInit(s, mech, k.priv); err == nil {
			pt, err := c.Decrypt(s, ct)
			if err == nil {
				t.Errorf("C_Decrypt with the unwrap-only key returned %d bytes", len(pt))
			}
		} else if !isRV(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
			t.Errorf("C_DecryptInit with the unwrap-only key error = %v, want CKR_KEY_FUNCTION_NOT_PERMITTED", err)
		}
		for _, tc := range []struct {
			name                   string
			sensitive, extractable bool
		}{{"not sensitive", false, false}, {"extractable", true, true}, {"not sensitive, extractable", false, true}} {
			o, err := c.UnwrapKey(s, mech, k.priv, ct, aes(tc.sensitive, tc.extractable))
			if err == nil {
				h.destroy(s, o)
				t.Errorf("C_UnwrapKey into a key that is %s succeeded: the unwrap template is not enforced", tc.name)
			} else if !isRV(err, pkcs11.CKR_TEMPLATE_INCONSISTENT) && !isRV(err, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID) {
				t.Errorf("C_UnwrapKey into a key that is %s error = %v, want the unwrap template's refusal", tc.name, err)
			}
		}
		// Nor can the PIN holder give the key back its decrypt permission.
		if err := c.SetAttributeValue(s, k.priv, []*pkcs11.Attribute{attr(pkcs11.CKA_DECRYPT, true)}); err == nil {
			t.Error("C_SetAttributeValue(CKA_DECRYPT = true) on the unwrap-only key succeeded")
		}
		o, err := c.UnwrapKey(s, mech, k.priv, ct, aes(true, false))
		if err != nil {
			t.Errorf("C_UnwrapKey into a sensitive, non-extractable key error = %v", err)
			return nil
		}
		return h.destroy(s, o)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestModifiableKeyIsNotUnwrapOnly: a key pair made by hand without decrypt
// permission but modifiable (so a PIN holder could grant it later) is
// refused when looked up, rather than taken for a sealed unwrap-only key.
func TestModifiableKeyIsNotUnwrapOnly(t *testing.T) {
	h, _ := openTestHSM(t, "modifiable")
	ctx := context.Background()
	mech := pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)
	priv := privateKeyTemplate(pkcs11.CKK_RSA, "by-hand", pkcs11.CKA_UNWRAP, pkcs11.CKA_SIGN)
	if err := h.generatePair(ctx, "by-hand", mech, rsaPublicTemplate("by-hand"), priv,
		func(pkcs11.SessionHandle, pkcs11.ObjectHandle, pkcs11.ObjectHandle) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.EncryptionKey(ctx, "by-hand"); err == nil || !strings.Contains(err.Error(), "not a sealed unwrap-only key") {
		t.Errorf("EncryptionKey(modifiable, no decrypt) error = %v, want a refusal", err)
	}
}
