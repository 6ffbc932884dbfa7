package secret

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func testKey(t *testing.T) (Key, []byte) {
	t.Helper()
	raw := bytes.Repeat([]byte{0xA5}, Size)
	raw[0], raw[31] = 0x01, 0xFE
	k, err := New(raw)
	if err != nil {
		t.Fatalf("New(32 bytes) error = %v", err)
	}
	return k, raw
}

func TestNewCopiesInput(t *testing.T) {
	k, raw := testKey(t)
	raw[5] ^= 0xFF
	if bytes.Equal(k.Bytes(), raw) {
		t.Fatal("New kept a reference to its input; want a copy")
	}
}

func TestNewRejectsWrongSize(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); !errors.Is(err, ErrSize) {
			t.Errorf("New(%d bytes) error = %v, want ErrSize", n, err)
		}
	}
}

func TestRedaction(t *testing.T) {
	k, raw := testKey(t)
	hexs := hex.EncodeToString(raw)
	wrapped := struct {
		Name string
		K    Key
	}{"x", k}

	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("msg", "key", k, "obj", wrapped)
	js, err := json.Marshal(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := k.MarshalText()

	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", k),
		"%+v":  fmt.Sprintf("%+v", wrapped),
		"%#v":  fmt.Sprintf("%#v", wrapped),
		"%s":   fmt.Sprintf("%s", k),
		"%x":   fmt.Sprintf("%x", k),
		"%X":   fmt.Sprintf("%X", k),
		"%q":   fmt.Sprintf("%q", k),
		"%d":   fmt.Sprintf("%d", k),
		"json": string(js),
		"text": string(txt),
		"slog": logBuf.String(),
	}
	for name, out := range outputs {
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s output %q lacks %q", name, out, Redacted)
		}
		for _, leak := range []string{hexs, strings.ToUpper(hexs), "165", "0xa5", "a5a5"} {
			if strings.Contains(strings.ToLower(out), strings.ToLower(leak)) {
				t.Errorf("%s output %q leaks key material (%q)", name, out, leak)
			}
		}
	}
}

func TestEqual(t *testing.T) {
	a, raw := testKey(t)
	b, _ := New(raw)
	raw[31] ^= 1
	c, _ := New(raw)
	if !a.Equal(b) {
		t.Error("Equal(same material) = false, want true")
	}
	if a.Equal(c) {
		t.Error("Equal(different material) = true, want false")
	}
	if (Key{}).Equal(Key{}) || a.Equal(Key{}) {
		t.Error("Equal with an empty key = true, want false")
	}
}

func TestDestroy(t *testing.T) {
	k, _ := testKey(t)
	alias := k
	k.Destroy()
	if !bytes.Equal(alias.Bytes(), make([]byte, Size)) {
		t.Errorf("after Destroy, Bytes() = %x, want zeros", alias.Bytes())
	}
	k.Destroy() // idempotent
	(Key{}).Destroy()
}

func TestBytesOnEmptyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Bytes on empty Key did not panic")
		}
	}()
	_ = Key{}.Bytes()
}
