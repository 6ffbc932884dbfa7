package envelope

import (
	"bytes"
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
