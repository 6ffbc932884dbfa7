package primitive

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

type hkdfFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		Tests []struct {
			TcID    int               `json:"tcId"`
			Comment string            `json:"comment"`
			Flags   []string          `json:"flags"`
			Ikm     wycheproof.Hex    `json:"ikm"`
			Salt    wycheproof.Hex    `json:"salt"`
			Info    wycheproof.Hex    `json:"info"`
			Size    int               `json:"size"`
			Okm     wycheproof.Hex    `json:"okm"`
			Result  wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproofHKDF runs hkdf_sha256_test.json: valid vectors must derive
// okm; the invalid ones ask for more than 255 blocks and must be refused.
func TestWycheproofHKDF(t *testing.T) {
	var f hkdfFile
	wycheproof.Load(t, "hkdf_sha256_test.json", &f)
	if f.Algorithm != "HKDF-SHA-256" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	var ran tally
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				defer describe(t, tc.TcID, tc.Comment, tc.Flags, tc.Result)
				okm, err := HKDF(tc.Ikm, tc.Salt, tc.Info, tc.Size)
				if tc.Result != wycheproof.Valid {
					if !errors.Is(err, ErrParameter) || okm != nil {
						t.Fatalf("HKDF = %x, %v; want ErrParameter", okm, err)
					}
					return
				}
				if err != nil || !bytes.Equal(okm, tc.Okm) || len(okm) != tc.Size {
					t.Fatalf("HKDF = %x, %v; want %x", okm, err, tc.Okm)
				}
			})
			ran.add(tc.Result)
		}
	}
	ran.check(t, tally{valid: 83, invalid: 3}, f.NumberOfTests)
}

func TestHKDFLengths(t *testing.T) {
	for _, n := range []int{-1, 0, MaxHKDFLen + 1} {
		if k, err := HKDF([]byte("secret"), nil, nil, n); !errors.Is(err, ErrParameter) || k != nil {
			t.Errorf("n=%d: %x, %v; want ErrParameter", n, k, err)
		}
	}
	full, err := HKDF([]byte("secret"), []byte("salt"), []byte("info"), MaxHKDFLen)
	if err != nil || len(full) != MaxHKDFLen {
		t.Fatalf("n=%d: %d bytes, %v", MaxHKDFLen, len(full), err)
	}
	// Shorter outputs are prefixes of longer ones; other inputs differ.
	k1, err := HKDF([]byte("secret"), []byte("salt"), []byte("info"), 1)
	if err != nil || !bytes.Equal(k1, full[:1]) {
		t.Fatalf("n=1: %x, %v; want %x", k1, err, full[:1])
	}
	k, _ := HKDF([]byte("secret"), []byte("salt"), []byte("inf0"), 32)
	if bytes.Equal(k, full[:32]) {
		t.Fatal("info ignored")
	}
}
