package tenant

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

func randomKey(t testing.TB) secret.Key {
	b := make([]byte, secret.Size)
	rand.Read(b)
	k, err := secret.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var ref = Ref{Tenant: "t-0123", Type: "data", Version: 3, Release: "2026-1", Source: SourceHSM, Derivation: DerivationPBKDF2}

func TestWrapRoundTripAndBinding(t *testing.T) {
	twk, s := randomKey(t), randomKey(t)
	w, err := Wrap(twk, ref, s)
	if err != nil {
		t.Fatalf("Wrap() error = %v", err)
	}
	if bytes.Contains(w, s.Bytes()) {
		t.Fatal("the wrapped secret contains the secret")
	}
	if rel, err := WrappedRelease(w); err != nil || rel != "2026-1" {
		t.Errorf("WrappedRelease() = %q, %v", rel, err)
	}
	got, err := Unwrap(twk, ref, w)
	if err != nil || !got.Equal(s) {
		t.Fatalf("Unwrap() = %v, or another secret", err)
	}
	// Every field of the reference is bound.
	for name, r := range map[string]Ref{
		"tenant":     {Tenant: "t-9999", Type: ref.Type, Version: 3, Release: ref.Release, Source: SourceHSM, Derivation: DerivationPBKDF2},
		"type":       {Tenant: ref.Tenant, Type: "search_index", Version: 3, Release: ref.Release, Source: SourceHSM, Derivation: DerivationPBKDF2},
		"version":    {Tenant: ref.Tenant, Type: ref.Type, Version: 4, Release: ref.Release, Source: SourceHSM, Derivation: DerivationPBKDF2},
		"source":     {Tenant: ref.Tenant, Type: ref.Type, Version: 3, Release: ref.Release, Source: SourceUploaded, Derivation: DerivationPBKDF2},
		"derivation": {Tenant: ref.Tenant, Type: ref.Type, Version: 3, Release: ref.Release, Source: SourceHSM, Derivation: DerivationNone},
	} {
		if _, err := Unwrap(twk, r, w); !errors.Is(err, ErrUnwrap) {
			t.Errorf("Unwrap(other %s) error = %v, want ErrUnwrap", name, err)
		}
	}
	other := ref
	other.Release = "2026-2"
	if _, err := Unwrap(twk, other, w); err == nil {
		t.Error("Unwrap(other release) error = nil")
	}
	if _, err := Unwrap(randomKey(t), ref, w); !errors.Is(err, ErrUnwrap) {
		t.Errorf("Unwrap(other TWK) error = %v", err)
	}
	for i := range w {
		bad := bytes.Clone(w)
		bad[i] ^= 1
		if _, err := Unwrap(twk, ref, bad); err == nil {
			t.Fatalf("Unwrap accepted byte %d altered", i)
		}
	}
}

func TestRefCheck(t *testing.T) {
	for _, r := range []Ref{
		{Tenant: "", Type: "data", Version: 1, Release: "r", Source: SourceHSM, Derivation: DerivationPBKDF2},
		{Tenant: "t", Type: "Data", Version: 1, Release: "r", Source: SourceHSM, Derivation: DerivationPBKDF2},
		{Tenant: "t", Type: "data", Version: 0, Release: "r", Source: SourceHSM, Derivation: DerivationPBKDF2},
		{Tenant: "t", Type: "data", Version: 1, Release: "", Source: SourceHSM, Derivation: DerivationPBKDF2},
		{Tenant: "t", Type: "data", Version: 1, Release: "r", Source: "imported", Derivation: DerivationPBKDF2},
		{Tenant: "t", Type: "data", Version: 1, Release: "r", Source: SourceHSM, Derivation: ""},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("Check(%+v) = nil", r)
		}
		if _, err := Wrap(randomKey(t), r, randomKey(t)); err == nil {
			t.Errorf("Wrap(%+v) error = nil", r)
		}
	}
}

