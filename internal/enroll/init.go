// Package enroll initializes HSMs for their role and certifies regions.
//
// The primary HSM holds an RSA-4096 encryption key pair and an ECDSA P-384
// signing key pair; its public halves are published as primary.pub. A
// regional HSM holds an RSA-4096 encryption key pair; it asks to be enrolled
// with a request carrying its public key and a proof of possession, and the
// primary answers with a region certificate. The byte-level formats are in
// docs/formats.md.
package enroll

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// Key labels in the HSM.
const (
	LabelPrimaryEncryption = "strongroom-primary-encryption"
	LabelPrimarySigning    = "strongroom-primary-signing"
	LabelRegionEncryption  = "strongroom-region-encryption"
)

// State is what an HSM holds of Strongroom's role keys.
type State struct {
	PrimaryEncryption hsm.EncryptionKey
	PrimarySigning    hsm.SigningKey
	RegionEncryption  hsm.EncryptionKey
}

// Role names what the keys make the HSM: "primary", "regional", "" (none)
// or "inconsistent".
func (s State) Role() string {
	switch {
	case s.PrimaryEncryption == nil && s.PrimarySigning == nil && s.RegionEncryption == nil:
		return ""
	case s.PrimaryEncryption != nil && s.PrimarySigning != nil && s.RegionEncryption == nil:
		return "primary"
	case s.PrimaryEncryption == nil && s.PrimarySigning == nil && s.RegionEncryption != nil:
		return "regional"
	}
	return "inconsistent"
}

// present lists the labels found.
func (s State) present() []string {
	var l []string
	if s.PrimaryEncryption != nil {
		l = append(l, LabelPrimaryEncryption)
	}
	if s.PrimarySigning != nil {
		l = append(l, LabelPrimarySigning)
	}
	if s.RegionEncryption != nil {
		l = append(l, LabelRegionEncryption)
	}
	return l
}

// Inspect finds Strongroom's role keys in h.
func Inspect(ctx context.Context, h hsm.HSM) (State, error) {
	var s State
	var err error
	if s.PrimaryEncryption, err = optional(h.EncryptionKey(ctx, LabelPrimaryEncryption)); err != nil {
		return s, err
	}
	if s.PrimarySigning, err = optional(h.SigningKey(ctx, LabelPrimarySigning)); err != nil {
		return s, err
	}
	if s.RegionEncryption, err = optional(h.EncryptionKey(ctx, LabelRegionEncryption)); err != nil {
		return s, err
	}
	return s, nil
}

// optional turns ErrNotFound into a nil key.
func optional[K any](k K, err error) (K, error) {
	if errors.Is(err, hsm.ErrNotFound) {
		var zero K
		return zero, nil
	}
	return k, err
}

// ErrInitialized: the HSM already holds Strongroom keys; nothing was changed.
var ErrInitialized = errors.New("enroll: the HSM is already initialized")

func refuseIfInitialized(ctx context.Context, h hsm.HSM) error {
	s, err := Inspect(ctx, h)
	if err != nil {
		return err
	}
	if p := s.present(); len(p) > 0 {
		return fmt.Errorf("%w (it holds %s); its keys were left untouched. Use 'strongroom hsm info' to see them", ErrInitialized, strings.Join(p, ", "))
	}
	return nil
}

// InitPrimary creates the primary HSM's signing and encryption key pairs and
// returns primary.pub. It refuses, changing nothing, if the HSM holds any
// Strongroom key.
func InitPrimary(ctx context.Context, h hsm.HSM, now time.Time) ([]byte, error) {
	if err := refuseIfInitialized(ctx, h); err != nil {
		return nil, err
	}
	sig, err := h.GenerateSigningKey(ctx, LabelPrimarySigning)
	if err != nil {
		return nil, fmt.Errorf("enroll: generate the primary signing key: %w", err)
	}
	enc, err := h.GenerateEncryptionKey(ctx, LabelPrimaryEncryption, hsm.UseUnwrapOnly)
	if err != nil {
		return nil, fmt.Errorf("enroll: generate the primary encryption key: %w", err)
	}
	return ExportPrimary(ctx, h, enc, sig, now)
}

// ExportPrimary (re)writes primary.pub from the keys of an initialized primary.
func ExportPrimary(ctx context.Context, h hsm.HSM, enc hsm.EncryptionKey, sig hsm.SigningKey, now time.Time) ([]byte, error) {
	p := &Primary{
		Encryption: enc.RSAPublicKey(),
		Signing:    sig.ECDSAPublicKey(),
		OAEPHashes: h.Info().OAEPHashes,
		Created:    now.UTC().Truncate(time.Second),
	}
	return signPrimary(ctx, p, enc, sig)
}

// InitRegion creates a regional HSM's encryption key pair and returns its
// enrollment request. It refuses, changing nothing, if the HSM holds any
// Strongroom key.
func InitRegion(ctx context.Context, h hsm.HSM, region string, now time.Time) ([]byte, error) {
	if err := ValidRegion(region); err != nil {
		return nil, err
	}
	if err := refuseIfInitialized(ctx, h); err != nil {
		return nil, err
	}
	enc, err := h.GenerateEncryptionKey(ctx, LabelRegionEncryption, hsm.UseDecrypt)
	if err != nil {
		return nil, fmt.Errorf("enroll: generate the regional encryption key: %w", err)
	}
	return ExportRequest(ctx, h, enc, region, now)
}

// ExportRequest (re)writes an enrollment request for an initialized region.
func ExportRequest(ctx context.Context, h hsm.HSM, enc hsm.EncryptionKey, region string, now time.Time) ([]byte, error) {
	if err := ValidRegion(region); err != nil {
		return nil, err
	}
	info := h.Info()
	r := &Request{
		Region:     region,
		Encryption: enc.RSAPublicKey(),
		OAEPHashes: info.OAEPHashes,
		HSM:        strings.TrimSpace(info.Backend + " " + info.Description),
		Created:    now.UTC().Truncate(time.Second),
	}
	if _, err := rand.Read(r.Nonce[:]); err != nil {
		return nil, err
	}
	return signRequest(ctx, r, enc)
}
