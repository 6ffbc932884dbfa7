package envelope

import (
	"bytes"
	"strings"
	"testing"
)

// A Key seals and opens exactly as Seal and Open do.
func TestKey(t *testing.T) {
	dek := newKey(t)
	k, err := NewKey(dek, hdr)
	if err != nil {
		t.Fatal(err)
	}
	big := map[string]string{"k": string(bytes.Repeat([]byte("v"), 1000))} // past aadBuf
	for _, c := range []map[string]string{nil, ctx, big} {
		pt := []byte("hello")
		ct, err := k.Seal(c, pt)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Open(dek, ct, c); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Open(Key.Seal()) = %q, %v", got, err)
		}
		if got, err := k.Open(mustSeal(t, dek, hdr, c, pt), c); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Key.Open(Seal()) = %q, %v", got, err)
		}
		if _, err := k.Open(ct, map[string]string{"x": "y"}); err != ErrDecrypt {
			t.Errorf("Key.Open(another context) = %v", err)
		}
	}
	other := Header{Tenant: hdr.Tenant, Type: hdr.Type, Version: hdr.Version + 1}
	if _, err := k.Open(mustSeal(t, dek, other, nil, nil), nil); err != ErrDecrypt {
		t.Errorf("Key.Open(another version's) = %v, want ErrDecrypt", err)
	}
	if _, err := NewKey(dek, Header{}); err == nil {
		t.Error("NewKey(invalid header) = nil error")
	}
}

// appendCanonical is canonical, byte for byte and error for error.
func TestAppendCanonical(t *testing.T) {
	many := map[string]string{}
	for i := range 20 {
		many[string(rune('a'+i))+"k"] = strings.Repeat("v", i)
	}
	for _, c := range []map[string]string{nil, {}, ctx, many, {"é": "", "e": "x", "E": "y"},
		{"": "x"}, {"k": "\xff"}, {"\xff": ""}, {strings.Repeat("k", 65): ""}, {"k": strings.Repeat("v", 1025)}} {
		want, werr := canonical(c)
		got, gerr := appendCanonical([]byte{9}, c)
		if (werr == nil) != (gerr == nil) || (werr == nil && !bytes.Equal(got, append([]byte{9}, want...))) {
			t.Errorf("appendCanonical(%q) = %x, %v, want %x, %v", c, got, gerr, want, werr)
		}
	}
}
