package primitive

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strconv"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

type macFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int `json:"keySize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID    int               `json:"tcId"`
			Comment string            `json:"comment"`
			Flags   []string          `json:"flags"`
			Key     wycheproof.Hex    `json:"key"`
			Msg     wycheproof.Hex    `json:"msg"`
			Tag     wycheproof.Hex    `json:"tag"`
			Result  wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproofHMAC runs hmac_sha256_test.json. With full 256-bit tags,
// VerifyHMAC must accept exactly the valid vectors and HMAC must compute
// their tags. Vectors with tags truncated to 128 bits are a parameter set
// VerifyHMAC refuses (it never accepts a short tag, valid or not); for those
// the test checks that a valid tag is a prefix of HMAC's output and an
// invalid one is not.
func TestWycheproofHMAC(t *testing.T) {
	var f macFile
	wycheproof.Load(t, "hmac_sha256_test.json", &f)
	if f.Algorithm != "HMACSHA256" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	var ran tally
	truncValid, truncInvalid := 0, 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			if len(tc.Key)*8 != g.KeySize || len(tc.Tag)*8 != g.TagSize {
				t.Fatalf("tcId %d: sizes do not match its group", tc.TcID)
			}
			t.Run(strconv.Itoa(tc.TcID)+"/"+strconv.Itoa(g.TagSize), func(t *testing.T) {
				defer describe(t, tc.TcID, tc.Comment, tc.Flags, tc.Result)
				valid := tc.Result == wycheproof.Valid
				got := VerifyHMAC(tc.Key, tc.Msg, tc.Tag)
				tag := HMAC(tc.Key, tc.Msg)
				if g.TagSize != 8*HMACSize {
					if got {
						t.Fatalf("VerifyHMAC accepted a %d-bit tag", g.TagSize)
					}
					if prefix := bytes.Equal(tag[:len(tc.Tag)], tc.Tag); prefix != valid {
						t.Fatalf("tag is a prefix of HMAC = %v, want %v", prefix, valid)
					}
					return
				}
				if got != valid {
					t.Fatalf("VerifyHMAC = %v, want %v", got, valid)
				}
				if bytes.Equal(tag, tc.Tag) != valid {
					t.Fatalf("HMAC = %x, vector tag %x", tag, tc.Tag)
				}
			})
			switch {
			case g.TagSize == 8*HMACSize:
				ran.add(tc.Result)
			case tc.Result == wycheproof.Valid:
				truncValid++
				ran.refused++
			default:
				truncInvalid++
				ran.refused++
			}
		}
	}
	ran.check(t, tally{valid: 33, invalid: 54, refused: 87}, f.NumberOfTests)
	if truncValid != 33 || truncInvalid != 54 {
		t.Errorf("truncated-tag vectors: %d valid and %d invalid, want 33 and 54", truncValid, truncInvalid)
	}
}

func TestVerifyHMAC(t *testing.T) {
	key, msg := []byte("k"), []byte("message")
	tag := HMAC(key, msg)
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	if !bytes.Equal(tag, m.Sum(nil)) || len(tag) != HMACSize {
		t.Fatalf("HMAC = %x", tag)
	}
	if !VerifyHMAC(key, msg, tag) {
		t.Fatal("own tag refused")
	}
	for _, bad := range [][]byte{nil, {}, tag[:HMACSize-1], tag[:16], append(append([]byte(nil), tag...), 0)} {
		if VerifyHMAC(key, msg, bad) {
			t.Errorf("%d-byte tag accepted", len(bad))
		}
	}
	for i := range 8 * HMACSize {
		tag[i/8] ^= 1 << (i % 8)
		if VerifyHMAC(key, msg, tag) {
			t.Fatalf("bit %d flipped: accepted", i)
		}
		tag[i/8] ^= 1 << (i % 8)
	}
	if VerifyHMAC([]byte("K"), msg, tag) || VerifyHMAC(key, []byte("Message"), tag) {
		t.Fatal("tag accepted for another key or message")
	}
}
