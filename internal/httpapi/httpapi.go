// Package httpapi is the regional key server's JSON API under /v1, on
// net/http.
//
// One route table (Routes) is the API: the mux and the OpenAPI document
// (/v1/openapi.json) are both built from it, and every route declares its
// access policy there. Handlers never decide access: the route wrapper
// authenticates the bearer token, resolves the {tenant} of the path by name,
// applies the route's auth.Policy, decodes the body strictly, runs the
// route's Restrict rule if it has one, and only then calls the handler.
//
// Request bodies are never logged: they can hold plaintext and key material.
// The access log (log/slog) records the route, status, duration, error code,
// token id (never the secret) and tenant of each request, and for a client
// error the internal error behind its answer (err): the answer's message
// says what is wrong in the API's terms (errors.go), the log keeps the
// chain of package prefixes and internal ids. The same route, status and
// code count and time the request in the node's metrics (metrics.go), which
// GET /v1/metrics serves.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/metrics"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Deps is what the API serves from.
type Deps struct {
	Tenants  Tenants
	Tokens   Tokens
	Releases Releases
	Ring     Ring
	Keys     Keys
	Data     DataPlane
	BYOK     BYOK
	// KeyServices is cache-only keys: tenants' key services.
	KeyServices KeyServices
	// Usage is what each key version was used for.
	Usage KeyUsage
	Audit AuditLog
	// Aggregate counts encryptions and decryptions into per-minute audit
	// entries; the node's checkpointer flushes it.
	Aggregate *auditlog.Aggregate
	// Health is the store, for readiness.
	Health Pinger
	Region string
	// Limits bound bodies, batches and request time; zero fields take the
	// config package's defaults.
	Limits config.Limits
	// Logger receives the access log and server faults; nil discards them.
	Logger *slog.Logger
	// Metrics counts requests and serves GET /v1/metrics; nil means
	// metrics of the API's own (internal/metrics).
	Metrics *metrics.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// server is the API: its dependencies and its route table.
type server struct {
	Deps
	routes  []Route
	openapi []byte
	mux     *http.ServeMux
	timeout time.Duration
	// observe is each route's request metrics (metrics.go), read-only once
	// made.
	observe map[string]*metrics.Route
}

// NewHandler returns a node's http.Handler: the API, and the web console
// under /ui (console.go).
func NewHandler(d Deps) http.Handler { return newSite(newServer(d)) }

func newServer(d Deps) *server {
	if d.Tenants == nil || d.Tokens == nil || d.Releases == nil || d.Ring == nil || d.Keys == nil || d.Data == nil ||
		d.BYOK == nil || d.KeyServices == nil || d.Usage == nil || d.Audit == nil || d.Aggregate == nil || d.Health == nil {
		panic("httpapi: NewHandler needs every service of Deps")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Limits.MaxBodyBytes <= 0 {
		d.Limits.MaxBodyBytes = config.DefaultMaxBodyBytes
	}
	if d.Limits.MaxBatch <= 0 {
		d.Limits.MaxBatch = config.DefaultMaxBatch
	}
	if d.Limits.RequestTimeout <= 0 {
		d.Limits.RequestTimeout = config.Duration(config.DefaultRequestTimeout)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	s := &server{Deps: d, mux: http.NewServeMux(), timeout: time.Duration(d.Limits.RequestTimeout)}
	s.routes = s.table()
	for i := range s.routes {
		rt := &s.routes[i]
		if err := rt.check(); err != nil {
			panic("httpapi: " + err.Error())
		}
		rt.deniedMsg = deniedWording(rt)
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	// Every request no route matches comes here (the least specific
	// pattern): the mux then matches each request once.
	s.mux.HandleFunc(unrouted, s.unrouted)
	s.observe = s.observers()
	doc, err := json.Marshal(OpenAPI(s.routes))
	if err != nil {
		panic("httpapi: the OpenAPI document: " + err.Error())
	}
	s.openapi = doc
	return s
}

// Route is one operation of the API.
type Route struct {
	Method  string // GET or POST
	Pattern string // a net/http pattern path, e.g. /v1/tenants/{tenant}/keys
	// Public routes need no token. Every other route must have a Policy
	// with roles; a route with neither is a programming error (NewHandler
	// panics, and the isolation test fails).
	Public bool
	// Policy is who may call the route. TenantScoped must be set exactly
	// when the pattern has a {tenant}.
	Policy auth.Policy
	// Restrict, if set, is a further access rule of the route, run with
	// the decoded body before the handler: it refuses with errForbidden.
	Restrict *Rule
	// Handler serves an allowed request and returns the response body (or
	// a reply, for another status).
	Handler func(c *Call) (any, error)
	// Status is the success status (0 = 200).
	Status  int
	Summary string
	// Request and Response are zero values of the body types (nil = no
	// body); the wrapper decodes into a new Request, and the OpenAPI
	// document describes both.
	Request, Response any
	// Query names the query parameters the route reads.
	Query []string
	// Audit is the action the audit log records the route's requests
	// under (see audit.go); "" only for public routes.
	Audit audit.Action
	// How a success is recorded (audit.go): a POST's by the change it
	// makes, in the change's transaction, unless it is marked deliver (a
	// success that changes nothing, such as an export: appended before the
	// answer) or aggregate (its items counted into per-minute aggregate
	// entries); a GET's not at all.
	deliver, aggregate bool
	// deniedMsg is the route's refusal of a caller (deniedWording).
	deniedMsg string
}

func (rt *Route) check() error {
	switch {
	case rt.Handler == nil:
		return fmt.Errorf("%s %s has no handler", rt.Method, rt.Pattern)
	case rt.Public && (!rt.Policy.Zero() || rt.Restrict != nil):
		return fmt.Errorf("%s %s is public and has a policy", rt.Method, rt.Pattern)
	case rt.Restrict != nil && (rt.Restrict.Doc == "" || rt.Restrict.Check == nil):
		return fmt.Errorf("%s %s: its Restrict rule needs a Doc and a Check", rt.Method, rt.Pattern)
	case !rt.Public && rt.Policy.Zero():
		return fmt.Errorf("%s %s has no policy and is not marked public", rt.Method, rt.Pattern)
	case !rt.Public && rt.Audit == "":
		return fmt.Errorf("%s %s has no audit action", rt.Method, rt.Pattern)
	case !rt.Public && rt.Policy.TenantScoped != strings.Contains(rt.Pattern, "{tenant}"):
		return fmt.Errorf("%s %s: Policy.TenantScoped must be set exactly when the path has {tenant}", rt.Method, rt.Pattern)
	}
	return nil
}

// status is the route's success status.
func (rt *Route) status() int {
	if rt.Status == 0 {
		return http.StatusOK
	}
	return rt.Status
}

// Call is one allowed request, as a handler sees it.
type Call struct {
	Request *http.Request
	// Identity is the caller; zero on public routes.
	Identity auth.Identity
	// Tenant is the tenant the path's {tenant} names, on tenant routes.
	Tenant tenant.Tenant
	// Audit is the request's audit entry: who, from where, what. A
	// handler passes it to the service whose change records it (and which
	// names the key or tenant in it); refusals are recorded with it too.
	Audit *audit.Entry
	// Body is a pointer to the decoded request body, of the route's
	// Request type; nil if the route has none.
	Body any

	// usage is the key usage that the request's entry records (a DEK
	// delivery), added to the counters with it.
	usage []keyusage.Count
	// entries, when set, are what a deliver route's success records
	// instead of Audit: a batch's deliveries, an entry each, with their
	// own outcomes.
	entries []audit.Entry
	route   *Route
}

// Context is the request's context.
func (c *Call) Context() context.Context { return c.Request.Context() }

// reply is a handler's answer with a status other than the route's.
type reply struct {
	status int
	body   any
	code   string // for the access log: the API code the answer stands for, if any
}

// ServeHTTP serves the API: access log, a request id, the request timeout,
// then the mux (or a JSON 404/405).
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	growStack()
	start := time.Now()
	info := &requestInfo{id: newRequestID()}
	base := context.WithValue(r.Context(), infoKey{}, info)
	w.Header().Set("X-Request-Id", info.id)
	setJSONHeaders(w.Header())
	lw := &statusWriter{ResponseWriter: w}
	// The request's time limit is its context's deadline: every store,
	// HSM-session and key-service call and every batch loop honours it,
	// and a handler that runs out of it answers 503 timeout itself (see
	// problem), in this goroutine. (http.TimeoutHandler would run the
	// handler in a goroutine of its own and buffer its answer, which cost
	// a tenth of the API's CPU under load, and it answers 503 while the
	// handler may still go on to change something.)
	ctx, cancel := context.WithTimeout(base, s.timeout)
	r = r.WithContext(ctx)
	if r.URL.Path != cleanPath(r.URL.Path) && s.pattern(r) == unrouted {
		// The mux would redirect an unclean path to its clean form even
		// when no route has it: answer 404 in JSON, as for any other
		// unknown path.
		s.unrouted(lw, r)
	} else {
		s.mux.ServeHTTP(lw, r)
	}
	if lw.status == 0 && base.Err() == nil {
		// Nothing was written, and the client is still there: net/http
		// would send an empty 200. Never let a failure pass for success.
		s.writeError(lw, r, errors.New("httpapi: the handler wrote no answer"))
	}
	cancel()

	route, token, tenant, code := info.get()
	detail := info.getErr()
	status := lw.status
	switch {
	case status == http.StatusServiceUnavailable && code == "":
		code = api.CodeTimeout
	case status == 0 && base.Err() != nil:
		status, code = 499, "canceled" // the client went away: nothing was written
	}
	elapsed := time.Since(start)
	s.observe[route].Observe(status, code, elapsed)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	// The record is handed to the handler directly: Logger.LogAttrs would
	// also walk the stack for the caller's source position, which the
	// access log does not print (a seventieth of the server's CPU).
	h := s.Logger.Handler()
	if !h.Enabled(base, level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(
		slog.String("request_id", info.id),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.String("code", code),
		slog.Duration("duration", elapsed),
		slog.Int64("bytes", lw.bytes),
		slog.String("token_id", token),
		slog.String("tenant", tenant),
	)
	if detail != "" {
		rec.AddAttrs(slog.String("err", detail))
	}
	_ = h.Handle(base, rec) // as Logger.LogAttrs: a handler's error is its own to report
}

// growStack grows the calling goroutine's stack once, to the size that a
// request needs, while the stack is still shallow. net/http runs every
// HTTP/2 request on a new goroutine, whose stack starts small and was
// grown two or three times on the way down (routing, token lookup,
// AES-GCM), each time copying every frame on it and adjusting their
// pointers: 8% of the CPU of BenchmarkHTTPParallel (client and server in
// one process). One growth at the top copies a few frames only. (The same
// trick as CockroachDB's growstack package; the runtime offers no way to
// ask for a stack size.)
//
//go:noinline
func growStack() {
	var buf [stackReserve]byte
	keep(buf[:])
}

// stackReserve is the frame of growStack: with what is already on the
// stack, the runtime grows it to 16 KiB, which a request needs.
const stackReserve = 10 << 10

//go:noinline
func keep([]byte) {}

// cleanPath is p as net/http's ServeMux cleans it before matching (no .
// or .. elements, no repeated slashes, a trailing slash kept).
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// pattern is the pattern that r matches (for an unclean path, the one its
// clean form matches).
func (s *server) pattern(r *http.Request) string {
	_, p := s.mux.Handler(r)
	return p
}

// unrouted is the pattern of the requests that no route matches.
const unrouted = "/"

// unrouted answers a request that no route matches, in JSON: 405 with
// Allow if a route has its path under another method, else 404.
func (s *server) unrouted(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if p := s.pattern(r2); p != "" && p != unrouted {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: api.CodeMethodNotAllowed,
			msg: fmt.Sprintf("%s is not allowed here: use %s", r.Method, strings.Join(allowed, " or "))})
		return
	}
	s.writeError(w, r, &apiError{status: http.StatusNotFound, code: api.CodeNotFound, msg: "no such route: see /v1/openapi.json"})
}

// wrap is the one place where access is decided: authentication, the
// route's policy with the tenant resolved, the body, Restrict, then the
// handler.
func (s *server) wrap(rt *Route) http.Handler {
	name := rt.Method + " " + rt.Pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		info.setRoute(name)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Logger.Error("handler panic", "request_id", info.id, "route", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("panic in %s", name))
			}
		}()
		c := &Call{Request: r, route: rt}
		err := s.authorize(rt, c)
		if rt.Audit != "" {
			e := s.auditEntry(rt, c)
			c.Audit = &e
		}
		if err == nil && rt.Request != nil {
			body := reflect.New(reflect.TypeOf(rt.Request)).Interface()
			if err = s.decode(w, r, body); err == nil {
				c.Body = body
			}
		}
		if err == nil && rt.Restrict != nil {
			err = rt.Restrict.Check(c)
		}
		var resp any
		if err == nil {
			resp, err = rt.Handler(c)
		}
		if err == errForbidden {
			err = rt.denied(c)
		}
		if aerr := s.recordAudit(rt, c, err); aerr != nil {
			err = aerr
		}
		if err != nil {
			s.countRefusal(name, err)
			s.writeError(w, r, err)
			return
		}
		if tx, ok := resp.(text); ok {
			tx.h.ServeHTTP(w, r)
			return
		}
		status := rt.status()
		if rep, ok := resp.(reply); ok {
			status, resp = rep.status, rep.body
			if rep.code != "" {
				infoFrom(r.Context()).setCode(rep.code)
			}
		}
		writeJSON(w, status, resp)
	})
}

