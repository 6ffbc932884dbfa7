package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

func newKey(t testing.TB) secret.Key {
	t.Helper()
	var b [secret.Size]byte
	rand.Read(b[:])
	k, err := secret.New(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	hdr = Header{Tenant: "0123456789abcdef0123456789abcdef", Type: "data", Version: 7}
	ctx = map[string]string{"table": "accounts", "field": "ssn", "row": "42"}
)

func mustSeal(t testing.TB, dek secret.Key, h Header, c map[string]string, pt []byte) []byte {
	t.Helper()
	ct, err := Seal(dek, h, c, pt)
	if err != nil {
		t.Fatalf("Seal(%+v) error = %v", h, err)
	}
	return ct
}

func TestRoundTrip(t *testing.T) {
	dek := newKey(t)
	for _, tc := range []struct {
		name string
		pt   []byte
		ctx  map[string]string
	}{
		{"empty plaintext", nil, nil},
		{"1 KiB", bytes.Repeat([]byte{0xAB}, 1024), ctx},
		{"empty context value", []byte("x"), map[string]string{"k": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := mustSeal(t, dek, hdr, tc.ctx, tc.pt)
			if want := len(tc.pt) + hdr.Overhead(); len(ct) != want {
				t.Errorf("len(Seal()) = %d, want %d", len(ct), want)
			}
			got, err := ParseHeader(ct)
			if err != nil || got != hdr {
				t.Errorf("ParseHeader() = %+v, %v, want %+v", got, err, hdr)
			}
			pt, err := Open(dek, ct, tc.ctx)
			if err != nil || !bytes.Equal(pt, tc.pt) {
				t.Errorf("Open() = %x, %v, want %x", pt, err, tc.pt)
			}
		})
	}
	// nil and empty contexts are the same context.
	ct := mustSeal(t, dek, hdr, nil, []byte("p"))
	if _, err := Open(dek, ct, map[string]string{}); err != nil {
		t.Errorf("Open(nil-context ciphertext, empty map) error = %v", err)
	}
	// Two seals of the same input differ (fresh nonce).
	if bytes.Equal(mustSeal(t, dek, hdr, ctx, []byte("p")), mustSeal(t, dek, hdr, ctx, []byte("p"))) {
		t.Error("two Seal() of the same input are equal: the nonce is not fresh")
	}
}

// TestFormat rebuilds the header and associated data by hand, from the
// specification in docs/dataplane.md, and opens with primitive.Open.
func TestFormat(t *testing.T) {
	dek := newKey(t)
	h := Header{Tenant: "t1", Type: "data", Version: 0x01020304}
	c := map[string]string{"b": "2", "a": "1", "é": ""}
	ct := mustSeal(t, dek, h, c, []byte("hello"))

	header := []byte{1, 2, 't', '1', 4, 'd', 'a', 't', 'a', 1, 2, 3, 4}
	if !bytes.HasPrefix(ct, header) {
		t.Fatalf("ciphertext starts % x, want % x", ct[:len(header)], header)
	}
	var aad []byte
	aad = append(aad, 22)
	aad = append(aad, "strongroom envelope v1"...)
	aad = append(aad, header...)
	aad = append(aad, 0, 3) // three pairs, keys in byte order: "a" < "b" < "é"
	aad = append(aad, 1, 'a', 0, 1, '1')
	aad = append(aad, 1, 'b', 0, 1, '2')
	aad = append(aad, 2, 0xc3, 0xa9, 0, 0)
	pt, err := primitive.Open(dek, ct[len(header):], aad)
	if err != nil || string(pt) != "hello" {
		t.Errorf("primitive.Open(by-hand AAD) = %q, %v, want \"hello\"", pt, err)
	}
	if n := len(ct) - len(header); n != 12+5+16 {
		t.Errorf("sealed part is %d bytes, want 12 + 5 + 16", n)
	}
}

func TestHeaderFieldsAreBound(t *testing.T) {
	dek := newKey(t)
	ct := mustSeal(t, dek, hdr, ctx, []byte("secret data"))
	sealed := ct[hdr.size():]
	for name, h := range map[string]Header{
		"tenant":  {Tenant: "fedcba9876543210fedcba9876543210", Type: hdr.Type, Version: hdr.Version},
		"type":    {Tenant: hdr.Tenant, Type: "search_index", Version: hdr.Version},
		"version": {Tenant: hdr.Tenant, Type: hdr.Type, Version: hdr.Version + 1},
	} {
		relabelled := append(h.marshal(), sealed...)
		if _, err := ParseHeader(relabelled); err != nil {
			t.Fatalf("%s: ParseHeader(relabelled) error = %v", name, err)
		}
		if _, err := Open(dek, relabelled, ctx); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open(ciphertext with another %s) error = %v, want ErrDecrypt", name, err)
		}
	}
}

