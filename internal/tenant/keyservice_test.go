package tenant

import (
	"bytes"
	"errors"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// TestWrapBearer: a wrapped bearer secret opens under its TWK and
// registration only: any field the associated data binds, changed, and it
// does not open; the secret is not in the wrapped bytes.
func TestWrapBearer(t *testing.T) {
	twk, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	other, _ := secret.New(bytes.Repeat([]byte{8}, 32))
	bearer, _ := secret.NewText([]byte("the-bearer-secret"))
	ks := KeyService{ID: NewID(), Tenant: NewID(), Type: TypeData, Version: 3, URL: "https://keys.example", KID: "k1",
		Auth: AuthBearer, OAEP: OAEPSHA256, Release: "2026-1"}
	w, err := WrapBearer(twk, ks, bearer)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, bearer.Bytes()) {
		t.Fatal("the wrapped bearer holds the secret")
	}
	ks.Bearer = w
	got, err := UnwrapBearer(twk, ks)
	if err != nil || !got.Equal(bearer) {
		t.Fatalf("UnwrapBearer() = %v, %v, want the secret", got, err)
	}
	for name, change := range map[string]func(*KeyService){
		"tenant":  func(k *KeyService) { k.Tenant = NewID() },
		"type":    func(k *KeyService) { k.Type = TypeAnalytics },
		"version": func(k *KeyService) { k.Version = 4 },
		"id":      func(k *KeyService) { k.ID = NewID() },
		"url":     func(k *KeyService) { k.URL = "https://evil.example" },
		"kid":     func(k *KeyService) { k.KID = "k2" },
	} {
		k := ks
		change(&k)
		if _, err := UnwrapBearer(twk, k); !errors.Is(err, ErrUnwrapBearer) {
			t.Errorf("UnwrapBearer(other %s) error = %v, want ErrUnwrapBearer", name, err)
		}
	}
	if _, err := UnwrapBearer(other, ks); !errors.Is(err, ErrUnwrapBearer) {
		t.Errorf("UnwrapBearer(other TWK) error = %v, want ErrUnwrapBearer", err)
	}
	k := ks
	k.Release = "2026-2"
	if _, err := UnwrapBearer(twk, k); err == nil {
		t.Errorf("UnwrapBearer(other release) succeeded")
	}
}

// FuzzUnwrapBearer: no input makes UnwrapBearer panic, and only the
// wrapping opens.
func FuzzUnwrapBearer(f *testing.F) {
	twk, _ := secret.New(bytes.Repeat([]byte{7}, 32))
	bearer, _ := secret.NewText([]byte("b"))
	ks := KeyService{ID: NewID(), Tenant: "t", Type: TypeData, Version: 1, URL: "https://k", KID: "k", Release: "2026-1"}
	w, _ := WrapBearer(twk, ks, bearer)
	f.Add(w)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		k := ks
		k.Bearer = b
		if got, err := UnwrapBearer(twk, k); err == nil && !bytes.Equal(b, w) && !got.Equal(bearer) {
			t.Fatalf("UnwrapBearer(%x) opened to another secret", b)
		}
	})
}
