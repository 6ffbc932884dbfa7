package metrics

import (
	"context"
	"reflect"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// storeRefusals are the store's errors that are answers, not faults.
var storeRefusals = []error{store.ErrNotFound, store.ErrExists, store.ErrConflict, store.ErrRateLimited,
	store.ErrTooManyKeys, store.ErrTooManyCerts, store.ErrTooManyTokens, store.ErrTooManyFailures,
	store.ErrDuplicate, store.ErrRevoked, store.ErrDestroyed, store.ErrInvalid}

// untimedStoreMethods are the methods of *store.Store that take a context
// and are not operations to time: WatchDestroyed and WatchChanges start a
// watcher that runs until its context ends.
var untimedStoreMethods = map[string]bool{"WatchDestroyed": true, "WatchChanges": true}

// storeOps are the op label values of
// strongroom_store_operation_duration_seconds: the names of the methods of
// *store.Store that take a context, but the untimed ones.
func storeOps() []string {
	ctxType := reflect.TypeFor[context.Context]()
	t := reflect.TypeFor[*store.Store]()
	var names []string
	for i := range t.NumMethod() {
		m := t.Method(i)
		if m.Type.NumIn() > 1 && m.Type.In(1) == ctxType && !untimedStoreMethods[m.Name] {
			names = append(names, m.Name)
		}
	}
	return names
}

// Store is a *store.Store whose every operation is timed
// (strongroom_store_operation_duration_seconds, op = the method's name);
// its AppendAudit is also strongroom_audit_append_duration_seconds. The
// methods without a context (Close, Engine), WatchDestroyed and
// WatchChanges are the store's own.
type Store struct {
	*store.Store
	m *Metrics
}

// Store returns st, timed by m, which must not be nil.
func (m *Metrics) Store(st *store.Store) *Store {
	if m == nil {
		panic("metrics: Store of nil Metrics")
	}
	return &Store{Store: st, m: m}
}

func (s *Store) time(op string, start time.Time, err *error) {
	s.m.store.get(op).observe(classify(*err, storeRefusals), start)
}

func (s *Store) AppendAudit(ctx context.Context, entries ...audit.Entry) (_ []audit.Entry, err error) {
	defer func(start time.Time) { s.m.audit.observe(classify(err, storeRefusals), start) }(time.Now())
	defer s.time("AppendAudit", time.Now(), &err)
	return s.Store.AppendAudit(ctx, entries...)
}

func (s *Store) AppendAuditUsage(ctx context.Context, counts []keyusage.Count, entries ...audit.Entry) (_ []audit.Entry, err error) {
	defer func(start time.Time) { s.m.audit.observe(classify(err, storeRefusals), start) }(time.Now())
	defer s.time("AppendAuditUsage", time.Now(), &err)
	return s.Store.AppendAuditUsage(ctx, counts, entries...)
}

func (s *Store) KeyUsage(ctx context.Context, tenantID, typ string) (_ []keyusage.Usage, err error) {
	defer s.time("KeyUsage", time.Now(), &err)
	return s.Store.KeyUsage(ctx, tenantID, typ)
}

func (s *Store) ReportDataAtRest(ctx context.Context, tenantID, typ, dataset string, rows map[uint32]uint64, at time.Time, rec audit.Entry) (err error) {
	defer s.time("ReportDataAtRest", time.Now(), &err)
	return s.Store.ReportDataAtRest(ctx, tenantID, typ, dataset, rows, at, rec)
}

func (s *Store) AuditEntries(ctx context.Context, f store.AuditFilter, fn func(audit.Entry) error) (err error) {
	defer s.time("AuditEntries", time.Now(), &err)
	return s.Store.AuditEntries(ctx, f, fn)
}

func (s *Store) AuditState(ctx context.Context) (_ audit.State, err error) {
	defer s.time("AuditState", time.Now(), &err)
	return s.Store.AuditState(ctx)
}

func (s *Store) AddCheckpoint(ctx context.Context, size uint64, signed []byte) (err error) {
	defer s.time("AddCheckpoint", time.Now(), &err)
	return s.Store.AddCheckpoint(ctx, size, signed)
}

func (s *Store) Checkpoints(ctx context.Context) (_ [][]byte, err error) {
	defer s.time("Checkpoints", time.Now(), &err)
	return s.Store.Checkpoints(ctx)
}

func (s *Store) ExportKey(ctx context.Context, tenantID string) (_ tenant.ExportKey, err error) {
	defer s.time("ExportKey", time.Now(), &err)
	return s.Store.ExportKey(ctx, tenantID)
}

func (s *Store) PutExportKey(ctx context.Context, k tenant.ExportKey, rec audit.Entry) (_ tenant.ExportKey, err error) {
	defer s.time("PutExportKey", time.Now(), &err)
	return s.Store.PutExportKey(ctx, k, rec)
}

func (s *Store) Rotate(ctx context.Context, req store.RotateRequest, rec audit.Entry) (_ tenant.Key, err error) {
	defer s.time("Rotate", time.Now(), &err)
	return s.Store.Rotate(ctx, req, rec)
}

func (s *Store) Keys(ctx context.Context, tenantID, typ string) (_ []tenant.Key, err error) {
	defer s.time("Keys", time.Now(), &err)
	return s.Store.Keys(ctx, tenantID, typ)
}

func (s *Store) Key(ctx context.Context, ref tenant.KeyRef) (_ tenant.Key, err error) {
	defer s.time("Key", time.Now(), &err)
	return s.Store.Key(ctx, ref)
}

func (s *Store) ActiveKey(ctx context.Context, tenantID, typ string) (_ tenant.Key, err error) {
	defer s.time("ActiveKey", time.Now(), &err)
	return s.Store.ActiveKey(ctx, tenantID, typ)
}

func (s *Store) DestroyKey(ctx context.Context, ref tenant.KeyRef, now time.Time, rec audit.Entry) (_ tenant.Key, err error) {
	defer s.time("DestroyKey", time.Now(), &err)
	return s.Store.DestroyKey(ctx, ref, now, rec)
}

func (s *Store) DestroyedSince(ctx context.Context, since time.Time) (_ []tenant.Key, err error) {
	defer s.time("DestroyedSince", time.Now(), &err)
	return s.Store.DestroyedSince(ctx, since)
}

func (s *Store) RegisterKeyService(ctx context.Context, req store.RotateRequest, ks tenant.KeyService, rec audit.Entry) (_ tenant.Key, _ tenant.KeyService, err error) {
	defer s.time("RegisterKeyService", time.Now(), &err)
	return s.Store.RegisterKeyService(ctx, req, ks, rec)
}

func (s *Store) KeyService(ctx context.Context, ref tenant.KeyRef) (_ tenant.KeyService, err error) {
	defer s.time("KeyService", time.Now(), &err)
	return s.Store.KeyService(ctx, ref)
}

func (s *Store) KeyServices(ctx context.Context, tenantID string) (_ []tenant.KeyService, err error) {
	defer s.time("KeyServices", time.Now(), &err)
	return s.Store.KeyServices(ctx, tenantID)
}

func (s *Store) RevokeKeyService(ctx context.Context, ref tenant.KeyRef, now time.Time, rec audit.Entry) (_ bool, err error) {
	defer s.time("RevokeKeyService", time.Now(), &err)
	return s.Store.RevokeKeyService(ctx, ref, now, rec)
}

func (s *Store) LiftKeyServiceRevocation(ctx context.Context, ref tenant.KeyRef, rec audit.Entry) (_ bool, err error) {
	defer s.time("LiftKeyServiceRevocation", time.Now(), &err)
	return s.Store.LiftKeyServiceRevocation(ctx, ref, rec)
}

func (s *Store) RevokedSince(ctx context.Context, since time.Time) (_ []tenant.KeyRef, err error) {
	defer s.time("RevokedSince", time.Now(), &err)
	return s.Store.RevokedSince(ctx, since)
}

func (s *Store) SetKeyServiceCredentials(ctx context.Context, c tenant.KeyServiceCredentials) (_ tenant.KeyServiceCredentials, err error) {
	defer s.time("SetKeyServiceCredentials", time.Now(), &err)
	return s.Store.SetKeyServiceCredentials(ctx, c)
}

func (s *Store) KeyServiceCredentials(ctx context.Context, tenantID string) (_ tenant.KeyServiceCredentials, err error) {
	defer s.time("KeyServiceCredentials", time.Now(), &err)
	return s.Store.KeyServiceCredentials(ctx, tenantID)
}

func (s *Store) TokenNames(ctx context.Context, ids []string) (_ map[string]string, err error) {
	defer s.time("TokenNames", time.Now(), &err)
	return s.Store.TokenNames(ctx, ids)
}

func (s *Store) InstallRelease(ctx context.Context, r release.Installation, rec audit.Entry) (_ release.Installation, err error) {
	defer s.time("InstallRelease", time.Now(), &err)
	return s.Store.InstallRelease(ctx, r, rec)
}

func (s *Store) Releases(ctx context.Context) (_ []release.Installation, err error) {
	defer s.time("Releases", time.Now(), &err)
	return s.Store.Releases(ctx)
}

func (s *Store) RestoreKey(ctx context.Context, req store.RestoreRequest, rec audit.Entry) (_ tenant.Key, err error) {
	defer s.time("RestoreKey", time.Now(), &err)
	return s.Store.RestoreKey(ctx, req, rec)
}

func (s *Store) Ping(ctx context.Context) (err error) {
	defer s.time("Ping", time.Now(), &err)
	return s.Store.Ping(ctx)
}

func (s *Store) CreateTenant(ctx context.Context, t tenant.Tenant, rec audit.Entry) (_ tenant.Tenant, err error) {
	defer s.time("CreateTenant", time.Now(), &err)
	return s.Store.CreateTenant(ctx, t, rec)
}

func (s *Store) TenantByName(ctx context.Context, name string) (_ tenant.Tenant, err error) {
	defer s.time("TenantByName", time.Now(), &err)
	return s.Store.TenantByName(ctx, name)
}

func (s *Store) TenantByID(ctx context.Context, id string) (_ tenant.Tenant, err error) {
	defer s.time("TenantByID", time.Now(), &err)
	return s.Store.TenantByID(ctx, id)
}

func (s *Store) Tenants(ctx context.Context) (_ []tenant.Tenant, err error) {
	defer s.time("Tenants", time.Now(), &err)
	return s.Store.Tenants(ctx)
}

func (s *Store) SetDerivationOptOut(ctx context.Context, tenantID string, allowed bool, rec audit.Entry) (_ tenant.Tenant, err error) {
	defer s.time("SetDerivationOptOut", time.Now(), &err)
	return s.Store.SetDerivationOptOut(ctx, tenantID, allowed, rec)
}

func (s *Store) CreateToken(ctx context.Context, tok auth.Token, maxLive int, rec audit.Entry) (_ auth.Token, err error) {
	defer s.time("CreateToken", time.Now(), &err)
	return s.Store.CreateToken(ctx, tok, maxLive, rec)
}

func (s *Store) TokenByHash(ctx context.Context, hash [32]byte) (_ auth.Token, _ bool, err error) {
	defer s.time("TokenByHash", time.Now(), &err)
	return s.Store.TokenByHash(ctx, hash)
}

func (s *Store) TokenByID(ctx context.Context, id string) (_ auth.Token, err error) {
	defer s.time("TokenByID", time.Now(), &err)
	return s.Store.TokenByID(ctx, id)
}

func (s *Store) Tokens(ctx context.Context, tenantID string) (_ []auth.Token, err error) {
	defer s.time("Tokens", time.Now(), &err)
	return s.Store.Tokens(ctx, tenantID)
}

func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) (err error) {
	defer s.time("TouchToken", time.Now(), &err)
	return s.Store.TouchToken(ctx, id, at)
}

