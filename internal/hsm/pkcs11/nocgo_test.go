//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestOpenWithoutCgo(t *testing.T) {
	_, err := Open(context.Background(), "pkcs11:token=eu1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/pin")
	if !errors.Is(err, ErrNoCgo) || !strings.Contains(err.Error(), "CGO_ENABLED=1") {
		t.Errorf("Open() error = %v, want ErrNoCgo telling to rebuild with CGO_ENABLED=1", err)
	}
	if _, err := Open(context.Background(), "pkcs11:token=eu1?pin-value=1"); err == nil || errors.Is(err, ErrNoCgo) {
		t.Errorf("Open(bad URI) error = %v, want the URI error", err)
	}
}
