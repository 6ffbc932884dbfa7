package cacheonly

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Secret returns the tenant secret of a cache-only key version (read from
// the store, not destroyed), fetched from its key service, for the data
// plane to derive the DEK from; the caller destroys it. rec is the request
// that needs it (nil: the system), on whose behalf the fetch is recorded.
//
//   - A key revoked by its key service is tenant.ErrKeyRevoked; it is asked
//     again at most once per RevokedRecheck on this node, and if it answers
//     with the key the revocation is lifted (in the store, for every node).
//   - A key whose last fetch here failed is tenant.ErrKeyUnavailable until
//     its next retry (Tracker), without asking the key service.
//   - A 410 records the revocation in the store, which tells every node.
func (s *Service) Secret(ctx context.Context, rec *audit.Entry, k tenant.Key) (secret.Key, error) {
	ref := k.KeyRef()
	ks, err := s.st.KeyService(ctx, ref)
	if err != nil {
		return secret.Key{}, fmt.Errorf("cacheonly: %s key version %d: %w", k.Type, k.Version, err)
	}
	now := s.now()
	revoked := !ks.Revoked.IsZero()
	if revoked && !s.askRevoked(ref, now) {
		return secret.Key{}, revokedError(ks)
	}
	if due, last := s.tracker.Due(ref, now); !due && !revoked {
		return secret.Key{}, unavailableError(ks, last)
	}
	creds, err := s.st.KeyServiceCredentials(ctx, k.Tenant)
	if err != nil {
		return secret.Key{}, fmt.Errorf("cacheonly: the tenant's key-service credentials: %w", err)
	}
	var bearer secret.Text
	if ks.Auth == tenant.AuthBearer {
		twk, err := s.ring.Secret(ctx, ks.Release, release.SecretTWK)
		if err != nil {
			return secret.Key{}, fmt.Errorf("cacheonly: the bearer secret of %s key version %d names release %s: %w", k.Type, k.Version, ks.Release, err)
		}
		bearer, err = tenant.UnwrapBearer(twk, ks)
		twk.Destroy()
		if err != nil {
			return secret.Key{}, fmt.Errorf("cacheonly: %s key version %d: %w", k.Type, k.Version, err)
		}
		defer bearer.Destroy()
	}
	m, err := s.fetchKey(ctx, rec, ks, creds, bearer)
	switch {
	case err == nil:
		s.tracker.Succeeded(ref)
		if revoked {
			if err := s.lift(ctx, rec, ks); err != nil {
				m.Destroy()
				return secret.Key{}, err
			}
		}
		return m, nil
	case errors.Is(err, ErrRevoked):
		s.tracker.Forget(ref)
		s.askRevoked(ref, now)
		if !revoked {
			ks.Revoked = now
			if err := s.revoke(ctx, rec, ks, now); err != nil {
				return secret.Key{}, err
			}
		}
		return secret.Key{}, revokedError(ks)
	case ctx.Err() != nil:
		return secret.Key{}, err
	case revoked:
		return secret.Key{}, revokedError(ks)
	}
	var fe *Error
	if errors.As(err, &fe) {
		s.tracker.Failed(ref, now, err)
		return secret.Key{}, unavailableError(ks, err)
	}
	return secret.Key{}, err
}

// askRevoked reports whether a revoked key may be asked about at now (not
// within RevokedRecheck of the last time), and if so records now.
func (s *Service) askRevoked(ref tenant.KeyRef, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.asked[ref]; ok && now.Sub(last) < RevokedRecheck {
		return false
	}
	s.asked[ref] = now
	return true
}

func revokedError(ks tenant.KeyService) error {
	return reason.New(tenant.ErrKeyRevoked, "%s key version %d was revoked by the tenant's key service at %s",
		ks.Type, ks.Version, ks.Revoked.UTC().Format(time.RFC3339))
}

func unavailableError(ks tenant.KeyService, cause error) error {
	msg := "its last fetch failed"
	var fe *Error
	if errors.As(cause, &fe) {
		msg = fe.Msg
	}
	return reason.Wrap(tenant.ErrKeyUnavailable, cause, "%s key version %d is unavailable: %s; this node retries on its schedule",
		ks.Type, ks.Version, msg)
}

// entry is the audit entry of an event about ks on behalf of rec.
func (s *Service) entry(rec *audit.Entry, ks tenant.KeyService, action audit.Action) audit.Entry {
	e := audit.Entry{Actor: audit.ActorSystem}
	if rec != nil {
		e = *rec
	}
	e.Time, e.Tenant, e.Key = s.now(), ks.Tenant, ks.KeyRef().Name()
	e.Action, e.Outcome, e.Reason, e.Count, e.Detail = action, audit.OutcomeOK, "", 0, ""
	return e
}

// revoke records a detected revocation in the store (which tells every
// node).
func (s *Service) revoke(ctx context.Context, rec *audit.Entry, ks tenant.KeyService, now time.Time) error {
	e := s.entry(rec, ks, ActionRevokeDetected)
	e.Detail = "the key service " + ks.URL + " answered 410: the key is revoked on every node"
	if _, err := s.st.RevokeKeyService(ctx, ks.KeyRef(), now, e); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cacheonly: recording the revocation: %w", err)
	}
	return nil
}