// TestAADBytes pins the associated data of a wrapped secret (docs/formats.md):
// secrets wrapped by earlier builds must keep opening.
func TestAADBytes(t *testing.T) {
	r := Ref{Tenant: "t1", Type: "data", Version: 258, Release: "2026-1", Source: SourceUploaded, Derivation: DerivationNone}
	want := append([]byte{27}, "strongroom tenant secret v1"...)
	want = append(want, 2, 't', '1', 4, 'd', 'a', 't', 'a', 0, 0, 1, 2, 6)
	want = append(want, "2026-1"...)
	want = append(want, 2, 2)
	if got := r.aad(); !bytes.Equal(got, want) {
		t.Errorf("aad(%+v) = %x, want %x", r, got, want)
	}
	r.Source, r.Derivation = SourceHSM, DerivationPBKDF2
	if got := r.aad(); got[len(got)-2] != 1 || got[len(got)-1] != 1 {
		t.Errorf("aad(hsm, pbkdf2) ends %x, want 0101", got[len(got)-2:])
	}
}

func TestExportKeyWrap(t *testing.T) {
	twk, ek := randomKey(t), randomKey(t)
	w, err := WrapExportKey(twk, "t1", "2026-1", ek)
	if err != nil {
		t.Fatalf("WrapExportKey() error = %v", err)
	}
	k := ExportKey{Tenant: "t1", Release: "2026-1", Wrapped: w}
	got, err := UnwrapExportKey(twk, k)
	if err != nil || !got.Equal(ek) {
		t.Fatalf("UnwrapExportKey() = %v, or another key", err)
	}
	for name, bad := range map[string]ExportKey{
		"other tenant":  {Tenant: "t2", Release: "2026-1", Wrapped: w},
		"other release": {Tenant: "t1", Release: "2026-2", Wrapped: w},
		"truncated":     {Tenant: "t1", Release: "2026-1", Wrapped: w[:len(w)-1]},
	} {
		if _, err := UnwrapExportKey(twk, bad); err == nil {
			t.Errorf("UnwrapExportKey(%s) error = nil", name)
		}
	}
	if _, err := UnwrapExportKey(randomKey(t), k); !errors.Is(err, ErrUnwrap) {
		t.Errorf("UnwrapExportKey(other TWK) error = %v, want ErrUnwrap", err)
	}
	// A tenant secret never opens as an export key, nor the reverse.
	ts, _ := Wrap(twk, Ref{Tenant: "t1", Type: "data", Version: 1, Release: "2026-1", Source: SourceHSM, Derivation: DerivationPBKDF2}, ek)
	if _, err := UnwrapExportKey(twk, ExportKey{Tenant: "t1", Release: "2026-1", Wrapped: ts}); err == nil {
		t.Error("UnwrapExportKey(a wrapped tenant secret) error = nil")
	}
}

func FuzzWrappedRelease(f *testing.F) {
	f.Add([]byte{1, 1, 'r'})
	twk, _ := secret.New(bytes.Repeat([]byte{9}, secret.Size))
	f.Fuzz(func(t *testing.T, data []byte) {
		rel, err := WrappedRelease(data)
		if err == nil && len(data) != 2+len(rel)+60 {
			t.Fatalf("WrappedRelease accepted %d bytes", len(data))
		}
		Unwrap(twk, ref, data) // must not panic on any input
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	w, err := Wrap(randomKey(t), ref, randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	c := fuzzcorpus.New(t)
	c.Add("FuzzWrappedRelease", "valid", w)
	bearer, _ := secret.NewText([]byte("bearer"))
	wb, err := WrapBearer(randomKey(t), KeyService{ID: NewID(), Tenant: "t", Type: TypeData, Version: 1, URL: "https://k", KID: "k", Release: "2026-1"}, bearer)
	if err != nil {
		t.Fatal(err)
	}
	c.Add("FuzzUnwrapBearer", "valid", wb)
}

func TestKeyRefNames(t *testing.T) {
	for _, c := range []struct {
		ref          KeyRef
		name, string string
	}{
		{KeyRef{Tenant: "t1", Type: "data", Version: 3}, "data/3", "t1/data/3"},
		{KeyRef{Tenant: "t1", Type: "data"}, "data", "t1/data/0"},
		{KeyRef{Tenant: "t1"}, "", "t1//0"},
		{KeyRef{Tenant: "t1", Type: "data", Version: 4294967295}, "data/4294967295", "t1/data/4294967295"},
	} {
		if got := c.ref.Name(); got != c.name {
			t.Errorf("%#v.Name() = %q, want %q", c.ref, got, c.name)
		}
		if got := c.ref.String(); got != c.string {
			t.Errorf("%#v.String() = %q, want %q", c.ref, got, c.string)
		}
	}
}
