// Package hsmuri opens an HSM from the URI a user types ([Open]):
//
//	soft:PATH                      a soft HSM file (passphrase from the caller)
//	pkcs11:token=eu1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/path/pin
//	                               any PKCS#11 token (RFC 7512)
//
// The scheme, in any letter case, picks the backend: [soft.Open] or
// [pkcs11.Open].
package hsmuri

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
)

// Options tune Open.
type Options struct {
	// Create lets a soft HSM file be created when it does not exist (only
	// 'hsm init' sets it). PKCS#11 tokens are created with the vendor's tools.
	Create bool
	// Passphrase returns the passphrase of a soft HSM file. It is called
	// only for soft: URIs.
	Passphrase func() ([]byte, error)
}

// Open opens the HSM that uri names.
func Open(ctx context.Context, uri string, opts Options) (hsm.HSM, error) {
	// Errors never quote the URI: a mistyped one may carry a PIN.
	scheme, rest, ok := strings.Cut(uri, ":")
	switch {
	case !ok:
		return nil, errors.New("hsmuri: not an HSM URI: use soft:PATH or pkcs11:token=...")
	case strings.EqualFold(scheme, "soft"):
		if rest == "" {
			return nil, errors.New("hsmuri: soft: URI without a path: use soft:PATH")
		}
		if opts.Passphrase == nil {
			return nil, errors.New("hsmuri: no passphrase source for the soft HSM")
		}
		pass, err := opts.Passphrase()
		if err != nil {
			return nil, err
		}
		defer clear(pass)
		h, err := soft.Open(ctx, rest, pass, soft.Options{Create: opts.Create})
		if err != nil {
			return nil, err
		}
		return h, nil
	case strings.EqualFold(scheme, "pkcs11"):
		return pkcs11.Open(ctx, "pkcs11:"+rest)
	}
	if len(scheme) > 16 {
		scheme = scheme[:16] + "…"
	}
	return nil, fmt.Errorf("hsmuri: unknown HSM scheme %q: use soft:PATH or pkcs11:token=...", scheme)
}
