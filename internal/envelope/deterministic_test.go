package envelope

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/siv"
)

var det = FieldHeader{Header: Header{Tenant: "0123456789abcdef0123456789abcdef", Type: "deterministic", Version: 3}, Field: "email"}

func mustSealDet(t testing.TB, dek secret.Key, h FieldHeader, c map[string]string, pt []byte) []byte {
	t.Helper()
	ct, err := SealDeterministic(dek, h, c, pt)
	if err != nil {
		t.Fatalf("SealDeterministic(%+v) error = %v", h, err)
	}
	return ct
}

func TestDeterministicRoundTrip(t *testing.T) {
	dek := newKey(t)
	for _, tc := range []struct {
		name string
		pt   []byte
		ctx  map[string]string
	}{
		{"empty", nil, nil},
		{"short", []byte("a@b.c"), ctx},
		{"block", []byte("0123456789abcdef"), nil},
		{"long", bytes.Repeat([]byte("x"), 1000), ctx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := mustSealDet(t, dek, det, tc.ctx, tc.pt)
			if again := mustSealDet(t, dek, det, tc.ctx, tc.pt); !bytes.Equal(ct, again) {
				t.Errorf("SealDeterministic() twice = %x, %x, want equal", ct, again)
			}
			if want := len(tc.pt) + det.Overhead(); len(ct) != want {
				t.Errorf("len(ciphertext) = %d, want %d", len(ct), want)
			}
			if got, err := ParseFieldHeader(ct); err != nil || got != det {
				t.Errorf("ParseFieldHeader() = %+v, %v, want %+v", got, err, det)
			}
			if FormatOf(ct) != FormatDeterministic {
				t.Errorf("FormatOf() = %d, want %d", FormatOf(ct), FormatDeterministic)
			}
			pt, err := OpenDeterministic(dek, ct, tc.ctx)
			if err != nil || !bytes.Equal(pt, tc.pt) {
				t.Errorf("OpenDeterministic() = %q, %v, want %q", pt, err, tc.pt)
			}
			// Format 1's parser and Open refuse format 2, and the reverse.
			if _, err := ParseHeader(ct); err != ErrMalformed {
				t.Errorf("ParseHeader(format 2) error = %v, want ErrMalformed", err)
			}
			if _, err := Open(dek, ct, tc.ctx); err != ErrDecrypt {
				t.Errorf("Open(format 2) error = %v, want ErrDecrypt", err)
			}
			v1 := mustSeal(t, dek, det.Header, tc.ctx, tc.pt)
			if _, err := OpenDeterministic(dek, v1, tc.ctx); err != ErrDecrypt {
				t.Errorf("OpenDeterministic(format 1) error = %v, want ErrDecrypt", err)
			}
		})
	}
}

