package primitive

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"strconv"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

type ecdsaFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		Sha          string         `json:"sha"`
		PublicKeyDer wycheproof.Hex `json:"publicKeyDer"`
		PublicKey    struct {
			Curve string `json:"curve"`
		} `json:"publicKey"`
		Tests []struct {
			TcID    int               `json:"tcId"`
			Comment string            `json:"comment"`
			Flags   []string          `json:"flags"`
			Msg     wycheproof.Hex    `json:"msg"`
			Sig     wycheproof.Hex    `json:"sig"`
			Result  wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// runECDSA runs a P-384 verification vector file through VerifyP384. If der
// is true, VerifyP384 must accept exactly the valid vectors; otherwise the
// file holds IEEE P1363 (r || s) signatures and VerifyP384 must refuse all
// of them, valid or not, since it accepts only DER.
func runECDSA(t *testing.T, file string, der bool) tally {
	var f ecdsaFile
	wycheproof.Load(t, file, &f)
	if f.Algorithm != "ECDSA" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	var ran tally
	for _, g := range f.TestGroups {
		if g.Sha != "SHA-384" || g.PublicKey.Curve != "secp384r1" {
			t.Fatalf("group with %s over %s", g.Sha, g.PublicKey.Curve)
		}
		k, err := x509.ParsePKIXPublicKey(g.PublicKeyDer)
		if err != nil {
			t.Fatal(err)
		}
		pub, ok := k.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P384() {
			t.Fatalf("group key is %T, want a P-384 key", k)
		}
		for _, tc := range g.Tests {
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				defer describe(t, tc.TcID, tc.Comment, tc.Flags, tc.Result)
				want := der && tc.Result == wycheproof.Valid && !highS(tc.Sig)
				if got := VerifyP384(pub, tc.Msg, tc.Sig); got != want {
					t.Fatalf("VerifyP384 = %v, want %v", got, want)
				}
			})
			switch {
			case !der, tc.Result == wycheproof.Valid && highS(tc.Sig):
				ran.refused++ // P1363, or valid but high S: refused by policy
			default:
				ran.add(tc.Result)
			}
		}
	}
	return ran
}

// highS reports whether a DER signature has s > n/2.
func highS(sig []byte) bool {
	_, s, ok := parseDER(sig)
	return ok && s.Cmp(halfOrder) > 0
}

func TestWycheproofECDSAP384(t *testing.T) {
	ran := runECDSA(t, "ecdsa_secp384r1_sha384_test.json", true)
	// 89 of the 194 valid signatures have s > n/2: refused by the low-S policy.
	ran.check(t, tally{valid: 105, invalid: 310, refused: 89}, 504)
}

// TestWycheproofECDSAP384P1363 checks that signatures in the IEEE P1363
// format, which VerifyP384 does not accept, are refused even when valid.
func TestWycheproofECDSAP384P1363(t *testing.T) {
	ran := runECDSA(t, "ecdsa_secp384r1_sha384_p1363_test.json", false)
	ran.check(t, tally{refused: 280}, 280)
}

// signerFunc is a crypto.Signer with a given public key and signing
// function, to model faulty signers such as a misbehaving HSM.
type signerFunc struct {
	pub  crypto.PublicKey
	sign func(digest []byte) ([]byte, error)
}

func (s signerFunc) Public() crypto.PublicKey { return s.pub }
func (s signerFunc) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return s.sign(digest)
}

