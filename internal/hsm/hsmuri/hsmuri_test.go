package hsmuri

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func pass(p string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(p), nil } }

func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.soft")
	cases := []struct {
		uri  string
		opts Options
		want string // "" = success
	}{
		{"no-scheme", Options{}, "hsmuri: not an HSM URI"},
		{"tpm:foo", Options{}, `hsmuri: unknown HSM scheme "tpm"`},
		{"PKCS12:token=eu1?pin-value=123456", Options{}, `hsmuri: unknown HSM scheme "PKCS12"`},
		{"soft:", Options{Passphrase: pass("x")}, "hsmuri: soft: URI without a path"},
		{"soft:" + path, Options{}, "hsmuri: no passphrase source"},
		{"soft:" + path, Options{Passphrase: pass("x")}, "no soft HSM file"},
		{"soft:" + path, Options{Passphrase: func() ([]byte, error) { return nil, errors.New("no passphrase: set it") }}, "no passphrase: set it"},
		{"soft:" + path, Options{Create: true, Passphrase: pass("x")}, ""},
		{"soft:" + path, Options{Passphrase: pass("x")}, ""},
		{"soft:" + path, Options{Passphrase: pass("y")}, "wrong passphrase"},
		{"pkcs11:token=x?module-path=/nonexistent.so&pin-value=1", Options{}, "pin-value"},
		{"SOFT:" + path, Options{Passphrase: pass("x")}, ""},
	}
	for _, c := range cases {
		h, err := Open(ctx, c.uri, c.opts)
		if c.want == "" {
			if err != nil {
				t.Errorf("Open(%q) error = %v", c.uri, err)
				continue
			}
			if h.Info().Backend != "soft" {
				t.Errorf("Open(%q) backend = %q", c.uri, h.Info().Backend)
			}
			h.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) error = %v, want it to contain %q", c.uri, err, c.want)
		}
		if strings.Contains(err.Error(), "pin-value=1") || strings.Contains(err.Error(), "123456") {
			t.Errorf("Open(%q) error = %v quotes a PIN", c.uri, err)
		}
	}
}
