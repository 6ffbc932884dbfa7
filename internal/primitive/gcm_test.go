package primitive

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"strconv"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

type aeadFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int `json:"keySize"`
		IvSize  int `json:"ivSize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID    int               `json:"tcId"`
			Comment string            `json:"comment"`
			Flags   []string          `json:"flags"`
			Key     wycheproof.Hex    `json:"key"`
			Iv      wycheproof.Hex    `json:"iv"`
			Aad     wycheproof.Hex    `json:"aad"`
			Msg     wycheproof.Hex    `json:"msg"`
			Ct      wycheproof.Hex    `json:"ct"`
			Tag     wycheproof.Hex    `json:"tag"`
			Result  wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// stdlibOpen opens nonce || ciphertext || tag with the standard library
// directly, independently of Open.
func stdlibOpen(t *testing.T, key, sealed, aad []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Open(nil, sealed[:NonceSize], sealed[NonceSize:], aad)
	if err != nil {
		t.Fatalf("standard library cannot open Seal's output: %v", err)
	}
	return p
}

// checkOpenFails checks that Open refuses sealed with exactly ErrDecrypt.
func checkOpenFails(t *testing.T, key secret.Key, sealed, aad []byte) {
	t.Helper()
	if p, err := Open(key, sealed, aad); err != ErrDecrypt || p != nil {
		t.Errorf("Open = %x, %v; want nil, ErrDecrypt", p, err)
	}
}

// TestWycheproofAESGCM runs aes_gcm_test.json. The vectors with a 256-bit
// key, 96-bit IV and 128-bit tag go through Open as IV || ct || tag: valid
// ones must open to msg (and msg must seal to something Open and the
// standard library both open to msg); invalid ones must fail. Every other
// vector is of a parameter set Strongroom refuses: a 128- or 192-bit key
// cannot become a secret.Key, and with a 256-bit key Open must refuse
// IV || ct || tag whatever the IV length.
func TestWycheproofAESGCM(t *testing.T) {
	var f aeadFile
	wycheproof.Load(t, "aes_gcm_test.json", &f)
	if f.Algorithm != "AES-GCM" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	var ran tally
	refusedKey, refusedIV := 0, 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			if len(tc.Key)*8 != g.KeySize || len(tc.Iv)*8 != g.IvSize || len(tc.Tag)*8 != g.TagSize {
				t.Fatalf("tcId %d: sizes do not match its group", tc.TcID)
			}
			sealed := append(append(append([]byte(nil), tc.Iv...), tc.Ct...), tc.Tag...)
			inPolicy := g.KeySize == 256 && g.IvSize == 96 && g.TagSize == 128
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				defer describe(t, tc.TcID, tc.Comment, tc.Flags, tc.Result)
				key, err := secret.New(tc.Key)
				if g.KeySize != 256 {
					if err == nil {
						t.Fatalf("secret.New accepted a %d-bit key", g.KeySize)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !inPolicy || tc.Result != wycheproof.Valid {
					checkOpenFails(t, key, sealed, tc.Aad)
					return
				}
				p, err := Open(key, sealed, tc.Aad)
				if err != nil || !bytes.Equal(p, tc.Msg) {
					t.Fatalf("Open = %x, %v; want %x", p, err, tc.Msg)
				}
				s, err := Seal(key, tc.Msg, tc.Aad)
				if err != nil || len(s) != len(tc.Msg)+Overhead {
					t.Fatalf("Seal: %d bytes, %v", len(s), err)
				}
				if p, err := Open(key, s, tc.Aad); err != nil || !bytes.Equal(p, tc.Msg) {
					t.Fatalf("Open(Seal) = %x, %v; want %x", p, err, tc.Msg)
				}
				if p := stdlibOpen(t, tc.Key, s, tc.Aad); !bytes.Equal(p, tc.Msg) {
					t.Fatalf("standard library opens Seal's output to %x, want %x", p, tc.Msg)
				}
			})
			switch {
			case inPolicy:
				ran.add(tc.Result)
			case g.KeySize != 256:
				refusedKey++
				ran.refused++
			default:
				refusedIV++
				ran.refused++
			}
		}
	}
	ran.check(t, tally{valid: 39, invalid: 27, refused: 250}, f.NumberOfTests)
	if refusedKey != 211 || refusedIV != 39 {
		t.Errorf("refused %d vectors for their key size and %d for their IV size, want 211 and 39", refusedKey, refusedIV)
	}
}

func testKey(t testing.TB, b byte) secret.Key {
	k, err := secret.New(bytes.Repeat([]byte{b}, secret.Size))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	key, other := testKey(t, 1), testKey(t, 2)
	for _, n := range []int{0, 1, 15, 16, 17, 1024} {
		msg := bytes.Repeat([]byte{0xab}, n)
		aad := []byte("tenant=7")
		s1, err := Seal(key, msg, aad)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := Seal(key, msg, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(s1) != n+Overhead || bytes.Equal(s1[:NonceSize], s2[:NonceSize]) {
			t.Fatalf("%d bytes: sealed lengths %d, nonces %x and %x", n, len(s1), s1[:NonceSize], s2[:NonceSize])
		}
		for _, s := range [][]byte{s1, s2} {
			if p, err := Open(key, s, aad); err != nil || !bytes.Equal(p, msg) {
				t.Fatalf("%d bytes: Open = %x, %v", n, p, err)
			}
		}
		checkOpenFails(t, other, s1, aad)
		checkOpenFails(t, key, s1, []byte("tenant=8"))
		checkOpenFails(t, key, s1, nil)
		checkOpenFails(t, key, s1[:len(s1)-1], aad)
		checkOpenFails(t, key, append(append([]byte(nil), s1...), 0), aad)
		for i := range 8 * len(s1) {
			s1[i/8] ^= 1 << (i % 8)
			checkOpenFails(t, key, s1, aad)
			s1[i/8] ^= 1 << (i % 8)
		}
	}
	for n := range Overhead {
		checkOpenFails(t, key, make([]byte, n), nil)
	}
}

func TestGCMEmptyKey(t *testing.T) {
	if _, err := Seal(secret.Key{}, []byte("x"), nil); !errors.Is(err, ErrParameter) {
		t.Errorf("Seal with an empty key: %v", err)
	}
	if _, err := Open(secret.Key{}, make([]byte, 40), nil); !errors.Is(err, ErrParameter) {
		t.Errorf("Open with an empty key: %v", err)
	}
}

// FuzzOpen checks that Open never panics and either fails with exactly
// ErrDecrypt or returns what the standard library returns; and that sealing
// the input round-trips and a flipped bit is detected.
func FuzzOpen(f *testing.F) {
	k := bytes.Repeat([]byte{7}, 32)
	f.Add(k, make([]byte, Overhead), []byte{}, uint16(0))
	f.Add(k, []byte("short"), []byte("aad"), uint16(3))
	f.Fuzz(func(t *testing.T, keyBytes, sealed, aad []byte, flip uint16) {
		key, err := secret.New(keyBytes)
		if err != nil {
			return
		}
		p, err := Open(key, sealed, aad)
		if err != nil {
			if err != ErrDecrypt || p != nil {
				t.Fatalf("Open = %x, %v; want nil, ErrDecrypt", p, err)
			}
		} else if want := stdlibOpen(t, keyBytes, sealed, aad); !bytes.Equal(p, want) {
			t.Fatalf("Open = %x, standard library %x", p, want)
		}

		s, err := Seal(key, sealed, aad)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := Open(key, s, aad); err != nil || !bytes.Equal(p, sealed) {
			t.Fatalf("round trip: %x, %v", p, err)
		}
		bit := int(flip) % (8 * len(s))
		s[bit/8] ^= 1 << (bit % 8)
		checkOpenFails(t, key, s, aad)
	})
}

func BenchmarkSeal1K(b *testing.B) {
	key, msg, aad := testKey(b, 1), make([]byte, 1024), []byte("aad")
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Seal(key, msg, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen1K(b *testing.B) {
	key, aad := testKey(b, 1), []byte("aad")
	s, err := Seal(key, make([]byte, 1024), aad)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := Open(key, s, aad); err != nil {
			b.Fatal(err)
		}
	}
}
