package k8splugin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/kms/pkg/service"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/reason"
)

// Defaults and limits.
const (
	// DefaultSocket is where the plugin listens unless told otherwise, and
	// the endpoint docs/kubernetes.md's EncryptionConfiguration names.
	DefaultSocket = "/var/run/strongroom-kms.sock"
	// DefaultRefresh is how often the active version is asked for and the
	// cached versions confirmed.
	DefaultRefresh = time.Minute
	// DefaultDEKMaxAge is how long a cached DEK serves after the server last
	// delivered or confirmed it.
	DefaultDEKMaxAge = time.Hour
	// DefaultMaxDEKs bounds the cache's entries.
	DefaultMaxDEKs = 32
	// MaxUnhealthyRetry bounds the refresh interval while unhealthy.
	MaxUnhealthyRetry = 10 * time.Second

	// MaxCiphertext and MaxKeyID are KMS v2's limits (1 KiB each).
	MaxCiphertext = 1024
	MaxKeyID      = 1024
	// MaxUID bounds the request uid kube-apiserver sends (a UUID).
	MaxUID = 128

	// AnnotationFormat is the one annotation of every ciphertext: the
	// plugin's format version, FormatVersion.
	AnnotationFormat = "format.kms.strongroom.dev"
	FormatVersion    = "1"

	// Healthy is Status' healthz when all is well; Version its version.
	Healthy = "ok"
	Version = "v2"
)

// Context is the fixed context every plugin ciphertext is bound to (a
// fresh copy each call).
func Context() map[string]string { return map[string]string{"purpose": "k8s-kms-v2"} }

// The kinds of the plugin's errors (errors.Is), and so of its gRPC codes.
var (
	// ErrInvalid: the request is malformed (uid, annotations, key id,
	// sizes). gRPC InvalidArgument.
	ErrInvalid = errors.New("k8splugin: invalid request")
	// ErrDecrypt: the ciphertext does not open (altered, truncated, another
	// context or tenant). gRPC InvalidArgument.
	ErrDecrypt = errors.New("k8splugin: decryption failed")
	// ErrUnavailable: the server cannot be reached and no fresh DEK is
	// cached. gRPC Unavailable.
	ErrUnavailable = errors.New("k8splugin: the key server is unavailable")
	// ErrDestroyed: the key version was destroyed; its data is gone. gRPC
	// FailedPrecondition.
	ErrDestroyed = errors.New("k8splugin: the key version is destroyed")
	// ErrRefused: the server refused to deliver the DEK (a 4xx answer
	// other than key_destroyed). gRPC FailedPrecondition.
	ErrRefused = errors.New("k8splugin: the key server refused")
)

// KeySource delivers DEKs: *client.Client.
type KeySource interface {
	DEK(ctx context.Context, tenant, typ string, version uint32, kem uint16) (client.DEK, error)
}

// Options configure a Plugin.
type Options struct {
	// Source delivers the DEKs (required).
	Source KeySource
	// Tenant is the tenant's name (required); Type the key type ("" =
	// data) whose active version encrypts.
	Tenant, Type string
	// Refresh, DEKMaxAge and MaxDEKs: 0 means the default.
	Refresh   time.Duration
	DEKMaxAge time.Duration
	MaxDEKs   int
	// KEM is the HPKE KEM DEKs are delivered to (0 = ML-KEM-768+X25519).
	KEM uint16
	// Now is the clock of the cache's ages (nil = time.Now).
	Now func() time.Time
	// Logger gets rotations, evictions and health changes (nil = none).
	Logger *slog.Logger
}

// ref names a version of a key of the tenant; version 0 is the active one.
type ref struct {
	typ     string
	version uint32
}

// entry is a cached DEK.
type entry struct {
	dek       client.DEK
	confirmed time.Time // the server's last delivery of it
	used      time.Time
}

// Plugin implements service.Service. It is safe for concurrent use.
type Plugin struct {
	o      Options
	flight singleflight.Group

	mu       sync.Mutex
	deks     map[ref]*entry
	tenantID string // learned from the first delivery
	active   ref    // the active version last delivered; zero before
	healthy  bool
	problem  string    // why not healthy
	since    time.Time // when health last changed
	closed   bool
}

var _ service.Service = (*Plugin)(nil)

