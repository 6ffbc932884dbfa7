package siv

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// split makes the S2V and CTR ciphers of an RFC 5297 key K1 || K2 of 32, 48
// or 64 bytes.
func split(t testing.TB, key []byte) (*aesPair, bool) {
	t.Helper()
	if len(key)%2 != 0 {
		return nil, false
	}
	m, err := aes.NewCipher(key[:len(key)/2])
	if err != nil {
		return nil, false
	}
	e, err := aes.NewCipher(key[len(key)/2:])
	if err != nil {
		return nil, false
	}
	return &aesPair{m, e}, true
}

type aesPair struct{ mac, enc cipher.Block }

// TestRFC5297A1 is RFC 5297 Appendix A.1, deterministic authenticated
// encryption with a 256-bit key (AES-128 halves), through the construction
// the exported API runs with AES-256 halves.
func TestRFC5297A1(t *testing.T) {
	key := unhex(t, `fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff`)
	ad := unhex(t, `10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627`)
	pt := unhex(t, `11223344 55667788 99aabbcc ddee`)
	want := unhex(t, `85632d07 c6e8f37f 950acd32 0a2ecc93 40c02b96 90c4dc04 daef7f6a fe5c`)
	p, _ := split(t, key)
	// The RFC's intermediate values of S2V.
	if got, want := s2v(p.mac, ad, pt), unhex(t, `85632d07 c6e8f37f 950acd32 0a2ecc93`); !bytes.Equal(got[:], want) {
		t.Errorf("S2V = %x, want %x", got, want)
	}
	if got := seal(p.mac, p.enc, pt, ad); !bytes.Equal(got, want) {
		t.Errorf("seal(A.1) = %x, want %x", got, want)
	}
	if got, ok := open(p.mac, p.enc, want, ad); !ok || !bytes.Equal(got, pt) {
		t.Errorf("open(A.1) = %x, %v, want %x", got, ok, pt)
	}
	bad := bytes.Clone(want)
	bad[len(bad)-1] ^= 1
	if got, ok := open(p.mac, p.enc, bad, ad); ok || got != nil {
		t.Errorf("open(A.1 altered) = %x, %v, want nil, false", got, ok)
	}
}

// TestRFC4493 checks CMAC alone on the AES-128 examples of RFC 4493 section 4.
func TestRFC4493(t *testing.T) {
	block, err := aes.NewCipher(unhex(t, `2b7e1516 28aed2a6 abf71588 09cf4f3c`))
	if err != nil {
		t.Fatal(err)
	}
	msg := unhex(t, `6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51
		30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710`)
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, `bb1d6929 e9593728 7fa37d12 9b756746`},
		{16, `070a16b4 6b4d4144 f79bdd9d d04a287c`},
		{40, `dfa66747 de9ae630 30ca3261 1497c827`},
		{64, `51f0bebf 7e3b9d92 fc497417 79363cfe`},
	} {
		c := newCMAC(block)
		if got := c.sum(msg[:tc.n]); !bytes.Equal(got[:], unhex(t, tc.want)) {
			t.Errorf("CMAC(%d bytes) = %x, want %s", tc.n, got, tc.want)
		}
	}
}

type daeadFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int `json:"keySize"`
		Tests   []struct {
			TcID    int               `json:"tcId"`
			Comment string            `json:"comment"`
			Flags   []string          `json:"flags"`
			Key     wycheproof.Hex    `json:"key"`
			Aad     wycheproof.Hex    `json:"aad"`
			Msg     wycheproof.Hex    `json:"msg"`
			Ct      wycheproof.Hex    `json:"ct"`
			Result  wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproof runs every vector of aes_siv_cmac_test.json: the 512-bit
// keys (AES-SIV-CMAC-512, what Strongroom uses) through the exported Seal
// and Open, the 256- and 384-bit keys through the same construction with
// AES-128 and AES-192 halves (the exported API cannot take them).
func TestWycheproof(t *testing.T) {
	var f daeadFile
	wycheproof.Load(t, "aes_siv_cmac_test.json", &f)
	if f.Algorithm != "AES-SIV-CMAC" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	ran := map[int]map[wycheproof.Result]int{}
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			if ran[g.KeySize] == nil {
				ran[g.KeySize] = map[wycheproof.Result]int{}
			}
			ran[g.KeySize][tc.Result]++
			var seal func(pt, aad []byte) []byte
			var open func(ct, aad []byte) ([]byte, bool)
			if g.KeySize == 512 {
				mac, err1 := secret.New(tc.Key[:32])
				enc, err2 := secret.New(tc.Key[32:])
				if err1 != nil || err2 != nil {
					t.Fatalf("tcId %d: key of %d bytes", tc.TcID, len(tc.Key))
				}
				seal = func(pt, aad []byte) []byte { return Seal(mac, enc, pt, aad) }
				open = func(ct, aad []byte) ([]byte, bool) {
					pt, err := Open(mac, enc, ct, aad)
					if err != nil && err != ErrDecrypt {
						t.Errorf("tcId %d: Open error %v, want ErrDecrypt", tc.TcID, err)
					}
					return pt, err == nil
				}
			} else {
				p, ok := split(t, tc.Key)
				if !ok || len(tc.Key)*8 != g.KeySize {
					t.Fatalf("tcId %d: key of %d bytes in a %d-bit group", tc.TcID, len(tc.Key), g.KeySize)
				}
				seal = func(pt, aad []byte) []byte { return sealWith(p, pt, aad) }
				open = func(ct, aad []byte) ([]byte, bool) { return openWith(p, ct, aad) }
			}
			pt, ok := open(tc.Ct, tc.Aad)
			switch tc.Result {
			case wycheproof.Valid:
				if !ok || !bytes.Equal(pt, tc.Msg) {
					t.Errorf("tcId %d (%d-bit key, %s): open = %x, %v, want %x", tc.TcID, g.KeySize, tc.Comment, pt, ok, tc.Msg)
				}
				if ct := seal(tc.Msg, tc.Aad); !bytes.Equal(ct, tc.Ct) {
					t.Errorf("tcId %d (%d-bit key, %s): seal = %x, want %x", tc.TcID, g.KeySize, tc.Comment, ct, tc.Ct)
				}
			default: // invalid and acceptable are both refused
				if ok || pt != nil {
					t.Errorf("tcId %d (%d-bit key, %s, %s): open = %x, %v, want a refusal", tc.TcID, g.KeySize, tc.Comment, tc.Result, pt, ok)
				}
			}
		}
	}
	want := map[int]map[wycheproof.Result]int{
		256: {wycheproof.Valid: 40, wycheproof.Invalid: 108},
		384: {wycheproof.Valid: 39, wycheproof.Invalid: 108},
		512: {wycheproof.Valid: 39, wycheproof.Invalid: 108},
	}
	total := 0
	for size, w := range want {
		for r, n := range w {
			total += n
			if ran[size][r] != n {
				t.Errorf("%d-bit keys: ran %d %s vectors, want %d", size, ran[size][r], r, n)
			}
		}
	}
	if total != f.NumberOfTests {
		t.Errorf("expected %d vectors, the file has %d", total, f.NumberOfTests)
	}
}

