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

var ref = Ref{Tenant: "t-0123", Type: "data", Version: 3, Release: "2026-1", Source: SourceHSM, Derivation: DerivePBKDF2}

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
		"tenant":     {Tenant: "t-9999", Type: ref.Type, Version: 3, Release: ref.Release, Source: SourceHSM, Derivation: DerivePBKDF2},
		"type":       {Tenant: ref.Tenant, Type: "search_index", Version: 3, Release: ref.Release, Source: SourceHSM, Derivation: DerivePBKDF2},
		"version":    {Tenant: ref.Tenant, Type: ref.Type, Version: 4, Release: ref.Release, Source: SourceHSM, Derivation: DerivePBKDF2},
		"source":     {Tenant: ref.Tenant, Type: ref.Type, Version: 3, Release: ref.Release, Source: SourceUploaded, Derivation: DerivePBKDF2},
		"derivation": {Tenant: ref.Tenant, Type: ref.Type, Version: 3, Release: ref.Release, Source: SourceHSM, Derivation: DeriveNone},
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
		{Tenant: "", Type: "data", Version: 1, Release: "r", Source: 1, Derivation: 1},
		{Tenant: "t", Type: "Data", Version: 1, Release: "r", Source: 1, Derivation: 1},
		{Tenant: "t", Type: "data", Version: 0, Release: "r", Source: 1, Derivation: 1},
		{Tenant: "t", Type: "data", Version: 1, Release: "", Source: 1, Derivation: 1},
		{Tenant: "t", Type: "data", Version: 1, Release: "r", Source: 3, Derivation: 1},
		{Tenant: "t", Type: "data", Version: 1, Release: "r", Source: 1, Derivation: 0},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("Check(%+v) = nil", r)
		}
		if _, err := Wrap(randomKey(t), r, randomKey(t)); err == nil {
			t.Errorf("Wrap(%+v) error = nil", r)
		}
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
	fuzzcorpus.New(t).Add("FuzzWrappedRelease", "valid", w)
}
