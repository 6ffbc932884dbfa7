package client_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// dekServer is a server with tenant acme, its data and analytics keys, and
// an app token's client.
func dekServer(t *testing.T) (*server, *client.Client) {
	t.Helper()
	s := newServer(t, apitest.Options{})
	s.Tenant(t, "acme")
	op := s.client(t, s.Operator)
	for _, typ := range []string{"data", "analytics"} {
		if _, err := op.GenerateKey(ctx, "acme", typ); err != nil {
			t.Fatalf("GenerateKey(acme, %s) = %v", typ, err)
		}
	}
	return s, s.client(t, s.Token(t, api.RoleApp, "acme"))
}

// TestDEKServerFormat: what a DEK encrypts locally the server decrypts, and
// the other way round, with both KEMs and any context.
func TestDEKServerFormat(t *testing.T) {
	_, app := dekServer(t)
	contexts := map[string]map[string]string{
		"nil":   nil,
		"empty": {},
		"pairs": {"table": "accounts", "field": "ssn", "row": "42", "é": ""},
	}
	for _, kem := range []uint16{client.KEMX25519, client.KEMMLKEM768X25519} {
		dek, err := app.DEK(ctx, "acme", "data", 0, kem)
		if err != nil {
			t.Fatalf("DEK(acme, data, 0, %#04x) = %v", kem, err)
		}
		defer dek.Destroy()
		for name, c := range contexts {
			t.Run(fmt.Sprintf("%#04x/%s", kem, name), func(t *testing.T) {
				pt := []byte("4111 1111 1111 1111 " + name)
				local, err := dek.Encrypt(pt, c)
				if err != nil {
					t.Fatalf("Encrypt(%q, %v) = %v", pt, c, err)
				}
				dec, err := app.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: local, Context: c})
				if err != nil || dec[0].Error != nil || !bytes.Equal(dec[0].Plaintext, pt) || dec[0].Type != "data" || dec[0].Version != dek.Version() {
					t.Errorf("server Decrypt(local ciphertext) = %+v, %v, want %q under data/%d", dec, err, pt, dek.Version())
				}
				enc, err := app.Encrypt(ctx, "acme", "data", api.EncryptItem{Plaintext: pt, Context: c})
				if err != nil || enc[0].Error != nil {
					t.Fatalf("server Encrypt(%q) = %+v, %v", pt, enc, err)
				}
				if got, err := dek.Decrypt(enc[0].Ciphertext, c); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Decrypt(server ciphertext) = %q, %v, want %q", got, err, pt)
				}
			})
		}
	}
}