func sealWith(p *aesPair, pt, aad []byte) []byte { return seal(p.mac, p.enc, pt, aad) }
func openWith(p *aesPair, ct, aad []byte) ([]byte, bool) {
	return open(p.mac, p.enc, ct, aad)
}

func testKeys(t testing.TB) (secret.Key, secret.Key) {
	t.Helper()
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(i)
	}
	mac, _ := secret.New(b[:32])
	enc, _ := secret.New(b[32:])
	return mac, enc
}

func TestDeterministic(t *testing.T) {
	mac, enc := testKeys(t)
	for _, n := range []int{0, 1, 15, 16, 17, 32, 1000} {
		pt := bytes.Repeat([]byte{'p'}, n)
		a, b := Seal(mac, enc, pt, []byte("ad")), Seal(mac, enc, pt, []byte("ad"))
		if !bytes.Equal(a, b) || len(a) != n+Overhead {
			t.Errorf("Seal(%d bytes) twice = %x, %x: want equal, %d bytes", n, a, b, n+Overhead)
		}
		if c := Seal(mac, enc, pt, []byte("ae")); bytes.Equal(a, c) {
			t.Errorf("Seal(%d bytes) under other associated data gave the same ciphertext", n)
		}
		if got, err := Open(mac, enc, a, []byte("ad")); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Open(Seal(%d bytes)) = %x, %v", n, got, err)
		}
		if got, err := Open(mac, enc, a, []byte("ae")); err != ErrDecrypt || got != nil {
			t.Errorf("Open(other associated data) = %x, %v, want ErrDecrypt", got, err)
		}
		// The halves are not interchangeable.
		if got, err := Open(enc, mac, a, []byte("ad")); err != ErrDecrypt || got != nil {
			t.Errorf("Open(keys swapped) = %x, %v, want ErrDecrypt", got, err)
		}
		for i := range a {
			bad := bytes.Clone(a)
			bad[i] ^= 0x40
			if got, err := Open(mac, enc, bad, []byte("ad")); err != ErrDecrypt || got != nil {
				t.Fatalf("Open(byte %d altered) = %x, %v, want ErrDecrypt", i, got, err)
			}
		}
	}
	for n := range Overhead {
		if got, err := Open(mac, enc, make([]byte, n), nil); err != ErrDecrypt || got != nil {
			t.Errorf("Open(%d bytes) = %x, %v, want ErrDecrypt", n, got, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	mac, enc := testKeys(f)
	f.Add(Seal(mac, enc, []byte("fuzz me"), []byte("ad")), []byte("ad"))
	f.Add(Seal(mac, enc, nil, nil), []byte{})
	f.Fuzz(func(t *testing.T, ct, aad []byte) {
		pt, err := Open(mac, enc, ct, aad)
		if err != nil {
			if err != ErrDecrypt || pt != nil {
				t.Fatalf("Open() = %x, %v: every failure must be ErrDecrypt alone", pt, err)
			}
			return
		}
		if !bytes.Equal(Seal(mac, enc, pt, aad), ct) {
			t.Fatal("Open() accepted a ciphertext that Seal does not make")
		}
	})
}

func BenchmarkSeal1KiB(b *testing.B) {
	mac, enc := testKeys(b)
	pt := make([]byte, 1024)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		Seal(mac, enc, pt, []byte("associated data"))
	}
}

func BenchmarkOpen1KiB(b *testing.B) {
	mac, enc := testKeys(b)
	ct := Seal(mac, enc, make([]byte, 1024), []byte("associated data"))
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(mac, enc, ct, []byte("associated data")); err != nil {
			b.Fatal(err)
		}
	}
}
