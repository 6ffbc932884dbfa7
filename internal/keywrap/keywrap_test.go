package keywrap

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

// algo bundles one of the two algorithms so that the vector tests can run
// both through the same code.
type algo struct {
	name      string
	wrap      func(cipher.Block, []byte) ([]byte, error)
	unwrap    func(cipher.Block, []byte) ([]byte, error)
	wrappable func(n int) bool // whether wrap accepts n bytes of plaintext
}

var (
	kw  = algo{"KW", Wrap, Unwrap, func(n int) bool { return n >= 16 && n%8 == 0 }}
	kwp = algo{"KWP", WrapPad, UnwrapPad, func(n int) bool { return n >= 1 && uint64(n) <= maxKWPLen }}
)

func mustCipher(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatalf("key %x: %v", key, err)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// checkValid checks that plaintext and ciphertext correspond in both
// directions.
func checkValid(t *testing.T, a algo, kek cipher.Block, plaintext, ciphertext []byte) {
	t.Helper()
	got, err := a.wrap(kek, plaintext)
	if err != nil {
		t.Errorf("wrap: %v", err)
	} else if !bytes.Equal(got, ciphertext) {
		t.Errorf("wrap = %x, want %x", got, ciphertext)
	}
	got, err = a.unwrap(kek, ciphertext)
	if err != nil {
		t.Errorf("unwrap: %v", err)
	} else if !bytes.Equal(got, plaintext) {
		t.Errorf("unwrap = %x, want %x", got, plaintext)
	}
}

// checkRejected checks that ciphertext does not unwrap, with exactly
// ErrUnwrap and no output.
func checkRejected(t *testing.T, a algo, kek cipher.Block, ciphertext []byte) {
	t.Helper()
	got, err := a.unwrap(kek, ciphertext)
	if err != ErrUnwrap || got != nil {
		t.Errorf("unwrap(%x) = %x, %v; want nil, ErrUnwrap", ciphertext, got, err)
	}
}

// wycheproofKeywrap is the subset of keywrap_test_schema_v1.json we use.
type wycheproofKeywrap struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int `json:"keySize"`
		Tests   []struct {
			TcID    int               `json:"tcId"`
			Comment string            `json:"comment"`
			Flags   []string          `json:"flags"`
			Key     wycheproof.Hex    `json:"key"`
			Msg     wycheproof.Hex    `json:"msg"`
			Ct      wycheproof.Hex    `json:"ct"`
			Result  wycheproof.Result `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// runWycheproof runs every vector of file and returns how many ran per
// result. Valid vectors must wrap and unwrap exactly. Invalid and acceptable
// ones must be refused: the ciphertext must not unwrap, a plaintext of a
// length the algorithm cannot wrap must give ErrInput, and any other
// plaintext must not wrap to the given ciphertext.
func runWycheproof(t *testing.T, a algo, file, algorithm string) map[wycheproof.Result]int {
	var f wycheproofKeywrap
	wycheproof.Load(t, file, &f)
	if f.Algorithm != algorithm {
		t.Fatalf("%s: algorithm %q, want %q", file, f.Algorithm, algorithm)
	}
	ran := map[wycheproof.Result]int{}
	keySizes := map[int]int{}
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			if len(tc.Key)*8 != g.KeySize {
				t.Fatalf("tcId %d: %d-byte key in a %d-bit group", tc.TcID, len(tc.Key), g.KeySize)
			}
			keySizes[g.KeySize]++
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("vector: %q %v %s", tc.Comment, tc.Flags, tc.Result)
					}
				}()
				kek := mustCipher(t, tc.Key)
				if tc.Result == wycheproof.Valid {
					checkValid(t, a, kek, tc.Msg, tc.Ct)
					return
				}
				checkRejected(t, a, kek, tc.Ct)
				got, err := a.wrap(kek, tc.Msg)
				if !a.wrappable(len(tc.Msg)) {
					if err != ErrInput || got != nil {
						t.Errorf("wrap(%d bytes) = %x, %v; want nil, ErrInput", len(tc.Msg), got, err)
					}
				} else if err != nil || bytes.Equal(got, tc.Ct) {
					t.Errorf("wrap = %x, %v; want a ciphertext other than %x", got, err, tc.Ct)
				}
			})
			ran[tc.Result]++
		}
	}
	n := ran[wycheproof.Valid] + ran[wycheproof.Invalid] + ran[wycheproof.Acceptable]
	if n != f.NumberOfTests {
		t.Errorf("%s: ran %d vectors, header says %d", file, n, f.NumberOfTests)
	}
	for _, bits := range []int{128, 192, 256} {
		if keySizes[bits] == 0 {
			t.Errorf("%s: no vectors with %d-bit keys", file, bits)
		}
	}
	return ran
}

func TestWycheproofKW(t *testing.T) {
	ran := runWycheproof(t, kw, "aes_wrap_test.json", "AES-WRAP")
	want := map[wycheproof.Result]int{wycheproof.Valid: 36, wycheproof.Invalid: 126, wycheproof.Acceptable: 3}
	checkCounts(t, ran, want, 165)
}

func TestWycheproofKWP(t *testing.T) {
	ran := runWycheproof(t, kwp, "aes_kwp_test.json", "AES-KWP")
	want := map[wycheproof.Result]int{wycheproof.Valid: 77, wycheproof.Invalid: 177}
	checkCounts(t, ran, want, 254)
}

func checkCounts(t *testing.T, ran, want map[wycheproof.Result]int, total int) {
	t.Helper()
	n := 0
	for _, r := range []wycheproof.Result{wycheproof.Valid, wycheproof.Invalid, wycheproof.Acceptable} {
		n += ran[r]
		if ran[r] != want[r] {
			t.Errorf("ran %d %s vectors, want %d", ran[r], r, want[r])
		}
	}
	if n != total {
		t.Fatalf("ran %d vectors, want %d", n, total)
	}
}

// cavpRecord is one COUNT block of a CAVP-style response file.
type cavpRecord struct {
	line    int               // line of the COUNT field
	section string            // the last [..] header, e.g. "PLAINTEXT LENGTH = 128"
	fields  map[string]string // upper-cased names: COUNT, K, P, C, KEY, ...
	fail    bool              // the record has a FAIL line
}

// readCAVP parses a CAVP .txt file strictly: a line it does not understand
// fails the test.
func readCAVP(t *testing.T, path string) []cavpRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []cavpRecord
	var section string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text()) // also drops the CR of CRLF
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case line == "FAIL":
			if len(recs) == 0 || recs[len(recs)-1].fail {
				t.Fatalf("%s:%d: stray FAIL", path, ln)
			}
			recs[len(recs)-1].fail = true
		default:
			name, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: cannot parse %q", path, ln, line)
			}
			name = strings.ToUpper(strings.TrimSpace(name))
			value = strings.TrimSpace(value)
			if name == "COUNT" {
				recs = append(recs, cavpRecord{line: ln, section: section, fields: map[string]string{}})
			}
			if len(recs) == 0 {
				t.Fatalf("%s:%d: field %s outside a record", path, ln, name)
			}
			r := &recs[len(recs)-1]
			if _, dup := r.fields[name]; dup {
				t.Fatalf("%s:%d: duplicate field %s", path, ln, name)
			}
			r.fields[name] = value
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// nistDir holds the SP 800-38F vectors, relative to this package.
const nistDir = "../../testdata/nist-kw"

// TestNIST runs the NIST CAVP SP 800-38F KW and KWP vectors (AES-128 and
// AES-256, both directions). In the AE files every record must wrap to C
// and unwrap back; in the AD files records marked FAIL must be refused with
// ErrUnwrap and the others must unwrap to P (and wrap back to C).
func TestNIST(t *testing.T) {
	for _, tt := range []struct {
		file    string
		a       algo
		keyBits int
		decrypt bool
	}{
		{"KW_AE_128.txt", kw, 128, false},
		{"KW_AD_128.txt", kw, 128, true},
		{"KW_AE_256.txt", kw, 256, false},
		{"KW_AD_256.txt", kw, 256, true},
		{"KWP_AE_128.txt", kwp, 128, false},
		{"KWP_AD_128.txt", kwp, 128, true},
		{"KWP_AE_256.txt", kwp, 256, false},
		{"KWP_AD_256.txt", kwp, 256, true},
	} {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(nistDir, tt.file)
			ran, failed := 0, 0
			lengths := map[int]bool{}
			for _, r := range readCAVP(t, path) {
				bits, err := strconv.Atoi(strings.TrimPrefix(r.section, "PLAINTEXT LENGTH = "))
				if err != nil {
					t.Fatalf("%s:%d: section %q", path, r.line, r.section)
				}
				lengths[bits] = true
				key, c := unhex(t, r.fields["K"]), unhex(t, r.fields["C"])
				if len(key)*8 != tt.keyBits {
					t.Fatalf("%s:%d: %d-byte key", path, r.line, len(key))
				}
				if tt.a.name == "KW" && len(c) != bits/8+8 || tt.a.name == "KWP" && len(c) != (bits/8+7)/8*8+8 {
					t.Fatalf("%s:%d: %d-byte ciphertext for %d-bit plaintext", path, r.line, len(c), bits)
				}
				kek := mustCipher(t, key)
				ran++
				if r.fail {
					if !tt.decrypt {
						t.Fatalf("%s:%d: FAIL in an AE file", path, r.line)
					}
					if _, ok := r.fields["P"]; ok {
						t.Fatalf("%s:%d: FAIL record with a plaintext", path, r.line)
					}
					failed++
					t.Run(r.fields["COUNT"], func(t *testing.T) { checkRejected(t, tt.a, kek, c) })
					continue
				}
				p := unhex(t, r.fields["P"])
				if len(p)*8 != bits {
					t.Fatalf("%s:%d: %d-byte plaintext in section %q", path, r.line, len(p), r.section)
				}
				t.Run(r.fields["COUNT"], func(t *testing.T) { checkValid(t, tt.a, kek, p, c) })
			}
			// 5 plaintext lengths x 100 trials; 20 of every 100 AD trials FAIL.
			wantFailed := 0
			if tt.decrypt {
				wantFailed = 100
			}
			if ran != 500 || failed != wantFailed || len(lengths) != 5 {
				t.Fatalf("ran %d records (%d FAIL, %d lengths), want 500 (%d FAIL, 5 lengths)", ran, failed, len(lengths), wantFailed)
			}
		})
	}
}

// TestKWPBotan runs kwp_botan.txt: the two RFC 5649 section 6 examples plus
// 127 KWP cases generated with OpenSSL (1 to 127 bytes, AES-128). The RFC
// examples use AES-192, which the NIST files here do not cover.
func TestKWPBotan(t *testing.T) {
	path := filepath.Join(nistDir, "kwp_botan.txt")
	ran := 0
	for _, r := range readCAVP(t, path) {
		if r.section != "KWP" || r.fail {
			t.Fatalf("%s:%d: unexpected record", path, r.line)
		}
		kek := mustCipher(t, unhex(t, r.fields["KEY"]))
		p, c := unhex(t, r.fields["INPUT"]), unhex(t, r.fields["OUTPUT"])
		t.Run(r.fields["COUNT"], func(t *testing.T) { checkValid(t, kwp, kek, p, c) })
		ran++
	}
	if ran != 129 {
		t.Fatalf("ran %d records, want 129", ran)
	}
}

// TestRFC runs the examples of RFC 3394 section 4 and RFC 5649 section 6.
func TestRFC(t *testing.T) {
	const (
		kek128  = "000102030405060708090A0B0C0D0E0F"
		kek192  = "000102030405060708090A0B0C0D0E0F1011121314151617"
		kek256  = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
		data16  = "00112233445566778899AABBCCDDEEFF"
		data24  = "00112233445566778899AABBCCDDEEFF0001020304050607"
		data32  = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"
		kek5649 = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
	)
	for _, tt := range []struct {
		name      string
		a         algo
		kek, p, c string
	}{
		{"3394/4.1", kw, kek128, data16, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"3394/4.2", kw, kek192, data16, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
		{"3394/4.3", kw, kek256, data16, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
		{"3394/4.4", kw, kek192, data24, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
		{"3394/4.5", kw, kek256, data24, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
		{"3394/4.6", kw, kek256, data32, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
		{"5649/6-20", kwp, kek5649, "c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"5649/6-7", kwp, kek5649, "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kek := mustCipher(t, unhex(t, tt.kek))
			p, c := unhex(t, tt.p), unhex(t, tt.c)
			checkValid(t, tt.a, kek, p, c)
			// Every single-bit change of the ciphertext must be detected.
			for i := range 8 * len(c) {
				c[i/8] ^= 1 << (i % 8)
				checkRejected(t, tt.a, kek, c)
				c[i/8] ^= 1 << (i % 8)
			}
			// So must truncation and extension by one block.
			checkRejected(t, tt.a, kek, c[:len(c)-8])
			checkRejected(t, tt.a, kek, append(append([]byte(nil), c...), make([]byte, 8)...))
		})
	}
}

// TestInputLengths checks which plaintext and ciphertext lengths each
// algorithm accepts.
func TestInputLengths(t *testing.T) {
	kek := mustCipher(t, make([]byte, 32))
	for n := 0; n <= 64; n++ {
		p := bytes.Repeat([]byte{0x5a}, n)
		for _, a := range []algo{kw, kwp} {
			c, err := a.wrap(kek, p)
			if !a.wrappable(n) {
				if err != ErrInput || c != nil {
					t.Errorf("%s: wrap(%d bytes) = %x, %v; want nil, ErrInput", a.name, n, c, err)
				}
				continue
			}
			want := 8 + (n+7)/8*8
			if err != nil || len(c) != want {
				t.Errorf("%s: wrap(%d bytes): %d bytes, %v; want %d bytes", a.name, n, len(c), err, want)
				continue
			}
			if got, err := a.unwrap(kek, c); err != nil || !bytes.Equal(got, p) {
				t.Errorf("%s: round trip of %d bytes: %x, %v", a.name, n, got, err)
			}
		}
		// A byte string that was never wrapped does not unwrap, whatever
		// its length.
		for _, a := range []algo{kw, kwp} {
			checkRejected(t, a, kek, p)
		}
	}
	// A KWP ciphertext is not a KW ciphertext and vice versa.
	p := bytes.Repeat([]byte{1}, 32)
	c, _ := Wrap(kek, p)
	checkRejected(t, kwp, kek, c)
	c, _ = WrapPad(kek, p)
	checkRejected(t, kw, kek, c)
}

// TestKWPPaddingChecks builds KWP ciphertexts whose integrity value is
// correct in form but whose length indicator or padding is wrong, and checks
// that each is refused. They are made by running the raw wrapping process
// with a chosen initial value.
func TestKWPPaddingChecks(t *testing.T) {
	kek := mustCipher(t, bytes.Repeat([]byte{7}, 16))
	aiv := func(mli uint32) [8]byte {
		return [8]byte{0xA6, 0x59, 0x59, 0xA6, byte(mli >> 24), byte(mli >> 16), byte(mli >> 8), byte(mli)}
	}
	// Single block: AES(AIV || P) directly.
	oneBlock := func(iv [8]byte, p []byte) []byte {
		b := append(iv[:], p...)
		kek.Encrypt(b, b)
		return b
	}
	for _, tt := range []struct {
		name string
		c    []byte
		ok   bool
	}{
		{"1 block, mli 5", oneBlock(aiv(5), []byte{1, 2, 3, 4, 5, 0, 0, 0}), true},
		{"1 block, mli 8", oneBlock(aiv(8), []byte{1, 2, 3, 4, 5, 6, 7, 8}), true},
		{"1 block, mli 0", oneBlock(aiv(0), make([]byte, 8)), false},
		{"1 block, mli 9", oneBlock(aiv(9), make([]byte, 8)), false},
		{"1 block, nonzero padding", oneBlock(aiv(5), []byte{1, 2, 3, 4, 5, 0, 0, 1}), false},
		{"1 block, KW IV", oneBlock(defaultIV, make([]byte, 8)), false},
		{"2 blocks, mli 9", wrap(kek, aiv(9), append([]byte{9}, make([]byte, 15)...)), true},
		{"2 blocks, mli 16", wrap(kek, aiv(16), bytes.Repeat([]byte{3}, 16)), true},
		{"2 blocks, mli 8", wrap(kek, aiv(8), make([]byte, 16)), false},
		{"2 blocks, mli 1", wrap(kek, aiv(1), make([]byte, 16)), false},
		{"2 blocks, mli 0", wrap(kek, aiv(0), make([]byte, 16)), false},
		{"2 blocks, mli 17", wrap(kek, aiv(17), make([]byte, 16)), false},
		{"2 blocks, mli 2^32-1", wrap(kek, aiv(1<<32-1), make([]byte, 16)), false},
		{"2 blocks, nonzero padding", wrap(kek, aiv(9), append([]byte{9}, append(make([]byte, 14), 1)...)), false},
		{"2 blocks, first padding byte nonzero", wrap(kek, aiv(9), append(bytes.Repeat([]byte{9}, 9), 1, 0, 0, 0, 0, 0, 0)), false},
		{"2 blocks, mli 10", wrap(kek, aiv(10), append(bytes.Repeat([]byte{9}, 9), 1, 0, 0, 0, 0, 0, 0)), true},
		{"3 blocks, mli 16", wrap(kek, aiv(16), make([]byte, 24)), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnwrapPad(kek, tt.c)
			if !tt.ok {
				if err != ErrUnwrap || got != nil {
					t.Fatalf("= %x, %v; want nil, ErrUnwrap", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			again, err := WrapPad(kek, got)
			if err != nil || !bytes.Equal(again, tt.c) {
				t.Fatalf("rewrapping %x: %x, %v; want %x", got, again, err, tt.c)
			}
		})
	}
}

// TestErrors checks that the errors are distinct and stable.
func TestErrors(t *testing.T) {
	if errors.Is(ErrUnwrap, ErrInput) || errors.Is(ErrInput, ErrUnwrap) {
		t.Fatal("ErrUnwrap and ErrInput are not distinct")
	}
}

// fuzzKEK returns a cipher for key, or nil if key is not an AES key size.
func fuzzKEK(key []byte) cipher.Block {
	switch len(key) {
	case 16, 24, 32:
		b, err := aes.NewCipher(key)
		if err != nil {
			panic(err)
		}
		return b
	}
	return nil
}

// fuzzAlgo checks, for arbitrary data: that unwrapping never panics and
// either fails with exactly ErrUnwrap or returns a plaintext that wraps back
// to data; that wrapping data (as plaintext) succeeds exactly when its length
// is allowed and round-trips; and that flipping one bit of a fresh
// ciphertext is detected.
func fuzzAlgo(t *testing.T, a algo, key, data []byte, flip uint16) {
	kek := fuzzKEK(key)
	if kek == nil {
		return
	}
	in := append([]byte(nil), data...)
	p, err := a.unwrap(kek, data)
	if !bytes.Equal(in, data) {
		t.Fatal("unwrap modified its input")
	}
	if err != nil {
		if err != ErrUnwrap || p != nil {
			t.Fatalf("unwrap: %x, %v; want nil, ErrUnwrap", p, err)
		}
	} else {
		c, err := a.wrap(kek, p)
		if err != nil || !bytes.Equal(c, data) {
			t.Fatalf("unwrap accepted %x as %x, which wraps to %x, %v", data, p, c, err)
		}
	}

	c, err := a.wrap(kek, data)
	if !bytes.Equal(in, data) {
		t.Fatal("wrap modified its input")
	}
	if !a.wrappable(len(data)) {
		if err != ErrInput || c != nil {
			t.Fatalf("wrap(%d bytes): %x, %v; want nil, ErrInput", len(data), c, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("wrap(%d bytes): %v", len(data), err)
	}
	p, err = a.unwrap(kek, c)
	if err != nil || !bytes.Equal(p, data) {
		t.Fatalf("round trip: %x, %v; want %x", p, err, data)
	}
	bit := int(flip) % (8 * len(c))
	c[bit/8] ^= 1 << (bit % 8)
	if p, err := a.unwrap(kek, c); err != ErrUnwrap || p != nil {
		t.Fatalf("bit %d flipped: unwrap = %x, %v; want nil, ErrUnwrap", bit, p, err)
	}
}

func FuzzUnwrap(f *testing.F) {
	f.Add(unhex(f, "000102030405060708090A0B0C0D0E0F"), unhex(f, "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"), uint16(0))
	f.Add(make([]byte, 32), make([]byte, 40), uint16(77))
	f.Add(make([]byte, 24), []byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, key, data []byte, flip uint16) { fuzzAlgo(t, kw, key, data, flip) })
}

func FuzzUnwrapPad(f *testing.F) {
	f.Add(unhex(f, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"), unhex(f, "afbeb0f07dfbf5419200f2ccb50bb24f"), uint16(3))
	f.Add(make([]byte, 16), []byte{0}, uint16(0))
	f.Add(make([]byte, 32), make([]byte, 24), uint16(191))
	f.Fuzz(func(t *testing.T, key, data []byte, flip uint16) { fuzzAlgo(t, kwp, key, data, flip) })
}

func benchKEK(b *testing.B) cipher.Block {
	return mustCipher(b, bytes.Repeat([]byte{0x42}, 32))
}

func BenchmarkWrapPad32(b *testing.B) {
	kek, p := benchKEK(b), bytes.Repeat([]byte{0x17}, 32)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := WrapPad(kek, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapPad32(b *testing.B) {
	kek := benchKEK(b)
	c, err := WrapPad(kek, bytes.Repeat([]byte{0x17}, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(32)
	for b.Loop() {
		if _, err := UnwrapPad(kek, c); err != nil {
			b.Fatal(err)
		}
	}
}