// New returns a plugin. It does not reach the server: Run (or Refresh)
// does, and Status is unhealthy until the first delivery.
func New(o Options) (*Plugin, error) {
	if o.Source == nil {
		return nil, errors.New("k8splugin: no key source")
	}
	if o.Tenant == "" {
		return nil, errors.New("k8splugin: no tenant")
	}
	if o.Type == "" {
		o.Type = "data"
	}
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	if o.DEKMaxAge == 0 {
		o.DEKMaxAge = DefaultDEKMaxAge
	}
	if o.MaxDEKs == 0 {
		o.MaxDEKs = DefaultMaxDEKs
	}
	switch {
	case o.Refresh < 0 || o.DEKMaxAge < 0 || o.MaxDEKs < 0:
		return nil, errors.New("k8splugin: negative refresh, DEK max age or cache size")
	case o.DEKMaxAge < o.Refresh:
		return nil, fmt.Errorf("k8splugin: the DEK max age (%v) is shorter than the refresh interval (%v): cached DEKs would expire before they are confirmed", o.DEKMaxAge, o.Refresh)
	case o.MaxDEKs < 2:
		return nil, errors.New("k8splugin: the cache must hold at least 2 DEKs (the active one and one archived)")
	}
	if o.KEM == 0 {
		o.KEM = client.KEMMLKEM768X25519
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Plugin{o: o, deks: map[ref]*entry{}, problem: "no DEK delivered by the key server yet"}, nil
}

// KeyID is the key id of a tenant key version: "strongroom:" TENANT-ID ":"
// TYPE ":" VERSION.
func KeyID(tenantID, typ string, version uint32) string {
	return "strongroom:" + tenantID + ":" + typ + ":" + strconv.FormatUint(uint64(version), 10)
}

func dekID(d client.DEK) string { return KeyID(d.TenantID(), d.Type(), d.Version()) }

func (p *Plugin) keyID(r ref) string { return KeyID(p.tenantID, r.typ, r.version) }

// Run refreshes at once, then every Refresh interval (MaxUnhealthyRetry at
// most while unhealthy), until ctx ends; then it closes the plugin.
func (p *Plugin) Run(ctx context.Context) {
	defer p.Close()
	for {
		_ = p.Refresh(ctx)
		wait := p.o.Refresh
		p.mu.Lock()
		if !p.healthy {
			wait = min(wait, MaxUnhealthyRetry)
		}
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Close destroys every cached DEK; the plugin serves nothing after it.
func (p *Plugin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for r, e := range p.deks {
		e.dek.Destroy()
		delete(p.deks, r)
	}
	p.healthy, p.problem = false, "the plugin is shut down"
}

// Refresh asks the server for the active version's DEK and confirms every
// other cached one, evicting those the server refuses, those not used for
// DEKMaxAge, and those it has not confirmed for DEKMaxAge. It returns the
// error of the active version's delivery.
func (p *Plugin) Refresh(ctx context.Context) error {
	_, err := p.fetch(ctx, ref{typ: p.o.Type})
	now := p.o.Now()
	p.mu.Lock()
	var confirm []ref
	for r, e := range p.deks {
		switch {
		case r == p.active:
		case now.Sub(e.used) > p.o.DEKMaxAge:
			p.evictLocked(r, "not used for the DEK max age")
		default:
			confirm = append(confirm, r)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(confirm, func(a, b ref) int {
		return cmp.Or(strings.Compare(a.typ, b.typ), cmp.Compare(a.version, b.version))
	})
	for _, r := range confirm {
		_, _ = p.fetch(ctx, r) // a refusal evicts it; no answer leaves it to age
	}
	p.mu.Lock()
	for r, e := range p.deks {
		if now.Sub(e.confirmed) > p.o.DEKMaxAge {
			p.evictLocked(r, "not confirmed by the key server for the DEK max age")
		}
	}
	p.mu.Unlock()
	return err
}

// Cached returns the key ids of the cached DEKs, sorted.
func (p *Plugin) Cached() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for r := range p.deks {
		ids = append(ids, p.keyID(r))
	}
	slices.Sort(ids)
	return ids
}

func (p *Plugin) evictLocked(r ref, why string) {
	e, ok := p.deks[r]
	if !ok {
		return
	}
	e.dek.Destroy()
	delete(p.deks, r)
	p.o.Logger.Info("k8s-plugin: DEK evicted", "key_id", p.keyID(r), "why", why)
}

// setHealth records the outcome of a delivery of the active version, or a
// failure to reach the server at all.
func (p *Plugin) setHealthLocked(ok bool, problem string) {
	if ok == p.healthy && problem == p.problem {
		return
	}
	if ok != p.healthy {
		p.since = p.o.Now()
		if ok {
			p.o.Logger.Info("k8s-plugin: healthy", "key_id", p.keyID(p.active))
		} else {
			p.o.Logger.Warn("k8s-plugin: unhealthy", "problem", problem)
		}
	}
	p.healthy, p.problem = ok, problem
}

// fetch asks the server for a DEK (r.version 0: the active one), caches it
// and returns it. Concurrent fetches of one version share one request.
func (p *Plugin) fetch(ctx context.Context, r ref) (client.DEK, error) {
	key := r.typ + "/" + strconv.FormatUint(uint64(r.version), 10)
	v, err, _ := p.flight.Do(key, func() (any, error) {
		d, err := p.o.Source.DEK(ctx, p.o.Tenant, r.typ, r.version, p.o.KEM)
		return d, p.delivered(r, d, err)
	})
	if err != nil {
		return client.DEK{}, err
	}
	return v.(client.DEK), nil
}

// delivered caches what the server delivered for r, or handles its error,
// and returns the error to give the caller.
func (p *Plugin) delivered(r ref, d client.DEK, err error) error {
	now := p.o.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		d.Destroy()
		return reason.New(ErrUnavailable, "the plugin is shut down")
	}
	if err != nil {
		return p.failedLocked(r, err)
	}
	got := ref{typ: d.Type(), version: d.Version()}
	switch {
	case p.tenantID != "" && d.TenantID() != p.tenantID:
		d.Destroy()
		err := reason.New(ErrRefused, "the key server now gives tenant %s the id %s, not %s as before: if the tenant was re-created, restart the plugin (data under the old tenant's keys is lost)",
			p.o.Tenant, d.TenantID(), p.tenantID)
		p.setHealthLocked(false, strings.TrimPrefix(err.Error(), "k8splugin: "))
		return err
	case got.typ != r.typ || (r.version != 0 && got.version != r.version):
		d.Destroy()
		return reason.New(ErrRefused, "asked for the DEK of %s version %d, the key server delivered %s version %d", r.typ, r.version, got.typ, got.version)
	}
	p.tenantID = d.TenantID()
	if e, ok := p.deks[got]; ok {
		d.Destroy() // the same key: keep the one in use
		d = e.dek
		e.confirmed = now
	} else {
		p.makeRoomLocked()
		p.deks[got] = &entry{dek: d, confirmed: now, used: now}
	}
	if r.version == 0 {
		if p.active != got {
			if p.active != (ref{}) {
				p.o.Logger.Info("k8s-plugin: the active key changed", "from", p.keyID(p.active), "to", p.keyID(got))
			}
			p.active = got
		}
		p.setHealthLocked(true, "")
	}
	return nil
}

// makeRoomLocked evicts the least recently used archived DEK if the cache
// is full.
func (p *Plugin) makeRoomLocked() {
	for len(p.deks) >= p.o.MaxDEKs {
		var lru ref
		var at time.Time
		for r, e := range p.deks {
			if r != p.active && (lru == (ref{}) || e.used.Before(at)) {
				lru, at = r, e.used
			}
		}
		if lru == (ref{}) {
			return
		}
		p.evictLocked(lru, "the cache is full (least recently used)")
	}
}

// failedLocked handles a failed delivery: a refusal evicts the version, no
// answer leaves it cached; the active version's failure, no answer, and a
// refusal of the token make the plugin unhealthy.
func (p *Plugin) failedLocked(r ref, err error) error {
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status >= 500 || ae.Status < 400 || ae.Status == http.StatusRequestTimeout {
		if errors.Is(err, context.Canceled) {
			return reason.Wrap(ErrUnavailable, err, "the request was cancelled")
		}
		p.setHealthLocked(false, "cannot reach the key server: "+err.Error())
		return reason.Wrap(ErrUnavailable, err, "cannot get a DEK from the key server")
	}
	if r.version == 0 {
		p.evictLocked(p.active, "the key server refused the active version: "+ae.Code)
	} else {
		p.evictLocked(r, "the key server refused it: "+ae.Code)
	}
	var e error
	switch ae.Code {
	case api.CodeKeyDestroyed:
		e = reason.New(ErrDestroyed, "key %s version %d of tenant %s was destroyed: data under it can no longer be decrypted", r.typ, r.version, p.o.Tenant)
	case api.CodeNotFound:
		e = reason.Wrap(ErrRefused, err, "tenant %s has no key %s version %d", p.o.Tenant, r.typ, r.version)
	default:
		e = reason.Wrap(ErrRefused, err, "the key server refused the DEK of tenant %s key %s version %d", p.o.Tenant, r.typ, r.version)
	}
	switch {
	case r.version == 0, ae.Status == http.StatusUnauthorized, ae.Status == http.StatusForbidden:
		p.setHealthLocked(false, "the key server refused: "+err.Error())
	}
	return e
}

// get returns the DEK of r (never version 0) from the cache while fresh,
// else from the server.
func (p *Plugin) get(ctx context.Context, r ref) (client.DEK, error) {
	now := p.o.Now()
	p.mu.Lock()
	e := p.deks[r]
	var confirmed time.Time
	if e != nil {
		if confirmed = e.confirmed; now.Sub(confirmed) <= p.o.DEKMaxAge {
			e.used = now
			d := e.dek
			p.mu.Unlock()
			return d, nil
		}
	}
	id := p.keyID(r)
	p.mu.Unlock()
	d, err := p.fetch(ctx, r)
	if err != nil && e != nil && errors.Is(err, ErrUnavailable) {
		p.mu.Lock()
		if e := p.deks[r]; e != nil && now.Sub(e.confirmed) > p.o.DEKMaxAge {
			p.evictLocked(r, "not confirmed by the key server for the DEK max age")
		}
		p.mu.Unlock()
		var re *reason.Error
		if errors.As(err, &re) && re.Cause != nil {
			err = re.Cause // not the fetch's reason again
		}
		return client.DEK{}, reason.Wrap(ErrUnavailable, err, "the cached DEK of %s was last confirmed by the key server at %s, over the DEK max age (%v) ago, and the server does not answer",
			id, confirmed.UTC().Format(time.RFC3339), p.o.DEKMaxAge)
	}
	return d, err
}

// activeDEK returns the active version's DEK, fresh.
func (p *Plugin) activeDEK(ctx context.Context) (client.DEK, error) {
	p.mu.Lock()
	r := p.active
	p.mu.Unlock()
	if r == (ref{}) {
		return p.fetch(ctx, ref{typ: p.o.Type})
	}
	d, err := p.get(ctx, r)
	if errors.Is(err, ErrRefused) || errors.Is(err, ErrDestroyed) {
		// The version is no more (it should not be: an active key is
		// never destroyed); the server says which is active now.
		return p.fetch(ctx, ref{typ: p.o.Type})
	}
	return d, err
}

func checkUID(uid string) error {
	if uid == "" || len(uid) > MaxUID {
		return reason.New(ErrInvalid, "the request uid must be 1 to %d bytes, not %d", MaxUID, len(uid))
	}
	for _, c := range []byte(uid) {
		if c < 0x21 || c > 0x7e {
			return reason.New(ErrInvalid, "the request uid holds a byte that is not printable ASCII")
		}
	}
	return nil
}

// Status implements service.Service: healthz is "ok" when the last delivery
// of the active version succeeded, else the problem; the key id is the
// active version's, as last delivered ("" before the first delivery).
func (p *Plugin) Status(ctx context.Context) (*service.StatusResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := &service.StatusResponse{Version: Version, Healthz: Healthy}
	if p.active != (ref{}) {
		res.KeyID = p.keyID(p.active)
	}
	if !p.healthy {
		res.Healthz = "unhealthy: " + p.problem
		if !p.since.IsZero() {
			res.Healthz += " (since " + p.since.UTC().Format(time.RFC3339) + ")"
		}
	}
	return res, nil
}

// Encrypt implements service.Service: plaintext (at most what fits a 1 KiB
// ciphertext) under the active version's DEK.
func (p *Plugin) Encrypt(ctx context.Context, uid string, plaintext []byte) (*service.EncryptResponse, error) {
	res, err := p.encrypt(ctx, uid, plaintext)
	return res, p.answer("encrypt", uid, err)
}

func (p *Plugin) encrypt(ctx context.Context, uid string, plaintext []byte) (*service.EncryptResponse, error) {
	if err := checkUID(uid); err != nil {
		return nil, err
	}
	if len(plaintext) == 0 {
		return nil, reason.New(ErrInvalid, "the plaintext is empty")
	}
	if len(plaintext) >= MaxCiphertext {
		return nil, reason.New(ErrInvalid, "a plaintext of %d bytes does not fit a ciphertext of at most %d bytes", len(plaintext), MaxCiphertext)
	}
	for try := 0; ; try++ {
		d, err := p.activeDEK(ctx)
		if err != nil {
			return nil, err
		}
		h := envelope.Header{Tenant: d.TenantID(), Type: d.Type(), Version: d.Version()}
		if max := MaxCiphertext - h.Overhead(); len(plaintext) > max {
			return nil, reason.New(ErrInvalid, "a plaintext of %d bytes does not fit a ciphertext of at most %d bytes: at most %d bytes", len(plaintext), MaxCiphertext, max)
		}
		ct, err := d.Encrypt(plaintext, Context())
		if errors.Is(err, client.ErrDestroyed) && try == 0 {
			continue // evicted meanwhile
		}
		if err != nil {
			return nil, err
		}
		return &service.EncryptResponse{
			Ciphertext:  ct,
			KeyID:       dekID(d),
			Annotations: map[string][]byte{AnnotationFormat: []byte(FormatVersion)},
		}, nil
	}
}

// Decrypt implements service.Service: the ciphertext under the DEK of the
// version its header names, which must be the key id's.
func (p *Plugin) Decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	pt, err := p.decrypt(ctx, uid, req)
	return pt, p.answer("decrypt", uid, err)
}

func (p *Plugin) decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	if err := checkUID(uid); err != nil {
		return nil, err
	}
	if err := checkAnnotations(req.Annotations); err != nil {
		return nil, err
	}
	if len(req.KeyID) == 0 || len(req.KeyID) > MaxKeyID {
		return nil, reason.New(ErrInvalid, "the key id must be 1 to %d bytes, not %d", MaxKeyID, len(req.KeyID))
	}
	if len(req.Ciphertext) > MaxCiphertext {
		return nil, reason.New(ErrInvalid, "a ciphertext of %d bytes: at most %d", len(req.Ciphertext), MaxCiphertext)
	}
	h, err := envelope.ParseHeader(req.Ciphertext)
	if err != nil {
		return nil, reason.New(ErrDecrypt, "the ciphertext is not a Strongroom ciphertext (truncated or malformed)")
	}
	if id := KeyID(h.Tenant, h.Type, h.Version); req.KeyID != id {
		return nil, reason.New(ErrInvalid, "the key id %q is not the ciphertext's, %q", req.KeyID, id)
	}
	p.mu.Lock()
	tid := p.tenantID
	p.mu.Unlock()
	if tid != "" && h.Tenant != tid {
		return nil, reason.New(ErrDecrypt, "the ciphertext is under a key of tenant id %s, not of tenant %s (id %s)", h.Tenant, p.o.Tenant, tid)
	}
	for try := 0; ; try++ {
		d, err := p.get(ctx, ref{typ: h.Type, version: h.Version})
		if err != nil {
			return nil, err
		}
		pt, err := d.Decrypt(req.Ciphertext, Context())
		switch {
		case errors.Is(err, client.ErrDestroyed) && try == 0:
			continue // evicted meanwhile
		case errors.Is(err, client.ErrDecrypt):
			return nil, reason.Wrap(ErrDecrypt, err, "the ciphertext does not open under %s: altered, or not made by this plugin", req.KeyID)
		case err != nil:
			return nil, err
		}
		return pt, nil
	}
}

func checkAnnotations(a map[string][]byte) error {
	v, ok := a[AnnotationFormat]
	switch {
	case !ok:
		return reason.New(ErrInvalid, "the annotation %s is missing: not a ciphertext of this plugin", AnnotationFormat)
	case string(v) != FormatVersion:
		return reason.New(ErrInvalid, "the annotation %s is %q: this plugin reads format %s only", AnnotationFormat, v, FormatVersion)
	case len(a) != 1:
		others := slices.Sorted(maps.Keys(a))
		others = slices.DeleteFunc(others, func(k string) bool { return k == AnnotationFormat })
		return reason.New(ErrInvalid, "unknown annotations %q: this plugin sets %s only", others, AnnotationFormat)
	}
	return nil
}

// answer logs a failed call and makes its error a gRPC status.
func (p *Plugin) answer(call, uid string, err error) error {
	if err == nil {
		return nil
	}
	p.o.Logger.Warn("k8s-plugin: "+call+" failed", "uid", safeUID(uid), "error", err)
	return grpcError(err)
}

// safeUID is uid as it may be logged: cut and printable.
func safeUID(uid string) string {
	if checkUID(uid) != nil {
		return strconv.Quote(uid[:min(len(uid), MaxUID)])
	}
	return uid
}
