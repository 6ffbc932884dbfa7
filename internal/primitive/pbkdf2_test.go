package primitive

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

type pbkdfFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		Tests []struct {
			TcID           int               `json:"tcId"`
			Comment        string            `json:"comment"`
			Flags          []string          `json:"flags"`
			Password       wycheproof.Hex    `json:"password"`
			Salt           wycheproof.Hex    `json:"salt"`
			IterationCount int               `json:"iterationCount"`
			DkLen          int               `json:"dkLen"`
			Dk             wycheproof.Hex    `json:"dk"`
			Result         wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproofPBKDF2 runs pbkdf2_hmacsha256_test.json. All 60 vectors are
// valid; one has 80000 iterations and the rest 1 or 4096.
func TestWycheproofPBKDF2(t *testing.T) {
	var f pbkdfFile
	wycheproof.Load(t, "pbkdf2_hmacsha256_test.json", &f)
	if f.Algorithm != "PBKDF2-HMACSHA256" {
		t.Fatalf("algorithm %q", f.Algorithm)
	}
	var ran tally
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				defer describe(t, tc.TcID, tc.Comment, tc.Flags, tc.Result)
				dk, err := PBKDF2(tc.Password, tc.Salt, tc.IterationCount, tc.DkLen)
				if tc.Result != wycheproof.Valid {
					if err == nil {
						t.Fatalf("PBKDF2 = %x; want an error", dk)
					}
					return
				}
				if err != nil || !bytes.Equal(dk, tc.Dk) {
					t.Fatalf("PBKDF2 = %x, %v; want %x", dk, err, tc.Dk)
				}
			})
			ran.add(tc.Result)
		}
	}
	ran.check(t, tally{valid: 60}, f.NumberOfTests)
}

func TestPBKDF2Parameters(t *testing.T) {
	for _, tt := range []struct{ iter, n int }{{0, 32}, {-1, 32}, {1, 0}, {1, -5}} {
		if dk, err := PBKDF2([]byte("pw"), []byte("salt"), tt.iter, tt.n); !errors.Is(err, ErrParameter) || dk != nil {
			t.Errorf("iter=%d n=%d: %x, %v; want ErrParameter", tt.iter, tt.n, dk, err)
		}
	}
	dk, err := PBKDF2([]byte("pw"), []byte("salt"), 2, 1)
	if err != nil || len(dk) != 1 {
		t.Fatalf("n=1: %x, %v", dk, err)
	}
}

func BenchmarkPBKDF2_100000(b *testing.B) {
	password, salt := []byte("correct horse battery staple"), make([]byte, 16)
	for b.Loop() {
		if _, err := PBKDF2(password, salt, 100000, 32); err != nil {
			b.Fatal(err)
		}
	}
}