// lift records that a revoked key's service gave it again.
func (s *Service) lift(ctx context.Context, rec *audit.Entry, ks tenant.KeyService) error {
	e := s.entry(rec, ks, ActionRevokeLifted)
	e.Detail = "the key service " + ks.URL + " gave the key again: the revocation is lifted on every node"
	if _, err := s.st.LiftKeyServiceRevocation(ctx, ks.KeyRef(), e); err != nil {
		return fmt.Errorf("cacheonly: lifting the revocation: %w", err)
	}
	return nil
}

// fetchKey fetches ks's key with the tenant's credentials and records the
// fetch (action key.fetch: ok, refused or error, with the reason). If the
// fetch cannot be recorded, its key is not used.
func (s *Service) fetchKey(ctx context.Context, rec *audit.Entry, ks tenant.KeyService, creds tenant.KeyServiceCredentials,
	bearer secret.Text) (secret.Key, error) {
	t, err := s.target(ctx, ks, creds, bearer)
	if err != nil {
		return secret.Key{}, err
	}
	m, ferr := s.fetch.Fetch(ctx, t)
	e := s.entry(rec, ks, ActionFetch)
	e.Detail = "from " + ks.URL + " (kid " + ks.KID + ")"
	var fe *Error
	switch {
	case ferr == nil:
	case errors.As(ferr, &fe):
		e.Outcome, e.Reason = audit.OutcomeRefused, fe.Reason
		if errors.Is(ferr, ErrFailed) {
			e.Outcome = audit.OutcomeError
		}
		e.Detail += ": " + fe.Msg
	default:
		e.Outcome, e.Reason = audit.OutcomeError, "canceled"
	}
	if len(e.Detail) > audit.MaxDetail {
		e.Detail = e.Detail[:audit.MaxDetail]
	}
	if _, err := s.st.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		if ferr == nil {
			m.Destroy()
		}
		return secret.Key{}, fmt.Errorf("cacheonly: recording the fetch in the audit log: %w", err)
	}
	return m, ferr
}

// target is the fetch of ks: its trust, its OAEP hash, the tenant's
// recipient key and, for mtls, client certificate.
func (s *Service) target(ctx context.Context, ks tenant.KeyService, creds tenant.KeyServiceCredentials, bearer secret.Text) (Target, error) {
	pool, err := roots(ks.CA)
	if err != nil {
		return Target{}, err
	}
	rk, err := s.h.EncryptionKey(ctx, creds.Recipient)
	if err != nil {
		return Target{}, fmt.Errorf("cacheonly: the recipient key: %w", err)
	}
	t := Target{URL: ks.URL, KID: ks.KID, Roots: pool, OAEP: hsm.OAEPSHA256, Recipient: rk, Bearer: bearer}
	if ks.OAEP == tenant.OAEPSHA1 {
		t.OAEP = hsm.OAEPSHA1
	}
	if ks.Auth == tenant.AuthMTLS {
		sk, err := s.h.SigningKey(ctx, creds.ClientKey)
		if err != nil {
			return Target{}, fmt.Errorf("cacheonly: the client key: %w", err)
		}
		if t.ClientCert, err = TLSClientCert(creds.ClientCert, sk); err != nil {
			return Target{}, err
		}
	}
	return t, nil
}