func TestContextIsBound(t *testing.T) {
	dek := newKey(t)
	ct := mustSeal(t, dek, hdr, ctx, []byte("secret data"))
	for name, c := range map[string]map[string]string{
		"nil":           nil,
		"pair removed":  {"table": "accounts", "field": "ssn"},
		"pair added":    {"table": "accounts", "field": "ssn", "row": "42", "x": ""},
		"value changed": {"table": "accounts", "field": "ssn", "row": "43"},
		"key changed":   {"table": "accounts", "field": "ssn", "rov": "42"},
		"case changed":  {"table": "accounts", "field": "SSN", "row": "42"},
		"value moved":   {"table": "accounts", "field": "ssn", "row": "", "row42": ""},
		"invalid":       {"": "x"},
	} {
		if _, err := Open(dek, ct, c); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open(context %s) error = %v, want ErrDecrypt", name, err)
		}
	}
	if _, err := Open(newKey(t), ct, ctx); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(another DEK) error = %v, want ErrDecrypt", err)
	}
}

func TestEveryByteIsAuthenticated(t *testing.T) {
	dek := newKey(t)
	ct := mustSeal(t, dek, hdr, ctx, []byte("a short message"))
	for i := range ct {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(ct)
			bad[i] ^= mask
			if pt, err := Open(dek, bad, ctx); !errors.Is(err, ErrDecrypt) || pt != nil {
				t.Fatalf("Open(byte %d ^ %#x) = %q, %v, want ErrDecrypt", i, mask, pt, err)
			}
		}
	}
	for n := range len(ct) {
		if _, err := Open(dek, ct[:n], ctx); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Open(first %d of %d bytes) error = %v, want ErrDecrypt", n, len(ct), err)
		}
	}
	if _, err := Open(dek, append(bytes.Clone(ct), 0), ctx); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(one byte appended) error = %v, want ErrDecrypt", err)
	}
	if _, err := Open(secret.Key{}, ct, ctx); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(empty key) error = %v, want ErrDecrypt", err)
	}
}

func TestParseHeaderRefuses(t *testing.T) {
	good := mustSeal(t, newKey(t), hdr, nil, nil)
	for name, ct := range map[string][]byte{
		"empty":          nil,
		"format 0":       append([]byte{0}, good[1:]...),
		"format 2":       append([]byte{2}, good[1:]...),
		"too short":      good[:len(good)-1],
		"header only":    good[:hdr.size()],
		"empty tenant":   append([]byte{1, 0, 4, 'd', 'a', 't', 'a', 0, 0, 0, 1}, make([]byte, 28)...),
		"empty type":     append([]byte{1, 1, 't', 0, 0, 0, 0, 1}, make([]byte, 28)...),
		"version 0":      append([]byte{1, 1, 't', 1, 'd', 0, 0, 0, 0}, make([]byte, 28)...),
		"space in type":  append([]byte{1, 1, 't', 2, 'd', ' ', 0, 0, 0, 1}, make([]byte, 28)...),
		"newline tenant": append([]byte{1, 1, '\n', 1, 'd', 0, 0, 0, 1}, make([]byte, 28)...),
		"length overrun": {1, 200, 't'},
	} {
		if h, err := ParseHeader(ct); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader(%s) = %+v, %v, want ErrMalformed", name, h, err)
		}
	}
}

