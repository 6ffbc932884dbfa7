package store

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"time"
)

// Limits on the stored values of bring-your-own-key.
const (
	MaxKeyLabel = 128      // bytes of an upload certificate's HSM key label
	MaxCertDER  = 16 << 10 // bytes of a DER certificate or certificate request
)

// ValidKeyLabel checks an HSM key label: 1 to MaxKeyLabel bytes of printable
// ASCII (space to tilde).
func ValidKeyLabel(label string) error {
	if len(label) == 0 || len(label) > MaxKeyLabel {
		return invalidf("invalid key label: use 1 to %d bytes of printable ASCII, not %d bytes", MaxKeyLabel, len(label))
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; c < 0x20 || c > 0x7e {
			return invalidf("invalid key label %q: use printable ASCII only", label)
		}
	}
	return nil
}

// Check validates k and returns it as the store keeps it: Created per Time,
// Wrapped copied.
func (k ExportKey) Check() (ExportKey, error) {
	if err := ValidID("tenant", k.Tenant); err != nil {
		return ExportKey{}, err
	}
	if err := ValidReleaseID(k.Release); err != nil {
		return ExportKey{}, err
	}
	if len(k.Wrapped) == 0 || len(k.Wrapped) > MaxWrapped {
		return ExportKey{}, invalidf("the export key's wrapped material must be 1 to %d bytes, not %d", MaxWrapped, len(k.Wrapped))
	}
	var err error
	if k.Created, err = CheckTime("export key creation", k.Created); err != nil {
		return ExportKey{}, err
	}
	k.Wrapped = bytes.Clone(k.Wrapped)
	return k, nil
}

// checkDER checks the size of a DER blob that may be absent, and returns it
// copied, or nil if empty.
func checkDER(what string, der []byte) ([]byte, error) {
	if len(der) > MaxCertDER {
		return nil, invalidf("the %s must be at most %d bytes, not %d", what, MaxCertDER, len(der))
	}
	if len(der) == 0 {
		return nil, nil
	}
	return bytes.Clone(der), nil
}

// CheckCertificate checks a DER certificate and its validity as
// ActivateUploadCert takes them, and returns them as the store keeps them:
// the certificate copied (1 to MaxCertDER bytes), the times per Time,
// notAfter after notBefore. The store does not parse the certificate: the
// caller does, and passes its validity.
func CheckCertificate(der []byte, notBefore, notAfter time.Time) ([]byte, time.Time, time.Time, error) {
	if len(der) == 0 {
		return nil, time.Time{}, time.Time{}, invalidf("the certificate is empty")
	}
	der, err := checkDER("certificate", der)
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	if notBefore, err = CheckTime("certificate not-before", notBefore); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	if notAfter, err = CheckTime("certificate not-after", notAfter); err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	if !notAfter.After(notBefore) {
		return nil, time.Time{}, time.Time{}, invalidf("the certificate's not-after %s is not after its not-before %s",
			notAfter.Format(time.RFC3339Nano), notBefore.Format(time.RFC3339Nano))
	}
	return der, notBefore, notAfter, nil
}

// Check validates c for CreateUploadCert and returns it as the store keeps
// it: ID filled with NewID() if empty, times per Time, CSR and Certificate
// copied (empty ones made nil). The rules:
//
//   - a pending certificate has a CSR (the CA-signed flow), no Certificate
//     and no validity;
//   - an active one has a Certificate and its validity (NotAfter after
//     NotBefore), and a CSR only if it came from the CA-signed flow;
//   - a new certificate is never retired (Retired zero): RetireUploadCert
//     retires it.
func (c UploadCert) Check() (UploadCert, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	if err := ValidID("upload certificate", c.ID); err != nil {
		return UploadCert{}, err
	}
	if err := ValidID("tenant", c.Tenant); err != nil {
		return UploadCert{}, err
	}
	if err := ValidKeyLabel(c.KeyLabel); err != nil {
		return UploadCert{}, err
	}
	if !c.State.Valid() {
		return UploadCert{}, invalidf("invalid upload certificate state %q: use %q or %q", c.State, CertPending, CertActive)
	}
	if c.State == CertRetired || !c.Retired.IsZero() {
		return UploadCert{}, invalidf("a new upload certificate cannot be retired: create it %q or %q, then retire it", CertPending, CertActive)
	}
	var err error
	if c.CSR, err = checkDER("certificate request", c.CSR); err != nil {
		return UploadCert{}, err
	}
	switch c.State {
	case CertPending:
		switch {
		case c.CSR == nil:
			return UploadCert{}, invalidf("a pending upload certificate needs its certificate request")
		case len(c.Certificate) != 0:
			return UploadCert{}, invalidf("a pending upload certificate has no certificate yet: create it active, or activate it")
		case !c.NotBefore.IsZero() || !c.NotAfter.IsZero():
			return UploadCert{}, invalidf("a pending upload certificate has no validity yet")
		}
		c.Certificate = nil
	case CertActive:
		if c.Certificate, c.NotBefore, c.NotAfter, err = CheckCertificate(c.Certificate, c.NotBefore, c.NotAfter); err != nil {
			return UploadCert{}, err
		}
	}
	if c.Created, err = CheckTime("upload certificate creation", c.Created); err != nil {
		return UploadCert{}, err
	}
	return c, nil
}

