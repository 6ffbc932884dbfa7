// Package storetest is the conformance suite every store engine passes, and
// Postgres, which gives a test a throwaway PostgreSQL database.
//
// An engine's test calls Run with a function that opens a fresh, empty store;
// each subtest opens its own. The suite checks behaviour through
// *store.Store's exported methods only. It never sleeps: every time is
// injected.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Run runs the conformance suite. open must return a fresh, empty store and
// arrange (t.Cleanup) for it to be closed and removed.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *store.Store)
	}{
		{"Tenants", testTenants},
		{"TenantValidation", testTenantValidation},
		{"Tokens", testTokens},
		{"TokenValidation", testTokenValidation},
		{"TokenParents", testTokenParents},
		{"TokenParentsMany", testTokenParentsMany},
		{"TokenList", testTokenList},
		{"TokenTouch", testTokenTouch},
		{"ConcurrentRevokeCreate", testConcurrentRevokeCreate},
		{"TokenLimit", testTokenLimit},
		{"TokenNames", testTokenNames},
		{"ConcurrentTokenLimit", testConcurrentTokenLimit},
		{"Releases", testReleases},
		{"ReleaseValidation", testReleaseValidation},
		{"RotateStates", testRotateStates},
		{"RotateRateLimit", testRotateRateLimit},
		{"RotateMaxKeys", testRotateMaxKeys},
		{"RotateDuplicateFingerprint", testRotateDuplicate},
		{"RotateNotFound", testRotateNotFound},
		{"RotateValidation", testRotateValidation},
		{"ExpectedVersion", testExpectedVersion},
		{"Destroy", testDestroy},
		{"KeyLookups", testKeyLookups},
		{"Timestamps", testTimestamps},
		{"ErrorsNeverHoldKeyMaterial", testErrorMessages},
		{"ConcurrentRotateSameSeries", testConcurrentSame},
		{"ConcurrentRotateManyTenants", testConcurrentMany},
		{"ConcurrentDuplicateAcrossTypes", testConcurrentDuplicate},
		{"DerivationOptOut", testDerivationOptOut},
		{"ExportKey", testExportKey},
		{"ConcurrentExportKey", testConcurrentExportKey},
		{"UploadCerts", testUploadCerts},
		{"UploadCertValidation", testUploadCertValidation},
		{"UploadCertLimit", testUploadCertLimit},
		{"ConcurrentUploadCertLimit", testConcurrentUploadCertLimit},
		{"UploadLimit", testUploadLimit},
		{"ConcurrentUploadLimit", testConcurrentUploadLimit},
		{"Restore", testRestore},
		{"RestoreMaxKeys", testRestoreMaxKeys},
		{"RestoreValidation", testRestoreValidation},
		{"ConcurrentRestoreRotate", testConcurrentRestoreRotate},
		{"DestroyedSince", testDestroyedSince},
		{"WatchDestroyed", testWatchDestroyed},
		{"WatchChanges", func(t *testing.T, s *store.Store) { changesAcross(t, s, s) }},
		{"BYOKErrorsNeverHoldKeyMaterial", testBYOKErrorMessages},
		{"KeyServices", testKeyServices},
		{"KeyServiceValidation", testKeyServiceValidation},
		{"KeyServiceCredentials", testKeyServiceCredentials},
		{"RevokeWatched", func(t *testing.T, s *store.Store) { revokeAcross(t, s, s) }},
		{"AuditAppend", testAuditAppend},
		{"AuditTimeOrder", testAuditTimeOrder},
		{"AuditInvalid", testAuditInvalid},
		{"AuditFilters", testAuditFilters},
		{"AuditMany", testAuditMany},
		{"AuditCheckpoints", testAuditCheckpoints},
		{"AuditLifecycle", testAuditLifecycle},
		{"AuditEntryPerWrite", testAuditEntryPerWrite},
		{"AuditInvalidEntry", testAuditInvalidEntry},
		{"AuditConcurrent", testAuditConcurrent},
		{"KeyUsage", testKeyUsage},
		{"KeyUsageReport", testKeyUsageReport},
		{"KeyUsageConcurrent", testKeyUsageConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// Rec is the audit entry of lifecycle writes in tests that are not about
// the audit log: a valid one, which the store appends with each change.
var Rec = audit.Entry{Time: t0, Actor: "storetest", Action: "storetest.change"}

// rec is Rec, for the suite.
var rec = Rec

// t0 is the suite's epoch: microsecond-aligned, as the store keeps times.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)

const day = 24 * time.Hour

func mustTenant(t *testing.T, s *store.Store, name string) tenant.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(ctx, tenant.New(name, tenant.EnvProduction, t0), rec)
	if err != nil {
		t.Fatalf("CreateTenant(%q) error = %v", name, err)
	}
	return tn
}

// bundle is a PEM release bundle stand-in.
func bundle(id string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "STRONGROOM RELEASE BUNDLE", Bytes: []byte("bundle " + id)})
}

