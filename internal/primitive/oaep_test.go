package primitive

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strconv"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

type oaepFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize         int            `json:"keySize"`
		Sha             string         `json:"sha"`
		MgfSha          string         `json:"mgfSha"`
		PrivateKeyPkcs8 wycheproof.Hex `json:"privateKeyPkcs8"`
		Tests           []struct {
			TcID    int               `json:"tcId"`
			Comment string            `json:"comment"`
			Flags   []string          `json:"flags"`
			Msg     wycheproof.Hex    `json:"msg"`
			Ct      wycheproof.Hex    `json:"ct"`
			Label   wycheproof.Hex    `json:"label"`
			Result  wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// hashes maps Wycheproof hash names to crypto.Hash. Names it lacks map to
// the zero Hash, which the policy refuses like any other.
var hashes = map[string]crypto.Hash{
	"SHA-1":       crypto.SHA1,
	"SHA-224":     crypto.SHA224,
	"SHA-256":     crypto.SHA256,
	"SHA-384":     crypto.SHA384,
	"SHA-512":     crypto.SHA512,
	"SHA-512/224": crypto.SHA512_224,
	"SHA-512/256": crypto.SHA512_256,
}

// runOAEP runs an RSAES-OAEP decryption vector file through DecryptOAEP.
//
// Vectors whose parameters are in policy (modulus of at least 2048 bits,
// OAEP hash SHA-256, SHA-512 or SHA-1, MGF1 over the same hash) must behave
// as the file says: a valid vector with an empty label must decrypt with
// DecryptOAEP; a valid vector with a label must decrypt through the same
// code with that label (decryptOAEP) and be refused by DecryptOAEP, whose
// label is empty; invalid and acceptable vectors must be refused with
// ErrDecrypt. Every valid message must also round-trip through EncryptOAEP
// (for moduli up to 4096 bits, to save time).
//
// Vectors outside the policy must be refused whatever their result: with an
// error wrapping ErrParameter for a small modulus or a hash not allowed, and
// with ErrDecrypt for an MGF1 hash other than the OAEP hash (the API cannot
// express one).
func runOAEP(t *testing.T, file string) (tally, int) {
	var f oaepFile
	wycheproof.Load(t, file, &f)
	if f.Algorithm != "RSAES-OAEP" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	var ran tally
	for _, g := range f.TestGroups {
		k, err := x509.ParsePKCS8PrivateKey(g.PrivateKeyPkcs8)
		if err != nil {
			t.Fatalf("%d-bit key: %v", g.KeySize, err)
		}
		priv, ok := k.(*rsa.PrivateKey)
		if !ok || priv.N.BitLen() != g.KeySize {
			t.Fatalf("group key is %T, want a %d-bit RSA key", k, g.KeySize)
		}
		h := hashes[g.Sha]
		hashOK := h == crypto.SHA256 || h == crypto.SHA512 || h == crypto.SHA1
		paramOK := hashOK && g.KeySize >= 2048
		inPolicy := paramOK && g.MgfSha == g.Sha
		for _, tc := range g.Tests {
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				defer describe(t, tc.TcID, tc.Comment, tc.Flags, tc.Result)
				m, err := DecryptOAEP(priv, h, tc.Ct)
				mLabel, errLabel := m, err
				if len(tc.Label) > 0 {
					mLabel, errLabel = decryptOAEP(priv, h, tc.Ct, tc.Label)
				}
				switch {
				case !paramOK:
					if !errors.Is(err, ErrParameter) || !errors.Is(errLabel, ErrParameter) || m != nil || mLabel != nil {
						t.Fatalf("%d bits, %s: got %v and %v, want ErrParameter", g.KeySize, g.Sha, err, errLabel)
					}
				case !inPolicy || tc.Result != wycheproof.Valid:
					if err != ErrDecrypt || errLabel != ErrDecrypt || m != nil || mLabel != nil {
						t.Fatalf("got %x, %v and %x, %v; want ErrDecrypt", m, err, mLabel, errLabel)
					}
				default:
					if errLabel != nil || !bytes.Equal(mLabel, tc.Msg) {
						t.Fatalf("decryptOAEP = %x, %v; want %x", mLabel, errLabel, tc.Msg)
					}
					if len(tc.Label) == 0 {
						if err != nil || !bytes.Equal(m, tc.Msg) {
							t.Fatalf("DecryptOAEP = %x, %v; want %x", m, err, tc.Msg)
						}
					} else if err != ErrDecrypt || m != nil {
						t.Fatalf("DecryptOAEP ignored the label: %x, %v", m, err)
					}
					if g.KeySize > 4096 {
						return // a round trip costs two 8192-bit decryptions
					}
					c, err := EncryptOAEP(&priv.PublicKey, h, tc.Msg)
					if err != nil {
						t.Fatal(err)
					}
					if m, err := DecryptOAEP(priv, h, c); err != nil || !bytes.Equal(m, tc.Msg) {
						t.Fatalf("round trip: %x, %v", m, err)
					}
				}
			})
			if inPolicy {
				ran.add(tc.Result)
			} else {
				ran.refused++
			}
		}
	}
	return ran, f.NumberOfTests
}

