//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // RSA-OAEP hashes, by crypto.Hash
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/miekg/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// required are the mechanisms that every operation of the backend needs.
var required = []struct {
	mech uint
	name string
}{
	{pkcs11.CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN"},
	{pkcs11.CKM_AES_GCM, "CKM_AES_GCM"},
	{pkcs11.CKM_AES_ECB_ENCRYPT_DATA, "CKM_AES_ECB_ENCRYPT_DATA"},
	{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, "CKM_RSA_PKCS_KEY_PAIR_GEN"},
	{pkcs11.CKM_RSA_PKCS_OAEP, "CKM_RSA_PKCS_OAEP"},
	{pkcs11.CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS"},
	{pkcs11.CKM_EC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN"},
	{pkcs11.CKM_ECDSA, "CKM_ECDSA"},
}

// probe checks the token's mechanism list, picks the RFC 5649 mechanism, and
// finds out which RSA-OAEP hashes really work for decryption, unwrapping and
// wrapping: a module may list CKM_RSA_PKCS_OAEP yet support SHA-1 only
// (SoftHSM2 2.6 does). Only hashes that work for all three are listed in
// Info().OAEPHashes; the others are refused with hsm.ErrUnsupported rather
// than replaced.
func (h *HSM) probe(ctx context.Context) error {
	list, err := h.mod.ctx.GetMechanismList(h.slot)
	if err != nil {
		return fmt.Errorf("pkcs11: C_GetMechanismList: %w", err)
	}
	have := map[uint]bool{}
	for _, m := range list {
		have[m.Mechanism] = true
	}
	var missing []string
	for _, r := range required {
		if !have[r.mech] {
			missing = append(missing, r.name)
		}
	}
	switch {
	case have[ckmAESKeyWrapKWP]:
		h.kwp = ckmAESKeyWrapKWP
	case have[pkcs11.CKM_AES_KEY_WRAP_PAD]:
		h.kwp = pkcs11.CKM_AES_KEY_WRAP_PAD
	default:
		missing = append(missing, "CKM_AES_KEY_WRAP_KWP or CKM_AES_KEY_WRAP_PAD (RFC 5649)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("pkcs11: token %q lacks mechanisms that strongroom needs: %s: %w",
			h.info.Token, strings.Join(missing, ", "), hsm.ErrUnsupported)
	}

	// A throwaway software key pair, imported as session objects, lets the
	// probe check the token's output against the standard library.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("pkcs11: RSA-OAEP probe: %w", err)
	}
	var works []hsm.OAEPHash
	var reasons []string
	err = h.pool.do(ctx, func(s pkcs11.SessionHandle) error {
		pk, err := h.newProbeKey(s, key)
		if err != nil {
			return err
		}
		defer pk.destroy()
		for _, hash := range []hsm.OAEPHash{hsm.OAEPSHA256, hsm.OAEPSHA512, hsm.OAEPSHA1} {
			why, err := pk.tryOAEP(hash)
			if err != nil {
				return err
			}
			if why != "" {
				reasons = append(reasons, fmt.Sprintf("%v: %s", hash, why))
				continue
			}
			works = append(works, hash)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pkcs11: token %q: RSA-OAEP probe: %w", h.info.Token, err)
	}
	if len(works) == 0 {
		return fmt.Errorf("pkcs11: token %q cannot do RSA-OAEP with any of sha256, sha512, sha1 (%s): %w",
			h.info.Token, strings.Join(reasons, "; "), hsm.ErrUnsupported)
	}
	if h.lenUnreported.Load() && (!have[pkcs11.CKM_AES_ECB] || !have[pkcs11.CKM_AES_KEY_WRAP]) {
		return fmt.Errorf("pkcs11: token %q does not report the length of unwrapped keys, and lacks CKM_AES_ECB "+
			"or CKM_AES_KEY_WRAP to check it: %w", h.info.Token, hsm.ErrUnsupported)
	}
	h.info.OAEPHashes = works
	if len(reasons) > 0 {
		h.info.Description += "; RSA-OAEP unavailable with " + strings.Join(reasons, "; ")
	}
	return nil
}

// probeKey is the probe's RSA key pair: session objects in one session.
type probeKey struct {
	h         *HSM
	s         pkcs11.SessionHandle
	soft      *rsa.PrivateKey
	priv, pub pkcs11.ObjectHandle
	aes       pkcs11.ObjectHandle // hsm.KATKey, extractable, to be wrapped
}

func (h *HSM) newProbeKey(s pkcs11.SessionHandle, key *rsa.PrivateKey) (*probeKey, error) {
	key.Precompute()
	b := func(x *big.Int) []byte { return x.Bytes() }
	priv, err := h.mod.ctx.CreateObject(s, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_DECRYPT, true), attr(pkcs11.CKA_UNWRAP, true),
		attr(pkcs11.CKA_MODULUS, b(key.N)), attr(pkcs11.CKA_PUBLIC_EXPONENT, b(big.NewInt(int64(key.E)))),
		attr(pkcs11.CKA_PRIVATE_EXPONENT, b(key.D)),
		attr(pkcs11.CKA_PRIME_1, b(key.Primes[0])), attr(pkcs11.CKA_PRIME_2, b(key.Primes[1])),
		attr(pkcs11.CKA_EXPONENT_1, b(key.Precomputed.Dp)), attr(pkcs11.CKA_EXPONENT_2, b(key.Precomputed.Dq)),
		attr(pkcs11.CKA_COEFFICIENT, b(key.Precomputed.Qinv)),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot import a throwaway RSA key as a session object: %w", err)
	}
	pk := &probeKey{h: h, s: s, soft: key, priv: priv}
	pk.pub, err = h.mod.ctx.CreateObject(s, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_ENCRYPT, true),
		attr(pkcs11.CKA_MODULUS, b(key.N)), attr(pkcs11.CKA_PUBLIC_EXPONENT, b(big.NewInt(int64(key.E)))),
	})
	if err == nil {
		pk.aes, err = h.createAES(s, hsm.KATKey, true)
	}
	if err != nil {
		pk.destroy()
		return nil, fmt.Errorf("cannot create session objects: %w", err)
	}
	return pk, nil
}

func (pk *probeKey) destroy() {
	for _, o := range []pkcs11.ObjectHandle{pk.priv, pk.pub, pk.aes} {
		if o != 0 {
			_ = pk.h.destroy(pk.s, o)
		}
	}
}

// tryOAEP returns why hash does not work ("" if it does). A wrong result,
// as opposed to a refusal, is a self-test failure.
func (pk *probeKey) tryOAEP(hash hsm.OAEPHash) (string, error) {
	c, s := pk.h.mod.ctx, pk.s
	wrong := func(what string) error {
		return fmt.Errorf("%w: RSA-OAEP-%v %s gave a wrong result", hsm.ErrSelfTest, hash, what)
	}
	ct, err := rsa.EncryptOAEP(hash.Hash().New(), rand.Reader, &pk.soft.PublicKey, hsm.KATKey, nil)
	if err != nil {
		return "", err
	}
	// Decrypt.
	if err := c.DecryptInit(s, oaepMech(hash), pk.priv); err != nil {
		return fmt.Sprintf("decrypt refused (%v)", err), nil
	}
	pt, err := c.Decrypt(s, ct)
	if err != nil {
		return fmt.Sprintf("decrypt failed (%v)", err), nil
	}
	if !bytes.Equal(pt, hsm.KATKey) {
		return "", wrong("decryption")
	}
	// Unwrap, checked through the unwrapped key's AES-GCM output.
	u, err := c.UnwrapKey(s, oaepMech(hash), pk.priv, ct, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false),
		attr(pkcs11.CKA_ENCRYPT, true),
	})
	if err != nil {
		return fmt.Sprintf("unwrap failed (%v)", err), nil
	}
	a, err := pk.h.getAttrs(s, u, pkcs11.CKA_VALUE_LEN)
	if err != nil {
		_ = pk.h.destroy(s, u)
		return "", err
	}
	switch n, _ := ulongAttr(a[pkcs11.CKA_VALUE_LEN]); n {
	case hsm.SecretKeySize:
	case 0:
		pk.h.lenUnreported.Store(true) // see unwrapAES
	default:
		_ = pk.h.destroy(s, u)
		return "", wrong("unwrapping (CKA_VALUE_LEN)")
	}
	sealed, err := pk.h.gcmSeal(s, u, hsm.KATNonce, hsm.KATPlaintext, hsm.KATAAD)
	_ = pk.h.destroy(s, u)
	if err != nil {
		return "", fmt.Errorf("%w: AES-GCM with a key unwrapped with RSA-OAEP-%v failed: %w", hsm.ErrSelfTest, hash, err)
	}
	if !bytes.Equal(sealed, hsm.KATSealed) {
		return "", wrong("unwrapping")
	}
	// Wrap, checked by decrypting in software.
	w, err := c.WrapKey(s, oaepMech(hash), pk.pub, pk.aes)
	if err != nil {
		return fmt.Sprintf("wrap failed (%v)", err), nil
	}
	got, err := rsa.DecryptOAEP(hash.Hash().New(), nil, pk.soft, w, nil)
	if err != nil || !bytes.Equal(got, hsm.KATKey) {
		return "", wrong("wrapping")
	}
	return "", nil
}

// createAES imports a known, non-secret AES key (a test vector) as a session
// object.
func (h *HSM) createAES(s pkcs11.SessionHandle, value []byte, extractable bool) (pkcs11.ObjectHandle, error) {
	if len(value) != hsm.SecretKeySize {
		return 0, errors.New("createAES: not an AES-256 key")
	}
	return h.mod.ctx.CreateObject(s, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, extractable), attr(pkcs11.CKA_VALUE, value),
		attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_DECRYPT, true), attr(pkcs11.CKA_DERIVE, true),
	})
}