// Check validates req and returns it as the store uses it: Now per Time,
// Wrapped copied, an empty Fingerprint made nil.
func (req RestoreRequest) Check() (RestoreRequest, error) {
	if err := ValidKeyRef(req.Tenant, req.Type, req.Version); err != nil {
		return RestoreRequest{}, err
	}
	if err := ValidReleaseID(req.Release); err != nil {
		return RestoreRequest{}, err
	}
	switch {
	case len(req.Wrapped) == 0 || len(req.Wrapped) > MaxWrapped:
		return RestoreRequest{}, invalidf("the restored key's wrapped material must be 1 to %d bytes, not %d", MaxWrapped, len(req.Wrapped))
	case len(req.Fingerprint) > MaxFingerprint:
		return RestoreRequest{}, invalidf("the restored key's fingerprint must be at most %d bytes, not %d", MaxFingerprint, len(req.Fingerprint))
	case req.MaxKeys < 1:
		return RestoreRequest{}, invalidf("maximum key count %d: it must be at least 1", req.MaxKeys)
	}
	var err error
	if req.Now, err = CheckTime("restoration", req.Now); err != nil {
		return RestoreRequest{}, err
	}
	req.Wrapped = bytes.Clone(req.Wrapped)
	if len(req.Fingerprint) == 0 {
		req.Fingerprint = nil
	} else {
		req.Fingerprint = bytes.Clone(req.Fingerprint)
	}
	return req, nil
}

// Decide applies the restore rules to a checked request (Check), the key as
// stored and the count of active and archived keys of its series (Live),
// both read under the rotation lock, in this order:
//
//  1. the key is not destroyed: ErrConflict;
//  2. req.Release is not the key's release: ErrConflict;
//  3. the key has a fingerprint and req.Fingerprint is nil or differs
//     (compared in constant time): ErrConflict; a key without a fingerprint
//     accepts any (and keeps none);
//  4. Live ≥ MaxKeys: ErrTooManyKeys;
//
// and otherwise returns the key to write: archived, with req.Wrapped and no
// destruction time; everything else as stored.
func (req RestoreRequest) Decide(k Key, live int) (Key, error) {
	ref := func() string { return fmt.Sprintf("tenant %s's %s key version %d", req.Tenant, req.Type, req.Version) }
	if k.State != StateDestroyed {
		return Key{}, Errorf(ErrConflict, "%s is %s, not destroyed: a backup can be imported only after the original was destroyed", ref(), k.State)
	}
	if req.Release != k.Release {
		return Key{}, Errorf(ErrConflict, "%s is wrapped under release %s, but the backup is under release %s: it is not this key's backup",
			ref(), k.Release, req.Release)
	}
	if k.Fingerprint != nil {
		if req.Fingerprint == nil {
			return Key{}, Errorf(ErrConflict, "%s has a fingerprint, but the backup has none", ref())
		}
		if subtle.ConstantTimeCompare(k.Fingerprint, req.Fingerprint) != 1 {
			return Key{}, Errorf(ErrConflict, "the backup's fingerprint differs from %s's: it is the backup of another secret", ref())
		}
	}
	if live >= req.MaxKeys {
		return Key{}, Errorf(ErrTooManyKeys, "tenant %s has %d active and archived %s keys, the most allowed is %d: destroy one before restoring another",
			req.Tenant, live, req.Type, req.MaxKeys)
	}
	k.State, k.Wrapped, k.Destroyed = StateArchived, bytes.Clone(req.Wrapped), time.Time{}
	return k, nil
}