func TestWycheproofOAEP(t *testing.T) {
	for _, tt := range []struct {
		file string
		want tally
	}{
		{"rsa_oaep_2048_sha256_mgf1sha256_test.json", tally{valid: 18, invalid: 19}},
		{"rsa_oaep_3072_sha256_mgf1sha256_test.json", tally{valid: 18, invalid: 19}},
		{"rsa_oaep_4096_sha256_mgf1sha256_test.json", tally{valid: 18, invalid: 19}},
		{"rsa_oaep_2048_sha512_mgf1sha512_test.json", tally{valid: 14, invalid: 19}},
		{"rsa_oaep_3072_sha512_mgf1sha512_test.json", tally{valid: 15, invalid: 18}},
		{"rsa_oaep_4096_sha512_mgf1sha512_test.json", tally{valid: 17, invalid: 19}},
		{"rsa_oaep_2048_sha1_mgf1sha1_test.json", tally{valid: 17, invalid: 19}},
		// Keys from 1024 to 8192 bits with every pair of SHA-1 and SHA-2
		// hashes for OAEP and MGF1: mostly parameter sets the policy
		// refuses.
		{"rsa_oaep_misc_test.json", tally{valid: 47, acceptable: 2, refused: 346}},
		// An MGF1 hash different from the OAEP hash: always refused.
		{"rsa_oaep_2048_sha256_mgf1sha1_test.json", tally{refused: 31}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			ran, n := runOAEP(t, tt.file)
			ran.check(t, tt.want, n)
		})
	}
}

func TestOAEPPolicy(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("data encryption key")
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA512, crypto.SHA1} {
		c, err := EncryptOAEP(&priv.PublicKey, h, msg)
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		if m, err := DecryptOAEP(priv, h, c); err != nil || !bytes.Equal(m, msg) {
			t.Fatalf("%v: round trip: %q, %v", h, m, err)
		}
		// The standard library with the same parameters agrees.
		if m, err := rsa.DecryptOAEP(h.New(), nil, priv, c, nil); err != nil || !bytes.Equal(m, msg) {
			t.Fatalf("%v: standard library: %q, %v", h, m, err)
		}
		if _, err := EncryptOAEP(&small.PublicKey, h, msg); !errors.Is(err, ErrParameter) {
			t.Errorf("%v: 1024-bit key: %v", h, err)
		}
		if _, err := DecryptOAEP(small, h, make([]byte, small.Size())); !errors.Is(err, ErrParameter) {
			t.Errorf("%v: 1024-bit key: %v", h, err)
		}
		// A ciphertext with an extra leading zero byte is refused.
		if _, err := DecryptOAEP(priv, h, append([]byte{0}, c...)); err != ErrDecrypt {
			t.Errorf("%v: long ciphertext: %v", h, err)
		}
	}
	// A ciphertext must be exactly as long as the modulus (RFC 8017,
	// 7.1.2, step 1): one that starts with a zero byte is refused without
	// it, although the standard library accepts it.
	var c []byte
	for range 20000 {
		var err error
		if c, err = EncryptOAEP(&priv.PublicKey, crypto.SHA256, msg); err != nil {
			t.Fatal(err)
		}
		if c[0] == 0 {
			break
		}
	}
	if c[0] != 0 {
		t.Fatal("no ciphertext with a leading zero byte")
	}
	if m, err := rsa.DecryptOAEP(crypto.SHA256.New(), nil, priv, c[1:], nil); err != nil || !bytes.Equal(m, msg) {
		t.Fatalf("standard library: %q, %v", m, err)
	}
	if m, err := DecryptOAEP(priv, crypto.SHA256, c[1:]); err != ErrDecrypt || m != nil {
		t.Errorf("short ciphertext: %q, %v; want ErrDecrypt", m, err)
	}
	if m, err := DecryptOAEP(priv, crypto.SHA256, c); err != nil || !bytes.Equal(m, msg) {
		t.Errorf("full-length ciphertext: %q, %v", m, err)
	}
	for _, h := range []crypto.Hash{0, crypto.SHA224, crypto.SHA384, crypto.MD5, crypto.SHA3_256, crypto.SHA512_256} {
		if _, err := EncryptOAEP(&priv.PublicKey, h, msg); !errors.Is(err, ErrParameter) {
			t.Errorf("%v: EncryptOAEP: %v", h, err)
		}
		if _, err := DecryptOAEP(priv, h, make([]byte, priv.Size())); !errors.Is(err, ErrParameter) {
			t.Errorf("%v: DecryptOAEP: %v", h, err)
		}
	}
	// A ciphertext the standard library would decrypt under a 1024-bit key
	// is refused.
	sc, err := rsa.EncryptOAEP(crypto.SHA256.New(), rand.Reader, &small.PublicKey, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptOAEP(small, crypto.SHA256, sc); !errors.Is(err, ErrParameter) {
		t.Errorf("1024-bit key: %v", err)
	}
	if _, err := EncryptOAEP(nil, crypto.SHA256, msg); !errors.Is(err, ErrParameter) {
		t.Errorf("nil public key: %v", err)
	}
	if _, err := DecryptOAEP(nil, crypto.SHA256, msg); !errors.Is(err, ErrParameter) {
		t.Errorf("nil private key: %v", err)
	}
	// Ciphertexts 0, 1 and n-1 are refused before decryption (SP 800-56B).
	k := priv.Size()
	nm1 := priv.N.FillBytes(make([]byte, k))
	nm1[k-1]-- // n is odd, so this does not borrow
	for _, c := range [][]byte{make([]byte, k), append(make([]byte, k-1), 1), nm1, priv.N.FillBytes(make([]byte, k))} {
		if _, err := DecryptOAEP(priv, crypto.SHA256, c); err != ErrDecrypt {
			t.Errorf("ciphertext %x...: %v", c[k-4:], err)
		}
	}
}
