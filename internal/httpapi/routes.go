package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/dataplane"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The roles, as the route table names them.
const (
	operator    = api.RoleOperator
	auditor     = api.RoleAuditor
	tenantAdmin = api.RoleTenantAdmin
	app         = api.RoleApp
)

// global is a policy for routes that are not about one tenant.
func global(roles ...string) auth.Policy { return auth.Policy{Roles: roles} }

// scoped is a policy for routes under /v1/tenants/{tenant}.
func scoped(roles ...string) auth.Policy { return auth.Policy{Roles: roles, TenantScoped: true} }

// Rule is a route's access rule beyond its Policy, declared in the table
// with its description (for the docs and the OpenAPI document).
type Rule struct {
	Doc   string
	Check func(c *Call) error
}

// table is the API: every route, its policy and its handler.
func (s *server) table() []Route {
	return []Route{
		{Method: "GET", Pattern: "/v1/health", Public: true, Handler: s.health,
			Summary: "Liveness: the server answers", Response: api.Health{}},
		{Method: "GET", Pattern: "/v1/ready", Public: true, Handler: s.ready,
			Summary:  "Readiness: 200 when every installed release is loaded and the store answers, else 503; counts only (GET /v1/status says what)",
			Response: api.Ready{}},
		{Method: "GET", Pattern: "/v1/status", Audit: "node.status", Policy: global(operator, auditor), Handler: s.status,
			Summary:  "The node's readiness in detail: its loaded releases, and each problem (a bundle that failed, and why; the store)",
			Response: api.Status{}},
		{Method: "GET", Pattern: "/v1/metrics", Audit: "node.metrics", Policy: global(operator, auditor), Handler: s.metrics,
			Summary:  "The node's Prometheus metrics, as text (docs/metrics.md): requests, HSM, store, key cache, rotation refusals, audit, readiness; never a key, token or tenant",
			Response: metricsText},
		{Method: "GET", Pattern: "/v1/openapi.json", Public: true, Handler: s.openAPI,
			Summary: "This API's OpenAPI 3.1 document", Response: map[string]any{}},

		{Method: "POST", Pattern: "/v1/releases", Audit: "release.install", Policy: global(operator), Handler: s.installRelease,
			Summary: "Install a release bundle: verified and opened in the regional HSM first, then stored (idempotent)",
			Request: api.InstallReleaseRequest{}, Response: api.Release{}},
		{Method: "GET", Pattern: "/v1/releases", Audit: "release.list", Policy: global(operator, auditor), Handler: s.releases,
			Summary: "List the installed releases", Response: api.ReleaseList{}},

		{Method: "POST", Pattern: "/v1/tenants", Audit: "tenant.create", Policy: global(operator), Handler: s.createTenant, Status: http.StatusCreated,
			Summary: "Create a tenant", Request: api.CreateTenantRequest{}, Response: api.Tenant{}},
		{Method: "GET", Pattern: "/v1/tenants", Audit: "tenant.list", Policy: global(operator, auditor), Handler: s.tenants,
			Summary: "List the tenants", Response: api.TenantList{}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}", Audit: "tenant.show", Policy: scoped(operator, auditor, tenantAdmin), Handler: s.tenant,
			Summary: "Show a tenant", Response: api.Tenant{}},

		{Method: "POST", Pattern: "/v1/tenants/{tenant}/settings", Audit: "tenant.settings", Policy: scoped(operator), Handler: s.setTenant,
			Summary: "Change a tenant's operator settings: derivation_opt_out allows or forbids uploads in derivation mode none",
			Request: api.SetTenantRequest{}, Response: api.Tenant{}},

		{Method: "POST", Pattern: "/v1/tokens", Audit: "token.create", Policy: global(operator, tenantAdmin), Handler: s.createToken, Status: http.StatusCreated,
			Restrict: &Rule{Doc: "a tenant-admin may create only app tokens, only for its own tenant, with a ttl of at most 90 days", Check: s.tenantAdminMintsOwnApps},
			Summary:  "Create an API token; its secret is in this answer only (a tenant-admin's: 409 too_many_tokens once its tenant has 100 live app tokens)",
			Request:  api.CreateTokenRequest{}, Response: api.Token{}},

		{Method: "GET", Pattern: "/v1/tokens", Audit: "token.list", Policy: global(operator, auditor, tenantAdmin), Handler: s.tokens,
			Restrict: &Rule{Doc: "a tenant-admin sees only its own tenant's app tokens, and itself", Check: s.tenantAdminListsOwn},
			Summary:  "List API tokens, oldest first, revoked and expired ones too, never their secrets (filters: tenant name, state)",
			Response: api.TokenList{}, Query: []string{"tenant", "state"}},
		{Method: "GET", Pattern: "/v1/tokens/self", Audit: "token.show", Policy: global(operator, auditor, tenantAdmin, app), Handler: s.selfToken,
			Summary:  "Show the token that makes this request (who am I): its id, name, role, tenant, expiry and last use, never its secret",
			Response: api.TokenInfo{}},
		{Method: "POST", Pattern: "/v1/tokens/self/revoke", Audit: "token.revoke", Policy: global(operator, auditor, tenantAdmin, app), Handler: s.revokeSelf,
			Summary:  "Revoke the token that makes this request, and every token it made, and theirs",
			Response: api.Revocation{}},
		{Method: "POST", Pattern: "/v1/tokens/{id}/revoke", Audit: "token.revoke", Policy: global(operator, tenantAdmin), Handler: s.revokeToken,
			Restrict: &Rule{Doc: "a tenant-admin may revoke only its own tenant's app tokens, and itself", Check: s.tenantAdminRevokesOwn},
			Summary:  "Revoke an API token at once (by its id, as token create printed it), and every token it made, and theirs (409 already_revoked the second time)",
			Response: api.Revocation{}},

		{Method: "POST", Pattern: "/v1/tenants/{tenant}/keys", Audit: "key.generate", Policy: scoped(tenantAdmin, operator), Handler: s.generateKey, Status: http.StatusCreated,
			Summary: "Generate a new active key of a type (rate limited per tenant and type: 429 with next_allowed)",
			Request: api.GenerateKeyRequest{}, Response: api.Key{}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/keys", Audit: "key.list", Policy: scoped(tenantAdmin, operator, auditor), Handler: s.keys,
			Summary: "List a tenant's keys, without material", Response: api.KeyList{}, Query: []string{"type"}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/keys/usage", Audit: "key.usage", Policy: scoped(tenantAdmin, operator, auditor), Handler: s.keyUsage,
			Summary:  "What each key version was used for: server-side encryptions, decryptions, AES-GCM seals (nonces: ok, warning from 2^30, exhausted at 2^32), DEK deliveries, their last times, and whether an archived version looks safe to destroy",
			Response: api.KeyUsageList{}, Query: []string{"type"}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/data-reports", Audit: "key.data-report", Policy: scoped(app, tenantAdmin), Handler: s.dataReport,
			Summary: "Record a data-at-rest census of one dataset (e.g. what strongroom sync found in a table's columns): its values under each version of a key type, none under the others; answers the type's key usage, whose safe_to_destroy sums the datasets",
			Request: api.DataReportRequest{}, Response: api.KeyUsageList{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/keys/{type}/{version}/destroy", Audit: "key.destroy", Policy: scoped(tenantAdmin, operator), Handler: s.destroyKey,
			Summary: "Destroy a key version: data under it can never be decrypted again (confirm with TENANT/TYPE/VERSION)",
			Request: api.DestroyKeyRequest{}, Response: api.Key{}},

		{Method: "POST", Pattern: "/v1/tenants/{tenant}/upload-certificates", Audit: "cert.create", Policy: scoped(tenantAdmin, operator), Handler: s.createUploadCert,
			Status:  http.StatusCreated,
			Summary: "Make a BYOK upload certificate: an RSA-4096 key pair in the regional HSM, self-signed, or with csr a request for the tenant's CA (at most 5 pending or active per tenant)",
			Request: api.CreateUploadCertRequest{}, Response: api.UploadCert{}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/upload-certificates", Audit: "cert.list", Policy: scoped(tenantAdmin, operator, auditor), Handler: s.uploadCerts,
			Summary: "List a tenant's upload certificates, newest first", Response: api.UploadCertList{}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/upload-certificates/{id}", Audit: "cert.show", Policy: scoped(tenantAdmin, operator, auditor), Handler: s.uploadCert,
			Summary: "Show an upload certificate (PEM), or its request while pending", Response: api.UploadCert{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/upload-certificates/{id}/complete", Audit: "cert.complete", Policy: scoped(tenantAdmin, operator), Handler: s.completeUploadCert,
			Summary: "Upload the certificate the tenant's CA signed for a pending request; it becomes active",
			Request: api.CompleteUploadCertRequest{}, Response: api.UploadCert{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/upload-certificates/{id}/retire", Audit: "cert.retire", Policy: scoped(tenantAdmin, operator), Handler: s.retireUploadCert,
			Summary:  "Retire an upload certificate: uploads to it are refused from now on, and its key pair is deleted from the regional HSM (retire again to retry a failed deletion)",
			Response: api.UploadCert{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/keys/{type}/upload", Audit: "key.upload", Policy: scoped(tenantAdmin), Handler: s.uploadKey, Status: http.StatusCreated,
			Summary: "Upload the tenant's own key material (RSA-OAEP to an upload certificate, with its SHA-256); it becomes the active key of the type (rate limited like generate; after 10 failed uploads in 10 minutes, 429 with next_allowed)",
			Request: api.UploadKeyRequest{}, Response: api.Key{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/keys/{type}/{version}/export", Audit: "key.export", deliver: true, Policy: scoped(tenantAdmin), Handler: s.exportKey,
			Summary:  "Export a key version as a backup file sealed under the tenant's export key",
			Response: api.KeyBackup{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/keys/import", Audit: "key.import", Policy: scoped(tenantAdmin), Handler: s.importKey, Status: http.StatusCreated,
			Summary: "Import a backup of a destroyed key version of this tenant: it comes back archived",
			Request: api.ImportKeyRequest{}, Response: api.Key{}},

		{Method: "POST", Pattern: "/v1/tenants/{tenant}/key-services", Audit: "key.register", Policy: scoped(tenantAdmin), Handler: s.registerKeyService,
			Status:  http.StatusCreated,
			Summary: "Register the tenant's key service for a new cache-only key version of a type, active at once (rate limited like generate); it must answer a test fetch correctly, else 400 key_service_refused and nothing is registered",
			Request: api.RegisterKeyServiceRequest{}, Response: api.KeyServiceRegistration{}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/key-services", Audit: "key-service.list", Policy: scoped(tenantAdmin, operator, auditor), Handler: s.keyServices,
			Summary: "List the tenant's key-service registrations and their availability at this node, never their bearer secrets", Response: api.KeyServiceList{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/key-services/credentials", Audit: "key-service.credentials", deliver: true, Policy: scoped(tenantAdmin),
			Handler:  s.keyServiceCredentials,
			Summary:  "Show the tenant's recipient public key and TLS client certificate, to install in its key services before registering them (made in the regional HSM on first use)",
			Response: api.KeyServiceCredentials{}},

		{Method: "GET", Pattern: "/v1/audit", Audit: "audit.list", Policy: global(operator, auditor), Handler: s.audit,
			Summary:  "List audit entries in sequence order (filters: tenant name, key, since, until, after, limit)",
			Response: api.AuditList{}, Query: []string{"tenant", "key", "since", "until", "after", "limit"}},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/audit", Audit: "audit.list", Policy: scoped(tenantAdmin, operator, auditor), Handler: s.tenantAudit,
			Summary:  "List a tenant's audit entries in sequence order (filters: key, since, until, after, limit)",
			Response: api.AuditList{}, Query: []string{"key", "since", "until", "after", "limit"}},

		{Method: "POST", Pattern: "/v1/tenants/{tenant}/encrypt", Audit: "key.encrypt", aggregate: true, Policy: scoped(app), Handler: s.encrypt,
			Summary: "Encrypt a batch under the active key of a type (deterministic keys: per field); errors are per item",
			Request: api.EncryptRequest{}, Response: api.EncryptResponse{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/decrypt", Audit: "key.decrypt", aggregate: true, Policy: scoped(app), Handler: s.decrypt,
			Summary: "Decrypt a batch; errors (e.g. key_destroyed) are per item",
			Request: api.DecryptRequest{}, Response: api.DecryptResponse{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/rewrap", Audit: "key.rewrap", aggregate: true, Policy: scoped(app), Handler: s.rewrap,
			Summary: "Rewrap a batch: each ciphertext moved to the active key of its type, bound to the same context, the plaintext never returned; one already under the active key comes back unchanged (rewrapped false); errors are per item",
			Request: api.RewrapRequest{}, Response: api.RewrapResponse{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/dek", Audit: "key.deliver", deliver: true, Policy: scoped(app), Handler: s.dek,
			Summary: "Deliver a DEK sealed with HPKE to the caller's public key",
			Request: api.DEKRequest{}, Response: api.DEKResponse{}},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/deks", Audit: "key.deliver", deliver: true, Policy: scoped(app), Handler: s.deks,
			Summary: "Deliver the DEKs of several key versions (up to 64) sealed with HPKE to the caller's public key, with one encapsulation; errors (e.g. key_destroyed) are per item, and each delivery is an audit entry",
			Request: api.DEKsRequest{}, Response: api.DEKsResponse{}},
	}
}

// deks delivers a batch of DEKs: one encapsulation, then one sealed DEK
// per key asked for. Each key is an audit entry of its own (key.deliver,
// ok or refused), all appended in one transaction before the answer; a
// refusal of the whole request (no key, a bad public key) is one entry.
func (s *server) deks(c *Call) (any, error) {
	req := c.Body.(*api.DEKsRequest)
	if len(req.PublicKey) == 0 {
		return nil, badRequestf("public_key is required: the HPKE public key to seal the DEKs to")
	}
	switch n := len(req.Keys); {
	case n == 0:
		return nil, badRequestf("keys is empty")
	case n > envelope.MaxBatchDEKs || n > s.Limits.MaxBatch:
		return nil, tooLargef("%d keys: at most %d per request", n, min(envelope.MaxBatchDEKs, s.Limits.MaxBatch))
	}
	refs := make([]tenant.KeyRef, len(req.Keys))
	for i, k := range req.Keys {
		typ, err := keyType(k.Type)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		refs[i] = tenant.KeyRef{Tenant: c.Tenant.ID, Type: typ, Version: k.Version}
	}
	batch, enc, err := s.Data.NewDEKBatch(req.KEM, req.PublicKey)
	if err != nil {
		return nil, err
	}
	out := api.DEKsResponse{TenantID: c.Tenant.ID, Enc: enc, Items: make([]api.DEKsItem, len(refs))}
	entries := make([]audit.Entry, len(refs))
	var usage []keyusage.Count
	for i, r := range refs {
		if err := c.Context().Err(); err != nil {
			c.Audit.Key = tenant.KeyRef{Type: r.Type, Version: r.Version}.Name()
			return nil, err
		}
		e := &entries[i]
		*e = *c.Audit
		e.Key = tenant.KeyRef{Type: r.Type, Version: r.Version}.Name()
		out.Items[i] = api.DEKsItem{Type: r.Type, Version: r.Version}
		sealed, k, err := batch.Seal(c.Context(), e, r)
		if err != nil {
			ae, ok := itemError(err)
			if !ok {
				// The request fails, and its one entry names the key it
				// failed at: nothing of the batch is delivered.
				c.Audit.Key = e.Key
				return nil, err
			}
			e.Outcome, e.Reason = audit.OutcomeRefused, ae.Code
			if status, _ := problem(err, ""); status >= 500 {
				e.Outcome = audit.OutcomeError // key_unavailable, as recordAudit records it
			}
			out.Items[i].Error = ae
			continue
		}
		e.Outcome, e.Key = audit.OutcomeOK, k.KeyRef().Name()
		out.Items[i] = api.DEKsItem{Type: k.Type, Version: k.Version, Sealed: sealed}
		usage = append(usage, keyusage.Count{Key: k.KeyRef(), Deliveries: 1, LastDelivery: c.Audit.Time})
	}
	c.entries, c.usage = entries, keyusage.Merge(usage)
	return out, nil
}

// ---- health ----

func (s *server) health(c *Call) (any, error) {
	return api.Health{Status: "ok", Region: s.Region}, nil
}

// readiness is the node's readiness: what GET /v1/ready counts and GET
// /v1/status spells out.
func (s *server) readiness(ctx context.Context) api.Status {
	st := api.Status{Status: "ok", Region: s.Region, Releases: []api.Release{}, Problems: []string{}}
	for _, m := range s.Ring.Releases() {
		st.Releases = append(st.Releases, releaseOf(m, release.Installation{}))
	}
	st.Problems = append(st.Problems, s.Ring.Problems()...)
	if err := s.Health.Ping(ctx); err != nil {
		// The store's error may name its host: only in the log.
		s.Logger.Error("readiness: the store does not answer", "err", err)
		st.Problems = append(st.Problems, "the store does not answer: see the server log")
	}
	if len(st.Problems) > 0 {
		st.Status = "not_ready"
	}
	return st
}

// ready answers anyone, so it says no more than whether the node is ready
// and how many releases and problems it has: release ids, iterations and
// failure text are for operators and auditors (status).
func (s *server) ready(c *Call) (any, error) {
	st := s.readiness(c.Context())
	r := api.Ready{Status: st.Status, Region: st.Region, Releases: len(st.Releases), Problems: len(st.Problems)}
	if st.Status != "ok" {
		return reply{status: http.StatusServiceUnavailable, body: r, code: api.CodeNotReady}, nil
	}
	return r, nil
}

func (s *server) status(c *Call) (any, error) { return s.readiness(c.Context()), nil }

func (s *server) openAPI(c *Call) (any, error) { return rawJSON(s.openapi), nil }

// rawJSON is a body already encoded.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// ---- releases ----

func releaseOf(m release.Meta, r release.Installation) api.Release {
	return api.Release{ID: m.ID, Iterations: m.Iterations, Created: m.Created.UTC(), Installed: r.Installed, Loaded: m.ID != ""}
}

// installRelease verifies and opens the bundle in the regional HSM and
// only then stores it (release.Installer).
func (s *server) installRelease(c *Call) (any, error) {
	bundle := c.Body.(*api.InstallReleaseRequest).Bundle
	if len(bundle) == 0 {
		return nil, badRequestf("bundle is required: the bundle file (PEM), as received from the ceremony")
	}
	m, r, err := s.Releases.Install(c.Context(), c.Audit, bundle)
	if err != nil {
		return nil, err
	}
	return releaseOf(m, r), nil
}

func (s *server) releases(c *Call) (any, error) {
	rs, err := s.Releases.Installed(c.Context())
	if err != nil {
		return nil, err
	}
	out := api.ReleaseList{Releases: []api.Release{}}
	for _, r := range rs {
		m, err := s.Ring.Meta(r.ID)
		if err != nil {
			out.Releases = append(out.Releases, api.Release{ID: r.ID, Installed: r.Installed})
			continue
		}
		out.Releases = append(out.Releases, releaseOf(m, r))
	}
	return out, nil
}

// ---- tenants ----

func tenantOf(t tenant.Tenant) api.Tenant {
	return api.Tenant{ID: t.ID, Name: t.Name, Env: string(t.Env), Created: t.Created, DerivationOptOut: t.DerivationOptOut}
}

func (s *server) createTenant(c *Call) (any, error) {
	req := c.Body.(*api.CreateTenantRequest)
	t, err := s.Tenants.Create(c.Context(), c.Audit, req.Name, tenant.Environment(req.Env))
	if err != nil {
		return nil, err
	}
	return tenantOf(t), nil
}

func (s *server) tenants(c *Call) (any, error) {
	ts, err := s.Tenants.List(c.Context())
	if err != nil {
		return nil, err
	}
	out := api.TenantList{Tenants: []api.Tenant{}}
	for _, t := range ts {
		out.Tenants = append(out.Tenants, tenantOf(t))
	}
	return out, nil
}

func (s *server) tenant(c *Call) (any, error) { return tenantOf(c.Tenant), nil }

// validID checks the id of a token or certificate that a request names.
func validID(what, id string) error {
	if !tenant.ValidID(id) {
		return badRequestf("invalid %s id %q: use the id the API gave it (32 lowercase hex digits, or a UUID)", what, id)
	}
	return nil
}

// ---- keys ----

func keyOf(t tenant.Tenant, k tenant.Key) api.Key {
	out := api.Key{Tenant: t.Name, Type: k.Type, Version: k.Version, State: string(k.State), Source: string(k.Source),
		Derivation: string(k.Derivation), Release: k.Release, Created: k.Created}
	if !k.Destroyed.IsZero() {
		d := k.Destroyed
		out.Destroyed = &d
	}
	return out
}

// keyType is a request's key type: "data" if empty.
func keyType(typ string) (string, error) {
	if typ == "" {
		return tenant.TypeData, nil
	}
	if !tenant.ValidKeyType(typ) {
		return "", badRequestf("key type %q: use one of %q", typ, tenant.KeyTypes())
	}
	return typ, nil
}

func (s *server) generateKey(c *Call) (any, error) {
	typ, err := keyType(c.Body.(*api.GenerateKeyRequest).Type)
	if err != nil {
		return nil, err
	}
	k, err := s.Keys.Generate(c.Context(), c.Audit, c.Tenant.ID, typ)
	if err != nil {
		return nil, err
	}
	return keyOf(c.Tenant, k), nil
}

func (s *server) keys(c *Call) (any, error) {
	typ := c.Request.URL.Query().Get("type")
	if typ != "" && !tenant.ValidKeyType(typ) {
		return nil, badRequestf("key type %q: use one of %q", typ, tenant.KeyTypes())
	}
	ks, err := s.Keys.Keys(c.Context(), c.Tenant.ID, typ)
	if err != nil {
		return nil, err
	}
	out := api.KeyList{Keys: []api.Key{}}
	for _, k := range ks {
		out.Keys = append(out.Keys, keyOf(c.Tenant, k))
	}
	if err := s.availability(c, out.Keys); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *server) destroyKey(c *Call) (any, error) {
	typ, err := pathKeyType(c)
	if err != nil {
		return nil, err
	}
	v, err := pathKeyVersion(c)
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf("%s/%s/%d", c.Tenant.Name, typ, v)
	if got := c.Body.(*api.DestroyKeyRequest).Confirm; got != want {
		return nil, badRequestf("confirm must be exactly %q: destroying a key makes the data under it unreadable forever", want)
	}
	k, err := s.Keys.Destroy(c.Context(), c.Audit, tenant.KeyRef{Tenant: c.Tenant.ID, Type: typ, Version: v})
	if err != nil {
		return nil, err
	}
	return keyOf(c.Tenant, k), nil
}

// ---- data plane ----

func (s *server) checkBatch(n int) error {
	switch {
	case n == 0:
		return badRequestf("items is empty")
	case n > s.Limits.MaxBatch:
		return tooLargef("%d items: at most %d per request (limits.max_batch)", n, s.Limits.MaxBatch)
	}
	return nil
}

// errNoCiphertext is an item of decrypt or rewrap without its ciphertext:
// refused alone, and not counted (it names no key).
var errNoCiphertext = errors.New("httpapi: ciphertext is required")

// eachItem runs a batch route's work for each of its n items: the batch's
// size checked, the request's context before each item, each item counted
// in the audit aggregates under the key do returns, and an item's own
// failure (itemError) given to fail while any other error ends the
// request (a 5xx).
func (s *server) eachItem(c *Call, n int, do func(i int) (key string, err error), fail func(i int, e *api.Error)) error {
	if err := s.checkBatch(n); err != nil {
		return err
	}
	for i := range n {
		if err := c.Context().Err(); err != nil {
			return err
		}
		key, err := do(i)
		if errors.Is(err, errNoCiphertext) {
			fail(i, &api.Error{Code: api.CodeBadRequest, Message: "ciphertext is required"})
			continue
		}
		s.count(c, key, err)
		if err != nil {
			e, ok := itemError(err)
			if !ok {
				return err
			}
			fail(i, e)
		}
	}
	return nil
}

func (s *server) encrypt(c *Call) (any, error) {
	req := c.Body.(*api.EncryptRequest)
	typ, err := keyType(req.Type)
	if err != nil {
		return nil, err
	}
	out := api.EncryptResponse{Items: make([]api.EncryptResult, len(req.Items))}
	err = s.eachItem(c, len(req.Items), func(i int) (string, error) {
		it := req.Items[i]
		var ct []byte
		var k tenant.Key
		var err error
		if f := (dataplane.Field{Name: it.Field, CaseInsensitive: it.CaseInsensitive}); f != (dataplane.Field{}) {
			ct, k, err = s.Data.EncryptField(c.Context(), c.Audit, c.Tenant.ID, typ, f, it.Plaintext, it.Context)
		} else {
			ct, k, err = s.Data.Encrypt(c.Context(), c.Audit, c.Tenant.ID, typ, it.Plaintext, it.Context)
		}
		if err == nil {
			out.Items[i] = api.EncryptResult{Ciphertext: ct, Type: k.Type, Version: k.Version}
		}
		return tenant.KeyRef{Type: typ, Version: k.Version}.Name(), err
	}, func(i int, e *api.Error) { out.Items[i].Error = e })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *server) decrypt(c *Call) (any, error) {
	req := c.Body.(*api.DecryptRequest)
	out := api.DecryptResponse{Items: make([]api.DecryptResult, len(req.Items))}
	err := s.eachItem(c, len(req.Items), func(i int) (string, error) {
		it := req.Items[i]
		if len(it.Ciphertext) == 0 {
			return "", errNoCiphertext
		}
		var pt []byte
		var k tenant.Key
		var err error
		if it.Field != "" {
			pt, k, err = s.Data.DecryptField(c.Context(), c.Audit, c.Tenant.ID, it.Field, it.Ciphertext, it.Context)
		} else {
			pt, k, err = s.Data.Decrypt(c.Context(), c.Audit, c.Tenant.ID, it.Ciphertext, it.Context)
		}
		if err == nil {
			h, herr := envelope.ParseFieldHeader(it.Ciphertext)
			out.Items[i] = api.DecryptResult{Plaintext: pt, Type: k.Type, Version: k.Version, CaseInsensitive: herr == nil && h.CaseInsensitive}
		}
		return tenant.KeyRef{Type: k.Type, Version: k.Version}.Name(), err
	}, func(i int, e *api.Error) { out.Items[i].Error = e })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rewrap counts each item under the version its ciphertext was under (the
// data that left it), as decrypt counts under the version it read; a
// refusal under the version the ciphertext names (not secret: it is in
// the clear), so that attempts on a destroyed version are listed with it.
// The key usage counters also count a moved item's new ciphertext as an
// encryption under the version it moved to.
func (s *server) rewrap(c *Call) (any, error) {
	req := c.Body.(*api.RewrapRequest)
	out := api.RewrapResponse{Items: make([]api.RewrapResult, len(req.Items))}
	err := s.eachItem(c, len(req.Items), func(i int) (string, error) {
		it := req.Items[i]
		if len(it.Ciphertext) == 0 {
			return "", errNoCiphertext
		}
		ct, from, to, err := s.Data.Rewrap(c.Context(), c.Audit, c.Tenant.ID, dataplane.Field{Name: it.Field, CaseInsensitive: it.CaseInsensitive}, it.Ciphertext, it.Context)
		if err != nil {
			if h, herr := envelope.KeyOf(it.Ciphertext); herr == nil && h.Tenant == c.Tenant.ID {
				return tenant.KeyRef{Type: h.Type, Version: h.Version}.Name(), err
			}
			return "", err
		}
		moved := !bytes.Equal(ct, it.Ciphertext)
		if moved {
			s.Aggregate.CountEncryption(*c.Audit, to.KeyRef()) // the new ciphertext, in the usage counters
		}
		out.Items[i] = api.RewrapResult{Ciphertext: ct, Type: to.Type, From: from.Version, Version: to.Version, Rewrapped: moved}
		return tenant.KeyRef{Type: from.Type, Version: from.Version}.Name(), nil
	}, func(i int, e *api.Error) { out.Items[i].Error = e })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *server) dek(c *Call) (any, error) {
	req := c.Body.(*api.DEKRequest)
	typ, err := keyType(req.Type)
	if err != nil {
		return nil, err
	}
	if len(req.PublicKey) == 0 {
		return nil, badRequestf("public_key is required: the HPKE public key to seal the DEK to")
	}
	c.Audit.Key = tenant.KeyRef{Type: typ, Version: req.Version}.Name()
	sealed, k, err := s.Data.SealDEK(c.Context(), c.Audit, tenant.KeyRef{Tenant: c.Tenant.ID, Type: typ, Version: req.Version}, req.KEM, req.PublicKey)
	if err != nil {
		return nil, err
	}
	c.Audit.Key = k.KeyRef().Name()
	c.usage = []keyusage.Count{{Key: k.KeyRef(), Deliveries: 1, LastDelivery: c.Audit.Time}}
	return api.DEKResponse{TenantID: c.Tenant.ID, Type: k.Type, Version: k.Version, Sealed: sealed}, nil
}