func TestSignVerifyP384(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("audit record 17")
	sig, err := SignP384(rand.Reader, priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyP384(&priv.PublicKey, msg, sig) {
		t.Fatal("signature does not verify")
	}
	digest := sha512.Sum384(msg)
	if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
		t.Fatal("standard library does not verify the signature over SHA-384(msg)")
	}
	if VerifyP384(&priv.PublicKey, []byte("audit record 18"), sig) {
		t.Fatal("signature verifies for another message")
	}
	if VerifyP384(nil, msg, sig) {
		t.Fatal("nil key accepted")
	}
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if VerifyP384(&other.PublicKey, msg, sig) {
		t.Fatal("signature verifies under another key")
	}

	// Keys on other curves are refused, even with a signature that the
	// standard library accepts for them.
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], s) {
			t.Fatal("standard library refuses its own signature")
		}
		if VerifyP384(&k.PublicKey, msg, s) {
			t.Errorf("%s key accepted", c.Params().Name)
		}
		if _, err := SignP384(rand.Reader, k, msg); !errors.Is(err, ErrParameter) {
			t.Errorf("%s signer: %v", c.Params().Name, err)
		}
	}
	if _, err := SignP384(rand.Reader, nil, msg); !errors.Is(err, ErrParameter) {
		t.Errorf("nil signer: %v", err)
	}

	// A signer that misbehaves is caught before its output escapes.
	for name, sign := range map[string]func([]byte) ([]byte, error){
		"wrong key":   func(d []byte) ([]byte, error) { return ecdsa.SignASN1(rand.Reader, other, d) },
		"wrong input": func(d []byte) ([]byte, error) { return ecdsa.SignASN1(rand.Reader, priv, d[1:]) },
		"raw r||s": func(d []byte) ([]byte, error) {
			s, err := ecdsa.SignASN1(rand.Reader, priv, d)
			if err != nil {
				return nil, err
			}
			return ecdsaRawFromDER(s)
		},
		"empty": func([]byte) ([]byte, error) { return nil, nil },
	} {
		s, err := SignP384(rand.Reader, signerFunc{&priv.PublicKey, sign}, msg)
		if err == nil || s != nil {
			t.Errorf("%s: faulty signature returned: %x, %v", name, s, err)
		}
	}
	signErr := errors.New("token removed")
	if _, err := SignP384(rand.Reader, signerFunc{&priv.PublicKey, func([]byte) ([]byte, error) { return nil, signErr }}, msg); !errors.Is(err, signErr) {
		t.Errorf("signer error lost: %v", err)
	}
}

// ecdsaRawFromDER converts an ASN.1 P-384 signature to fixed-size r || s.
func ecdsaRawFromDER(sig []byte) ([]byte, error) {
	var v struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &v); err != nil {
		return nil, err
	}
	out := make([]byte, 96)
	v.R.FillBytes(out[:48])
	v.S.FillBytes(out[48:])
	return out, nil
}

func BenchmarkVerifyP384(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 256)
	sig, err := SignP384(rand.Reader, priv, msg)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !VerifyP384(&priv.PublicKey, msg, sig) {
			b.Fatal("does not verify")
		}
	}
}

// TestLowS: SignP384 makes only low-S signatures, even from a signer that
// returns the high-S twin, and VerifyP384 refuses the twin.
func TestLowS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("one encoding only")
	n := elliptic.P384().Params().N
	high := signerFunc{pub: &key.PublicKey, sign: func(d []byte) ([]byte, error) {
		r, s, err := ecdsa.Sign(rand.Reader, key, d)
		if err != nil {
			return nil, err
		}
		if s.Cmp(halfOrder) <= 0 {
			s.Sub(n, s) // always hand out the high-S form
		}
		return asn1.Marshal(struct{ R, S *big.Int }{r, s})
	}}
	for range 20 {
		sig, err := SignP384(rand.Reader, high, msg)
		if err != nil {
			t.Fatalf("SignP384(high-S signer) error = %v", err)
		}
		if highS(sig) || !VerifyP384(&key.PublicKey, msg, sig) {
			t.Fatal("SignP384 returned a high-S or invalid signature")
		}
		r, s, _ := parseDER(sig)
		twin, _ := asn1.Marshal(struct{ R, S *big.Int }{r, new(big.Int).Sub(n, s)})
		digest := sha512.Sum384(msg)
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], twin) {
			t.Fatal("the twin is not a valid ECDSA signature")
		}
		if VerifyP384(&key.PublicKey, msg, twin) {
			t.Fatal("VerifyP384 accepted the high-S twin")
		}
	}
}