func (s *Store) RevokeToken(ctx context.Context, id, by string, at time.Time, rec audit.Entry) (_ auth.Token, _ []string, err error) {
	defer s.time("RevokeToken", time.Now(), &err)
	return s.Store.RevokeToken(ctx, id, by, at, rec)
}

func (s *Store) CreateUploadCert(ctx context.Context, c uploadcert.Cert, maxLive int, rec audit.Entry) (_ uploadcert.Cert, err error) {
	defer s.time("CreateUploadCert", time.Now(), &err)
	return s.Store.CreateUploadCert(ctx, c, maxLive, rec)
}

func (s *Store) UploadCert(ctx context.Context, tenantID, id string) (_ uploadcert.Cert, err error) {
	defer s.time("UploadCert", time.Now(), &err)
	return s.Store.UploadCert(ctx, tenantID, id)
}

func (s *Store) UploadCerts(ctx context.Context, tenantID string) (_ []uploadcert.Cert, err error) {
	defer s.time("UploadCerts", time.Now(), &err)
	return s.Store.UploadCerts(ctx, tenantID)
}

func (s *Store) ActivateUploadCert(ctx context.Context, tenantID, id string, der []byte, notBefore, notAfter time.Time, rec audit.Entry) (_ uploadcert.Cert, err error) {
	defer s.time("ActivateUploadCert", time.Now(), &err)
	return s.Store.ActivateUploadCert(ctx, tenantID, id, der, notBefore, notAfter, rec)
}

func (s *Store) RetireUploadCert(ctx context.Context, tenantID, id string, now time.Time, rec audit.Entry) (_ uploadcert.Cert, err error) {
	defer s.time("RetireUploadCert", time.Now(), &err)
	return s.Store.RetireUploadCert(ctx, tenantID, id, now, rec)
}

func (s *Store) BeginUpload(ctx context.Context, tenantID string, now time.Time, lim store.UploadLimit) (_ string, err error) {
	defer s.time("BeginUpload", time.Now(), &err)
	return s.Store.BeginUpload(ctx, tenantID, now, lim)
}

func (s *Store) UploadAccepted(ctx context.Context, tenantID, id string) (err error) {
	defer s.time("UploadAccepted", time.Now(), &err)
	return s.Store.UploadAccepted(ctx, tenantID, id)
}