// authorize authenticates the caller of a non-public route and applies its
// policy, resolving {tenant} on the way. Every refusal of an authenticated
// caller is the same errForbidden, except that a global caller (who may see
// every tenant) is told that a tenant does not exist.
func (s *server) authorize(rt *Route, c *Call) error {
	if rt.Public {
		return nil
	}
	r := c.Request
	info := infoFrom(r.Context())
	id, err := s.Tokens.Authenticate(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	c.Identity = id
	info.setToken(id.TokenID, id.Tenant)
	if !slices.Contains(rt.Policy.Roles, id.Role) {
		return errForbidden
	}
	if rt.Policy.TenantScoped {
		name := r.PathValue("tenant")
		tn, err := s.pathTenant(r.Context(), id, name)
		switch {
		case errors.Is(err, store.ErrNotFound) && id.Global():
			return notFoundf("no tenant is named %q", name)
		case errors.Is(err, store.ErrNotFound):
			return errForbidden
		case err != nil:
			return err
		}
		// The tenant is the request's only once the caller may act on it:
		// a refusal is recorded under the caller's own tenant, never in
		// the audit view of the tenant it tried to reach.
		if !id.Allows(rt.Policy, tn.ID) {
			return errForbidden
		}
		c.Tenant = tn
		info.setToken(id.TokenID, tn.ID)
	}
	if !id.Allows(rt.Policy, c.Tenant.ID) {
		return errForbidden
	}
	return nil
}

// pathTenant is the tenant a path names, for an identity: any tenant for a
// global one; for a scoped one, its own tenant if that is the one named,
// else store.ErrNotFound, without looking the name up, so that how long
// the answer takes does not tell whether another tenant of that name
// exists (its own tenant's row is in the row cache; another's might not
// be).
func (s *server) pathTenant(ctx context.Context, id auth.Identity, name string) (tenant.Tenant, error) {
	if id.Global() {
		return s.Tenants.ByName(ctx, name)
	}
	tn, err := s.Tenants.ByID(ctx, id.Tenant)
	if err != nil {
		return tenant.Tenant{}, err
	}
	if subtle.ConstantTimeCompare([]byte(tn.Name), []byte(name)) != 1 {
		return tenant.Tenant{}, fmt.Errorf("httpapi: the path names another tenant than the token's: %w", store.ErrNotFound)
	}
	return tn, nil
}

func setJSONHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// writeJSON writes v as the response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the api types are written; they always encode.
		status = http.StatusInternalServerError
		body = []byte(`{"code":"internal","message":"encoding the answer failed"}`)
	}
	setJSONHeaders(w.Header())
	w.WriteHeader(status)
	w.Write(body)
	io.WriteString(w, "\n") // not appended to body: that would copy it
}

// requestInfo is what the access log learns from inside the handler (which
// may still run after a timeout: hence the lock).
type requestInfo struct {
	id string

	mu                   sync.Mutex
	route, token, tenant string
	code                 string
	// err is the internal text of a client error whose answer says it in
	// other words.
	err string
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if i, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return i
	}
	return &requestInfo{}
}

func (i *requestInfo) setRoute(route string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.route = route
}

func (i *requestInfo) setToken(token, tenant string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.token, i.tenant = token, tenant
}

func (i *requestInfo) setCode(code string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.code = code
}

func (i *requestInfo) setErr(err string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.err = err
}

func (i *requestInfo) getErr() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.err
}

func (i *requestInfo) get() (route, token, tenant, code string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.route, i.token, i.tenant, i.code
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