func TestSealRefuses(t *testing.T) {
	dek := newKey(t)
	long := strings.Repeat("a", 256)
	for name, h := range map[string]Header{
		"empty tenant":   {Type: "data", Version: 1},
		"long tenant":    {Tenant: long, Type: "data", Version: 1},
		"empty type":     {Tenant: "t", Version: 1},
		"long type":      {Tenant: "t", Type: long, Version: 1},
		"version 0":      {Tenant: "t", Type: "data"},
		"non-ASCII type": {Tenant: "t", Type: "dätä", Version: 1},
	} {
		if _, err := Seal(dek, h, nil, nil); !errors.Is(err, ErrHeader) {
			t.Errorf("Seal(header %s) error = %v, want ErrHeader", name, err)
		}
	}
	many := map[string]string{}
	for i := range MaxContextPairs + 1 {
		many[string(rune('A'+i))] = ""
	}
	for name, c := range map[string]map[string]string{
		"65 pairs":        many,
		"empty key":       {"": "v"},
		"65-byte key":     {strings.Repeat("k", MaxContextKey+1): ""},
		"1025-byte value": {"k": strings.Repeat("v", MaxContextValue+1)},
		"invalid UTF-8 k": {"\xff": ""},
		"invalid UTF-8 v": {"k": "\xc3"},
	} {
		if _, err := Seal(dek, hdr, c, nil); !errors.Is(err, ErrContext) {
			t.Errorf("Seal(context %s) error = %v, want ErrContext", name, err)
		}
	}
	if _, err := Seal(secret.Key{}, hdr, nil, nil); err == nil {
		t.Error("Seal(empty key) error = nil")
	}
}

func TestContextLimitsAccepted(t *testing.T) {
	dek := newKey(t)
	c := map[string]string{}
	for i := range MaxContextPairs {
		k := strings.Repeat("k", MaxContextKey-2) + string(rune('A'+i/26)) + string(rune('a'+i%26))
		c[k] = strings.Repeat("v", MaxContextValue)
	}
	if err := CheckContext(c); err != nil {
		t.Fatalf("CheckContext(at the limits) error = %v", err)
	}
	ct := mustSeal(t, dek, Header{Tenant: strings.Repeat("t", MaxName), Type: strings.Repeat("y", MaxName), Version: ^uint32(0)}, c, nil)
	if _, err := Open(dek, ct, c); err != nil {
		t.Errorf("Open(at the limits) error = %v", err)
	}
}

func TestCanonicalIsOrderIndependent(t *testing.T) {
	// Maps have no order; the encoding sorts by key bytes. Build the same
	// context many times (Go randomises iteration) and compare.
	c := map[string]string{}
	for i := range 20 {
		c[string(rune('a'+i))] = strings.Repeat("x", i)
	}
	first, err := canonical(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint16(first); got != 20 {
		t.Fatalf("count = %d, want 20", got)
	}
	for range 20 {
		again, _ := canonical(c)
		if !bytes.Equal(first, again) {
			t.Fatal("canonical() differs between calls")
		}
	}
	if e, _ := canonical(nil); !bytes.Equal(e, []byte{0, 0}) {
		t.Errorf("canonical(nil) = % x, want 00 00", e)
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	dek := newKey(b)
	pt := make([]byte, 1024)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(dek, hdr, ctx, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen1KiB(b *testing.B) {
	dek := newKey(b)
	ct := mustSeal(b, dek, hdr, ctx, make([]byte, 1024))
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(dek, ct, ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// KeyOf names the key of both formats, and nothing else.
func TestKeyOf(t *testing.T) {
	dek := newKey(t)
	h := Header{Tenant: "t1", Type: "deterministic", Version: 7}
	v1, err := Seal(dek, h, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := SealDeterministic(dek, FieldHeader{Header: h, Field: "email"}, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range [][]byte{v1, v2} {
		if got, err := KeyOf(ct); err != nil || got != h {
			t.Errorf("KeyOf(format %d) = %+v, %v", FormatOf(ct), got, err)
		}
	}
	for _, bad := range [][]byte{nil, {3}, v1[:5], v2[:9]} {
		if _, err := KeyOf(bad); err == nil {
			t.Errorf("KeyOf(%x) succeeded", bad)
		}
	}
}