func TestDEKFailures(t *testing.T) {
	_, app := dekServer(t)
	dek, err := app.DEK(ctx, "acme", "", 0, 0)
	if err != nil {
		t.Fatalf("DEK(acme) = %v", err)
	}
	c := map[string]string{"field": "ssn"}
	ct, err := dek.Encrypt([]byte("secret"), c)
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Clone(ct)
	altered[len(altered)-1] ^= 1
	other, err := app.Encrypt(ctx, "acme", "analytics", api.EncryptItem{Plaintext: []byte("secret"), Context: c})
	if err != nil || other[0].Error != nil {
		t.Fatalf("server Encrypt(analytics) = %+v, %v", other, err)
	}
	for _, tt := range []struct {
		name    string
		ct      []byte
		context map[string]string
		msg     string // in the error, besides ErrDecrypt's
	}{
		{"another context", ct, map[string]string{"field": "card"}, ""},
		{"no context", ct, nil, ""},
		{"altered", altered, c, ""},
		{"truncated", ct[:len(ct)-1], c, ""},
		{"empty", nil, c, ""},
		{"another key", other[0].Ciphertext, c, "key analytics version 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := dek.Decrypt(tt.ct, tt.context)
			if !errors.Is(err, client.ErrDecrypt) || pt != nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Decrypt(%s) = %q, %v, want %v (%q)", tt.name, pt, err, client.ErrDecrypt, tt.msg)
			}
		})
	}
	if _, err := dek.Encrypt([]byte("x"), map[string]string{"": "empty key"}); err == nil {
		t.Error("Encrypt(context with an empty key) error = nil")
	}

	// Bytes is a copy: wiping it leaves the DEK whole.
	b := dek.Bytes()
	if len(b) != 32 {
		t.Fatalf("Bytes() = %d bytes, want 32", len(b))
	}
	clear(b)
	if pt, err := dek.Decrypt(ct, c); err != nil || string(pt) != "secret" {
		t.Errorf("Decrypt after wiping Bytes() = %q, %v, want %q", pt, err, "secret")
	}

	// Destroy reaches every copy; the zero DEK is destroyed.
	copied := dek
	dek.Destroy()
	dek.Destroy()
	for name, d := range map[string]client.DEK{"destroyed": dek, "a copy": copied, "zero": {}} {
		if _, err := d.Encrypt([]byte("x"), nil); !errors.Is(err, client.ErrDestroyed) {
			t.Errorf("Encrypt(%s DEK) = %v, want %v", name, err, client.ErrDestroyed)
		}
		if _, err := d.Decrypt(ct, c); !errors.Is(err, client.ErrDestroyed) {
			t.Errorf("Decrypt(%s DEK) = %v, want %v", name, err, client.ErrDestroyed)
		}
		if b := d.Bytes(); b != nil {
			t.Errorf("Bytes(%s DEK) = %d bytes, want nil", name, len(b))
		}
		d.Destroy()
	}
}

// TestDEKRedacts: no fmt verb, slog handler or encoder shows the key.
func TestDEKRedacts(t *testing.T) {
	_, app := dekServer(t)
	dek, err := app.DEK(ctx, "acme", "data", 0, 0)
	if err != nil {
		t.Fatalf("DEK(acme) = %v", err)
	}
	defer dek.Destroy()
	key := dek.Bytes()
	defer clear(key)
	forms := []string{
		string(key), hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
		fmt.Sprint(key), fmt.Sprintf("%#v", key)[len("[]byte{"):], fmt.Sprintf("%q", key),
	}

	type holder struct {
		DEK client.DEK
		Ptr *client.DEK
	}
	h := holder{DEK: dek, Ptr: &dek}
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%s", "%x", "%X", "%#v", "%q", "%d", "%T %[1]v"} {
		outputs[verb] = fmt.Sprintf(verb, dek)
		outputs[verb+" pointer"] = fmt.Sprintf(verb, &dek)
		outputs[verb+" in a struct"] = fmt.Sprintf(verb, h)
	}
	outputs["Sprint"] = fmt.Sprint(dek)
	outputs["Sprintln"] = fmt.Sprintln(dek, &dek)
	outputs["String"] = dek.String()
	outputs["GoString"] = dek.GoString()
	for name, v := range map[string]any{"json": dek, "json pointer": &dek, "json in a struct": h} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%s) = %v", name, err)
		}
		outputs[name] = string(out)
	}
	text, err := dek.MarshalText()
	if err != nil {
		t.Fatalf("MarshalText() = %v", err)
	}
	outputs["MarshalText"] = string(text)
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(newHandler(&b)).Info("dek", "dek", dek, "pointer", &dek, "holder", h, slog.Group("g", "dek", dek))
		outputs[name] = b.String()
	}

	for name, out := range outputs {
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("%s = %q, want [REDACTED]", name, out)
		}
		for _, f := range forms {
			if strings.Contains(out, f) {
				t.Errorf("%s = %q, holds the key", name, out)
			}
		}
	}
	if got, want := fmt.Sprintf("%#v", dek), "client.DEK{[REDACTED]}"; got != want {
		t.Errorf("Sprintf(%%#v, DEK) = %q, want %q", got, want)
	}
}