func mustRelease(t *testing.T, s *store.Store, id string) release.Installation {
	t.Helper()
	r, err := s.InstallRelease(ctx, release.Installation{ID: id, Bundle: bundle(id), Installed: t0}, rec)
	if err != nil {
		t.Fatalf("InstallRelease(%s) error = %v", id, err)
	}
	return r
}

// newKey is a new key with distinct wrapped bytes and, if fp != "", a
// fingerprint.
func newKey(release, fp string) tenant.Key {
	w := sha256.Sum256([]byte("wrapped " + release + fp + time.Now().String()))
	k := tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: release, Wrapped: append(w[:], 0xee)}
	if fp != "" {
		f := sha256.Sum256([]byte("fingerprint " + fp))
		k.Source, k.Derivation, k.Fingerprint = tenant.SourceUploaded, tenant.DerivationNone, f[:]
	}
	return k
}

func rotateReq(tenantID, typ string, k tenant.Key, now time.Time) store.RotateRequest {
	return store.RotateRequest{Tenant: tenantID, Type: typ, New: k, MinInterval: day, MaxKeys: 10, Now: now}
}

func mustRotate(t *testing.T, s *store.Store, req store.RotateRequest) tenant.Key {
	t.Helper()
	k, err := s.Rotate(ctx, req, rec)
	if err != nil {
		t.Fatalf("Rotate(%s, %s, now=%s) error = %v", req.Tenant, req.Type, req.Now.Format(time.RFC3339Nano), err)
	}
	return k
}

// tokenByHash is TokenByHash with "not found" as store.ErrNotFound,
// checked to come with a zero token and a nil error.
func tokenByHash(s *store.Store, h [32]byte) (auth.Token, error) {
	tok, found, err := s.TokenByHash(ctx, h)
	if err == nil && !found {
		if tok != (auth.Token{}) {
			return tok, fmt.Errorf("TokenByHash() = %+v, found false: want a zero token", tok)
		}
		return tok, store.ErrNotFound
	}
	return tok, err
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s error = %v, want %v", what, err, want)
		return
	}
	if !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("%s error %q does not start with \"store: \"", what, err)
	}
}

func equalKey(a, b tenant.Key) bool {
	return a.Tenant == b.Tenant && a.Type == b.Type && a.Version == b.Version && a.State == b.State &&
		a.Source == b.Source && a.Derivation == b.Derivation && a.Release == b.Release &&
		bytes.Equal(a.Wrapped, b.Wrapped) && (a.Wrapped == nil) == (b.Wrapped == nil) &&
		bytes.Equal(a.Fingerprint, b.Fingerprint) && (a.Fingerprint == nil) == (b.Fingerprint == nil) &&
		a.Created.Equal(b.Created) && a.Destroyed.Equal(b.Destroyed)
}

func fmtKey(k tenant.Key) string {
	return fmt.Sprintf("{%s %s v%d %s %s %s rel=%s wrapped=%d bytes fp=%d bytes created=%s destroyed=%s}",
		k.Tenant, k.Type, k.Version, k.State, k.Source, k.Derivation, k.Release, len(k.Wrapped), len(k.Fingerprint),
		k.Created.Format(time.RFC3339Nano), k.Destroyed.Format(time.RFC3339Nano))
}

func checkKey(t *testing.T, what string, got, want tenant.Key) {
	t.Helper()
	if !equalKey(got, want) {
		t.Errorf("%s = %s, want %s", what, fmtKey(got), fmtKey(want))
	}
}
