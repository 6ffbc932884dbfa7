package client_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// TestDEKDeterministic: a deterministic key's DEK encrypts locally exactly
// as the server does for the same field (the same bytes), both decrypt the
// other's, and the wrong field or plain Encrypt is refused.
func TestDEKDeterministic(t *testing.T) {
	s, app := dekServer(t)
	if _, err := s.client(t, s.Operator).GenerateKey(ctx, "acme", "deterministic"); err != nil {
		t.Fatal(err)
	}
	dek, err := app.DEK(ctx, "acme", "deterministic", 0, client.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	defer dek.Destroy()
	c := map[string]string{"table": "users"}
	pt := []byte("Alice@Example.com")
	for _, fold := range []bool{false, true} {
		local, err := dek.EncryptField("users.email", fold, pt, c)
		if err != nil {
			t.Fatalf("EncryptField(fold %v) = %v", fold, err)
		}
		enc, err := app.Encrypt(ctx, "acme", "deterministic", api.EncryptItem{Plaintext: pt, Context: c, Field: "users.email", CaseInsensitive: fold})
		if err != nil || enc[0].Error != nil {
			t.Fatalf("server Encrypt(field) = %+v, %v", enc, err)
		}
		if !bytes.Equal(local, enc[0].Ciphertext) {
			t.Errorf("EncryptField(fold %v) = %x, the server's %x: want the same bytes", fold, local, enc[0].Ciphertext)
		}
		want := pt
		if fold {
			want = []byte("alice@example.com")
		}
		if got, err := dek.DecryptField("users.email", enc[0].Ciphertext, c); err != nil || !bytes.Equal(got, want) {
			t.Errorf("DecryptField(server ciphertext) = %q, %v, want %q", got, err, want)
		}
		if got, err := dek.DecryptField("users.name", local, c); !errors.Is(err, client.ErrDecrypt) || got != nil {
			t.Errorf("DecryptField(wrong field) = %q, %v, want ErrDecrypt", got, err)
		}
		if got, err := dek.DecryptField("users.email", local, nil); !errors.Is(err, client.ErrDecrypt) || got != nil {
			t.Errorf("DecryptField(wrong context) = %q, %v, want ErrDecrypt", got, err)
		}
		if got, err := dek.Decrypt(local, c); !errors.Is(err, client.ErrDecrypt) || got != nil {
			t.Errorf("Decrypt(deterministic) = %q, %v, want ErrDecrypt", got, err)
		}
	}
	if _, err := dek.Encrypt(pt, c); !errors.Is(err, client.ErrField) {
		t.Errorf("Encrypt(deterministic key) error = %v, want ErrField", err)
	}
	if _, err := dek.EncryptField("", false, pt, c); !errors.Is(err, client.ErrField) {
		t.Errorf("EncryptField(no field) error = %v, want ErrField", err)
	}
	data, err := app.DEK(ctx, "acme", "data", 0, client.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Destroy()
	if _, err := data.EncryptField("users.email", false, pt, c); !errors.Is(err, client.ErrField) {
		t.Errorf("EncryptField(data key) error = %v, want ErrField", err)
	}
}