// TestDeterministicSeparation: equal plaintexts give different ciphertexts —
// and different synthetic IVs, so not only different headers — in another
// field, version, tenant, type, fold flag, context or under another DEK.
func TestDeterministicSeparation(t *testing.T) {
	dek := newKey(t)
	pt := []byte("alice@example.com") // already folded: the flag alone differs
	base := mustSealDet(t, dek, det, ctx, pt)
	sivOf := func(ct []byte) []byte {
		h, err := ParseFieldHeader(ct)
		if err != nil {
			t.Fatal(err)
		}
		return ct[h.size():]
	}
	for name, h := range map[string]FieldHeader{
		"field":   {Header: det.Header, Field: "mail"},
		"version": {Header: Header{Tenant: det.Tenant, Type: det.Type, Version: 4}, Field: det.Field},
		"tenant":  {Header: Header{Tenant: "fedcba9876543210fedcba9876543210", Type: det.Type, Version: 3}, Field: det.Field},
		"type":    {Header: Header{Tenant: det.Tenant, Type: "data", Version: 3}, Field: det.Field},
		"fold":    {Header: det.Header, Field: det.Field, CaseInsensitive: true},
	} {
		ct := mustSealDet(t, dek, h, ctx, pt)
		if bytes.Equal(sivOf(ct), sivOf(base)) {
			t.Errorf("another %s gave the same AES-SIV output", name)
		}
		if got, err := OpenDeterministic(dek, ct, ctx); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("OpenDeterministic(other %s) = %q, %v", name, got, err)
		}
		// Relabelling the ciphertext with base's header fails.
		hb := det.marshal()
		relabelled := append(bytes.Clone(hb), sivOf(ct)...)
		if _, err := OpenDeterministic(dek, relabelled, ctx); err != ErrDecrypt {
			t.Errorf("OpenDeterministic(%s relabelled) error = %v, want ErrDecrypt", name, err)
		}
	}
	if ct := mustSealDet(t, dek, det, map[string]string{"table": "other"}, pt); bytes.Equal(sivOf(ct), sivOf(base)) {
		t.Error("another context gave the same AES-SIV output")
	}
	if ct := mustSealDet(t, newKey(t), det, ctx, pt); bytes.Equal(sivOf(ct), sivOf(base)) {
		t.Error("another DEK gave the same AES-SIV output")
	}
	for name, try := range map[string]func() ([]byte, error){
		"other context": func() ([]byte, error) { return OpenDeterministic(dek, base, nil) },
		"other DEK":     func() ([]byte, error) { return OpenDeterministic(newKey(t), base, ctx) },
		"truncated":     func() ([]byte, error) { return OpenDeterministic(dek, base[:det.Overhead()-1], ctx) },
		"bad flags": func() ([]byte, error) {
			b := bytes.Clone(base)
			b[det.size()-1] = 0x02
			return OpenDeterministic(dek, b, ctx)
		},
	} {
		if got, err := try(); err != ErrDecrypt || got != nil {
			t.Errorf("OpenDeterministic(%s) = %q, %v, want ErrDecrypt", name, got, err)
		}
	}
	for i := range base {
		b := bytes.Clone(base)
		b[i] ^= 0x01
		if got, err := OpenDeterministic(dek, b, ctx); err != ErrDecrypt || got != nil {
			t.Fatalf("OpenDeterministic(byte %d altered) = %q, %v, want ErrDecrypt", i, got, err)
		}
	}
}

func TestFold(t *testing.T) {
	dek := newKey(t)
	h := det
	h.CaseInsensitive = true
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"Alice@Example.COM", "alice@example.com", "ALICE@EXAMPLE.COM"}, "alice@example.com"},
		// Full folding: ß folds to ss, and a capital sharp s too.
		{[]string{"Straße", "STRASSE", "strasse", "STRAẞE"}, "strasse"},
		// NFC: a precomposed and a decomposed é are one value.
		{[]string{"Café", "CAFE\u0301", "cafe\u0301"}, "café"},
		// Greek final sigma folds to sigma.
		{[]string{"ΟΔΟΣ", "οδος", "Οδος"}, "οδοσ"},
	} {
		var first []byte
		for _, in := range tc.in {
			f, err := Fold([]byte(in))
			if err != nil || string(f) != tc.want {
				t.Errorf("Fold(%q) = %q, %v, want %q", in, f, err, tc.want)
			}
			ct := mustSealDet(t, dek, h, nil, []byte(in))
			if first == nil {
				first = ct
			} else if !bytes.Equal(ct, first) {
				t.Errorf("SealDeterministic(%q, case-insensitive) differs from SealDeterministic(%q)", in, tc.in[0])
			}
			if pt, err := OpenDeterministic(dek, ct, nil); err != nil || string(pt) != tc.want {
				t.Errorf("OpenDeterministic() = %q, %v, want the folded %q", pt, err, tc.want)
			}
		}
	}
	// Without the flag, case matters.
	if a, b := mustSealDet(t, dek, det, nil, []byte("Alice")), mustSealDet(t, dek, det, nil, []byte("alice")); bytes.Equal(a, b) {
		t.Error("case-sensitive SealDeterministic(Alice) = SealDeterministic(alice)")
	}
	if _, err := SealDeterministic(dek, h, nil, []byte{0xff, 'a'}); !errors.Is(err, ErrFold) {
		t.Errorf("SealDeterministic(not UTF-8, case-insensitive) error = %v, want ErrFold", err)
	}
	if _, err := SealDeterministic(dek, det, nil, []byte{0xff, 'a'}); err != nil {
		t.Errorf("SealDeterministic(not UTF-8, case-sensitive) error = %v, want none: any bytes", err)
	}
}

func TestFieldHeaderCheck(t *testing.T) {
	dek := newKey(t)
	for name, h := range map[string]FieldHeader{
		"no field":       {Header: det.Header},
		"long field":     {Header: det.Header, Field: string(bytes.Repeat([]byte("f"), MaxField+1))},
		"space in field": {Header: det.Header, Field: "e mail"},
		"non-ASCII":      {Header: det.Header, Field: "é"},
	} {
		if _, err := SealDeterministic(dek, h, nil, nil); !errors.Is(err, ErrField) {
			t.Errorf("SealDeterministic(%s) error = %v, want ErrField", name, err)
		}
	}
	if _, err := SealDeterministic(dek, FieldHeader{Header: Header{Tenant: "t", Type: "deterministic"}, Field: "f"}, nil, nil); !errors.Is(err, ErrHeader) {
		t.Errorf("SealDeterministic(version 0) error = %v, want ErrHeader", err)
	}
	if _, err := SealDeterministic(dek, det, map[string]string{"": "x"}, nil); !errors.Is(err, ErrContext) {
		t.Errorf("SealDeterministic(bad context) error = %v, want ErrContext", err)
	}
	if _, err := SealDeterministic(secret.Key{}, det, nil, nil); err == nil {
		t.Error("SealDeterministic(empty key) succeeded")
	}
	if err := CheckField(string(bytes.Repeat([]byte("f"), MaxField))); err != nil {
		t.Errorf("CheckField(%d bytes) = %v", MaxField, err)
	}
}

// TestDocDeterministic recomputes the format-2 example of docs/dataplane.md
// independently of SealDeterministic: the header, the HKDF info and key
// (with crypto/hkdf), the associated data and the AES-SIV output, and opens
// the page's ciphertext with OpenDeterministic.
func TestDocDeterministic(t *testing.T) {
	ex := docs.KAT(t, dataplaneDoc, "deterministic")
	dek := ex.Key("dek")
	h := FieldHeader{
		Header:          Header{Tenant: ex.Text("tenant"), Type: ex.Text("type"), Version: uint32(ex.Uint("version"))},
		Field:           ex.Text("field"),
		CaseInsensitive: ex.Uint("case-insensitive") == 1,
	}
	var context map[string]string
	if err := json.Unmarshal([]byte(ex.Raw("context")), &context); err != nil {
		t.Fatalf("context: %v", err)
	}
	plaintext := []byte(ex.Text("plaintext"))
	folded := []byte(ex.Text("folded"))
	if f, err := Fold(plaintext); err != nil || !bytes.Equal(f, folded) {
		t.Errorf("Fold() = %q, %v, want %q", f, err, folded)
	}
	hb, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("header"); !bytes.Equal(hb, want) {
		t.Errorf("FieldHeader.Marshal() = %x, want %x", hb, want)
	}
	info := ex.Hex("info")
	if want := append([]byte{byte(len(keyLabelV2))}, append([]byte(keyLabelV2), hb...)...); !bytes.Equal(info, want) {
		t.Errorf("info = %x, want %x", want, info)
	}
	key, err := hkdf.Key(sha256.New, dek.Bytes(), nil, string(info), 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("key"); !bytes.Equal(key, want) {
		t.Errorf("key = %x, want %x", key, want)
	}
	c, err := canonical(context)
	if err != nil {
		t.Fatal(err)
	}
	a := aadV2(hb, c)
	if want := ex.Hex("aad"); !bytes.Equal(a, want) {
		t.Errorf("aad = %x, want %x", a, want)
	}
	mac, _ := secret.New(key[:32])
	enc, _ := secret.New(key[32:])
	want := ex.Hex("ciphertext")
	if got := append(bytes.Clone(hb), siv.Seal(mac, enc, folded, a)...); !bytes.Equal(got, want) {
		t.Errorf("ciphertext = %x, want %x", got, want)
	}
	if got := mustSealDet(t, dek, h, context, plaintext); !bytes.Equal(got, want) {
		t.Errorf("SealDeterministic() = %x, want the page's %x", got, want)
	}
	if pt, err := OpenDeterministic(dek, want, context); err != nil || !bytes.Equal(pt, folded) {
		t.Errorf("OpenDeterministic(the page's ciphertext) = %q, %v, want %q", pt, err, folded)
	}
}

func BenchmarkSealDeterministic1KiB(b *testing.B) {
	dek := newKey(b)
	pt := make([]byte, 1024)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealDeterministic(dek, det, ctx, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenDeterministic1KiB(b *testing.B) {
	dek := newKey(b)
	ct := mustSealDet(b, dek, det, ctx, make([]byte, 1024))
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenDeterministic(dek, ct, ctx); err != nil {
			b.Fatal(err)
		}
	}
}
