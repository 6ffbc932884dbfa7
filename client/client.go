// Package client is the Go client of a Strongroom regional key server's
// HTTP API (/v1): one method per route, taking and returning the api wire
// types. API errors are *Error.
//
//	c, err := client.New("https://kms.eu1.example:8443", token, client.WithCAFile("ca.pem"))
//	res, err := c.Encrypt(ctx, "acme", "data", api.EncryptItem{Plaintext: []byte("4111…")})
//
// To encrypt locally, without a request per item or the body limit, ask for
// the DEK of the active key, delivered with HPKE; its ciphertexts are the
// server's, so either side decrypts what the other encrypted:
//
//	dek, err := c.DEK(ctx, "acme", "data", 0, client.KEMMLKEM768X25519)
//	defer dek.Destroy()
//	ct, err := dek.Encrypt(plaintext, map[string]string{"field": "ssn"})
//
// # Data at scale
//
// A program that encrypts much data keeps its DEKs in a DEKCache, bounded in
// entries and in age (TTL, default 5 minutes: also how long a key destroyed
// on the server may still work here), which fetches each key version once
// however many goroutines ask, and destroys the DEKs it drops:
//
//	cache, err := client.NewDEKCache(c, client.DEKCacheOptions{TTL: time.Minute})
//	defer cache.Close()
//	ct, err := cache.Encrypt(ctx, "acme", "data", plaintext, map[string]string{"field": "ssn"})
//	pt, err := cache.Decrypt(ctx, "acme", ct, map[string]string{"field": "ssn"})
//
// Data of any size, a file or a pipe, is encrypted as a stream (format 3 of
// docs/dataplane.md): chunks of StreamChunk bytes, each authenticated, so
// that memory stays bounded whatever the size. Close the writer, and treat
// the plaintext a reader returns as final only at its io.EOF: a stream that
// was altered or truncated is ErrDecrypt, after the plaintext of the chunks
// before the damage.
//
//	w, err := cache.EncryptWriter(ctx, "acme", "data", out, map[string]string{"file": "backup.tar"})
//	_, err = io.Copy(w, in)
//	err = w.Close()
//
//	r, err := cache.DecryptReader(ctx, "acme", in, map[string]string{"file": "backup.tar"})
//	_, err = io.Copy(out, r)
//
// Streams open only in the client (the server opens single ciphertexts, up to its
// body limit); their first byte is FormatStream, and PeekStream tells them
// from single ciphertexts.
//
// The token is sent only in the Authorization header, and never appears in
// an error.
//
// Answers are decoded with encoding/json/v2's implementation
// (github.com/go-json-experiment/json): about three times faster than
// encoding/json on the data plane's answers, and it refuses a repeated
// member or invalid UTF-8 instead of resolving them silently. Unknown
// members are ignored, so that a newer server's answers still decode.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpbody"
)

// Client calls one server's API with one token. It is safe for concurrent
// use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	roots   *x509.CertPool
	hc      *http.Client
	timeout time.Duration
}

// WithCAFile trusts the CA certificates (PEM) in path for the server's TLS
// certificate, instead of the system's.
func WithCAFile(path string) Option {
	return func(o *options) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("client: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return fmt.Errorf("client: CA file %s holds no PEM certificate", path)
		}
		o.roots = pool
		return nil
	}
}

// WithRootCAs trusts pool for the server's TLS certificate, instead of the
// system's.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) error {
		if pool == nil {
			return errors.New("client: WithRootCAs(nil)")
		}
		o.roots = pool
		return nil
	}
}

// WithHTTPClient makes requests with hc (its transport decides TLS); it
// cannot be combined with WithCAFile or WithRootCAs.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error {
		if hc == nil {
			return errors.New("client: WithHTTPClient(nil)")
		}
		o.hc = hc
		return nil
	}
}

// WithTimeout bounds each request (default 60 s; 0 = no bound beyond the
// context's).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("client: negative timeout %v", d)
		}
		o.timeout = d
		return nil
	}
}

// New returns a client of the server at baseURL (https://HOST[:PORT]; plain
// http only to a loopback address) that authenticates with token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: %q is not a server URL such as https://kms.example:8443", baseURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("client: %s: plain http is allowed only to a loopback address: use https", baseURL)
		}
	default:
		return nil, fmt.Errorf("client: %q: use an https:// URL", baseURL)
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("client: the token holds a line break")
	}
	o := options{timeout: 60 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	hc := o.hc
	switch {
	case hc != nil && o.roots != nil:
		return nil, errors.New("client: WithHTTPClient cannot be combined with WithCAFile or WithRootCAs: configure the client's transport")
	case hc != nil:
		c := *hc
		if o.timeout != 0 {
			c.Timeout = o.timeout
		}
		hc = &c
	default:
		// HTTP/2 when the server speaks it (Strongroom's does): one
		// connection, concurrent calls as streams. Over HTTP/1.1 (a proxy
		// in between), keep enough idle connections for concurrent calls
		// not to make new TLS connections all the time.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.roots}
		tr.ForceAttemptHTTP2 = true
		tr.MaxIdleConnsPerHost = maxIdleConns
		hc = &http.Client{Transport: tr, Timeout: o.timeout}
	}
	// Never follow a redirect with the token: the API does not redirect.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: u, token: token, hc: hc}, nil
}

// maxIdleConns is how many idle connections the default transport keeps
// to the server, for HTTP/1.1.
const maxIdleConns = 64

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error is an error answer of the API.
type Error struct {
	Status  int    // the HTTP status
	Code    string // an api.Code* value; "" if the answer was not an API error
	Message string
	// NextAllowed is set on rate_limited answers.
	NextAllowed *time.Time
	// RequestID is the server's id of the request, for its logs.
	RequestID string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("strongroom: %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.NextAllowed != nil {
		s += " (next allowed at " + e.NextAllowed.UTC().Format(time.RFC3339) + ")"
	}
	return s
}

// maxAnswer bounds a response body.
const maxAnswer = 256 << 20

// do sends a request and decodes a 2xx answer into out. An error answer is
// an *Error. Headers of the answer are returned for callers that need them.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := *c.base
	u.Path, u.RawPath = c.base.Path+path, ""
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encoding the request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := httpbody.ReadAll(io.LimitReader(res.Body, maxAnswer+1), res.ContentLength, maxAnswer)
	if err != nil {
		return fmt.Errorf("client: %s %s: reading the answer: %w", method, path, err)
	}
	if len(data) > maxAnswer {
		return fmt.Errorf("client: %s %s: the answer is over %d bytes", method, path, maxAnswer)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return answerError(res, data, out)
	}
	if out == nil {
		return nil
	}
	if err := jsonv2.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// answerError makes the *Error of a non-2xx answer. For GET /v1/ready the
// 503 body is an api.Ready: it is decoded into out as well.
func answerError(res *http.Response, data []byte, out any) error {
	e := &Error{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
	var ae api.Error
	if jsonv2.Unmarshal(data, &ae) == nil && ae.Code != "" {
		e.Code, e.Message, e.NextAllowed = ae.Code, ae.Message, ae.NextAllowed
		return e
	}
	if r, ok := out.(*api.Ready); ok && jsonv2.Unmarshal(data, r) == nil && r.Status != "" {
		e.Code = api.CodeNotReady
		e.Message = fmt.Sprintf("the node is not ready: %d problem(s), which an operator or auditor token reads with Status (GET /v1/status)", r.Problems)
		return e
	}
	// Not the API (a proxy, a load balancer): a short, printable excerpt.
	msg := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(data[:min(len(data), 200)]))
	e.Message = strings.TrimSpace(msg)
	if e.Message == "" {
		e.Message = http.StatusText(res.StatusCode)
	}
	return e
}

// seg checks a value bound for a path segment.
func seg(what, v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/?#") {
		return fmt.Errorf("client: invalid %s %q", what, v)
	}
	return nil
}

// Health asks whether the server is alive (GET /v1/health).
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var h api.Health
	err := c.do(ctx, "GET", "/v1/health", nil, nil, &h)
	return h, err
}

// Ready asks whether the server is ready (GET /v1/ready, no token needed).
// When it is not, the error is an *Error with Status 503 and Code
// not_ready, and the answer (with its counts) is returned too.
func (c *Client) Ready(ctx context.Context) (api.Ready, error) {
	var r api.Ready
	err := c.do(ctx, "GET", "/v1/ready", nil, nil, &r)
	return r, err
}

// Status returns the server's readiness in detail: its loaded releases and
// what keeps it from being ready (GET /v1/status, operator or auditor). A
// node that is not ready answers it too, with Status "not_ready".
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var s api.Status
	err := c.do(ctx, "GET", "/v1/status", nil, nil, &s)
	return s, err
}

// OpenAPI returns the server's OpenAPI document (GET /v1/openapi.json).
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	err := c.do(ctx, "GET", "/v1/openapi.json", nil, nil, &doc)
	return doc, err
}

// InstallRelease installs a release bundle file (PEM), as the ceremony wrote
// it (POST /v1/releases). Installing the same bundle again is harmless.
func (c *Client) InstallRelease(ctx context.Context, bundle []byte) (api.Release, error) {
	var r api.Release
	err := c.do(ctx, "POST", "/v1/releases", nil, api.InstallReleaseRequest{Bundle: bundle}, &r)
	return r, err
}

// Releases lists the installed releases (GET /v1/releases).
func (c *Client) Releases(ctx context.Context) ([]api.Release, error) {
	var l api.ReleaseList
	err := c.do(ctx, "GET", "/v1/releases", nil, nil, &l)
	return l.Releases, err
}

// CreateTenant creates a tenant (POST /v1/tenants); env is production,
// developer or sandbox.
func (c *Client) CreateTenant(ctx context.Context, name, env string) (api.Tenant, error) {
	var t api.Tenant
	err := c.do(ctx, "POST", "/v1/tenants", nil, api.CreateTenantRequest{Name: name, Env: env}, &t)
	return t, err
}

// Tenants lists the tenants (GET /v1/tenants).
func (c *Client) Tenants(ctx context.Context) ([]api.Tenant, error) {
	var l api.TenantList
	err := c.do(ctx, "GET", "/v1/tenants", nil, nil, &l)
	return l.Tenants, err
}

// Tenant shows one tenant, by name (GET /v1/tenants/{tenant}).
func (c *Client) Tenant(ctx context.Context, name string) (api.Tenant, error) {
	var t api.Tenant
	if err := seg("tenant name", name); err != nil {
		return t, err
	}
	err := c.do(ctx, "GET", "/v1/tenants/"+name, nil, nil, &t)
	return t, err
}

// CreateToken creates an API token (POST /v1/tokens). Its Secret is in this
// answer only.
func (c *Client) CreateToken(ctx context.Context, req api.CreateTokenRequest) (api.Token, error) {
	var t api.Token
	err := c.do(ctx, "POST", "/v1/tokens", nil, req, &t)
	return t, err
}

// Tokens lists the API tokens the client's token may see (GET /v1/tokens),
// oldest first, never their secrets: operators and auditors every token, or
// the tenant's if tenant is not ""; a tenant-admin its tenant's app tokens
// and itself. state, if not "", keeps the tokens in that state
// (api.TokenLive, api.TokenExpired, api.TokenRevoked).
func (c *Client) Tokens(ctx context.Context, tenant, state string) ([]api.TokenInfo, error) {
	q := url.Values{}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	if state != "" {
		q.Set("state", state)
	}
	var l api.TokenList
	err := c.do(ctx, "GET", "/v1/tokens", q, nil, &l)
	return l.Tokens, err
}

// RevokeToken revokes an API token by id (POST /v1/tokens/{id}/revoke;
// operators any token, a tenant-admin its tenant's app tokens and itself):
// it is refused from then on (api.CodeTokenRevoked), and so is every token
// it made (and theirs). A token revoked already is an *Error with Code
// api.CodeAlreadyRevoked, whose message says when. To revoke the client's
// own token, use RevokeSelf.
func (c *Client) RevokeToken(ctx context.Context, id string) (api.Revocation, error) {
	var r api.Revocation
	if err := seg("token id", id); err != nil {
		return r, err
	}
	if id == "self" {
		return r, errors.New(`client: "self" is not a token id: use RevokeSelf to revoke the client's own token`)
	}
	err := c.do(ctx, "POST", "/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, nil, &r)
	return r, err
}

// Self returns the client's own token, without its secret (GET
// /v1/tokens/self, any token): who the client is.
func (c *Client) Self(ctx context.Context) (api.TokenInfo, error) {
	var t api.TokenInfo
	err := c.do(ctx, "GET", "/v1/tokens/self", nil, nil, &t)
	return t, err
}

// RevokeSelf revokes the client's own token, and every token it made (and
// theirs) (POST /v1/tokens/self/revoke, any token). It returns the token as
// revoked and the ids of those revoked with it; the client authenticates
// nobody from then on.
func (c *Client) RevokeSelf(ctx context.Context) (api.Revocation, error) {
	var r api.Revocation
	err := c.do(ctx, "POST", "/v1/tokens/self/revoke", nil, nil, &r)
	return r, err
}

// GenerateKey makes a new active key of type typ ("" = data) for a tenant
// (POST /v1/tenants/{tenant}/keys). Too soon after the last one it is an
// *Error with Code rate_limited and NextAllowed.
func (c *Client) GenerateKey(ctx context.Context, tenant, typ string) (api.Key, error) {
	var k api.Key
	if err := seg("tenant name", tenant); err != nil {
		return k, err
	}
	err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/keys", nil, api.GenerateKeyRequest{Type: typ}, &k)
	return k, err
}

// Keys lists a tenant's keys of type typ ("" = every type) (GET
// /v1/tenants/{tenant}/keys).
func (c *Client) Keys(ctx context.Context, tenant, typ string) ([]api.Key, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var q url.Values
	if typ != "" {
		q = url.Values{"type": {typ}}
	}
	var l api.KeyList
	err := c.do(ctx, "GET", "/v1/tenants/"+tenant+"/keys", q, nil, &l)
	return l.Keys, err
}

// KeyUsage lists what each version of a tenant's keys (of type typ, or
// of every type if typ is "") was used for (GET
// /v1/tenants/{tenant}/keys/usage): server-side encryptions, decryptions,
// AES-GCM seals and their nonce state, DEK deliveries, the last times, and
// whether an archived version looks safe to destroy.
func (c *Client) KeyUsage(ctx context.Context, tenant, typ string) ([]api.KeyUsage, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var q url.Values
	if typ != "" {
		q = url.Values{"type": {typ}}
	}
	var l api.KeyUsageList
	err := c.do(ctx, "GET", "/v1/tenants/"+tenant+"/keys/usage", q, nil, &l)
	return l.Usage, err
}

// DestroyKey destroys a key version (POST
// /v1/tenants/{tenant}/keys/{type}/{version}/destroy). confirm must be
// "TENANT/TYPE/VERSION" exactly, as a person typed it: the data under the
// key becomes unreadable forever.
func (c *Client) DestroyKey(ctx context.Context, tenant, typ string, version uint32, confirm string) (api.Key, error) {
	var k api.Key
	if err := seg("tenant name", tenant); err != nil {
		return k, err
	}
	if err := seg("key type", typ); err != nil {
		return k, err
	}
	path := "/v1/tenants/" + tenant + "/keys/" + typ + "/" + strconv.FormatUint(uint64(version), 10) + "/destroy"
	err := c.do(ctx, "POST", path, nil, api.DestroyKeyRequest{Confirm: confirm}, &k)
	return k, err
}

// Encrypt encrypts items under the tenant's active key of type typ ("" =
// data) (POST /v1/tenants/{tenant}/encrypt). Errors of single items are in
// their results; the error is for the request as a whole.
func (c *Client) Encrypt(ctx context.Context, tenant, typ string, items ...api.EncryptItem) ([]api.EncryptResult, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var r api.EncryptResponse
	if err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/encrypt", nil, api.EncryptRequest{Type: typ, Items: items}, &r); err != nil {
		return nil, err
	}
	if len(r.Items) != len(items) {
		return nil, fmt.Errorf("client: the server answered %d items for %d", len(r.Items), len(items))
	}
	return r.Items, nil
}

// Decrypt decrypts items (POST /v1/tenants/{tenant}/decrypt). Errors of
// single items (e.g. key_destroyed) are in their results.
func (c *Client) Decrypt(ctx context.Context, tenant string, items ...api.DecryptItem) ([]api.DecryptResult, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var r api.DecryptResponse
	if err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/decrypt", nil, api.DecryptRequest{Items: items}, &r); err != nil {
		return nil, err
	}
	if len(r.Items) != len(items) {
		return nil, fmt.Errorf("client: the server answered %d items for %d", len(r.Items), len(items))
	}
	return r.Items, nil
}

// Rewrap moves ciphertexts to the active key of their type (POST
// /v1/tenants/{tenant}/rewrap); the plaintext never leaves the server. A
// ciphertext already under the active key comes back unchanged, with
// Rewrapped false. Errors of single items (e.g. key_destroyed) are in
// their results.
func (c *Client) Rewrap(ctx context.Context, tenant string, items ...api.RewrapItem) ([]api.RewrapResult, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var r api.RewrapResponse
	if err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/rewrap", nil, api.RewrapRequest{Items: items}, &r); err != nil {
		return nil, err
	}
	if len(r.Items) != len(items) {
		return nil, fmt.Errorf("client: the server answered %d items for %d", len(r.Items), len(items))
	}
	return r.Items, nil
}

// ReportDataAtRest records a data-at-rest census of one dataset (POST
// /v1/tenants/{tenant}/data-reports): its values under each version of a
// key type, none under the others. It returns the type's key usage, in
// which a version's rows_left sums the datasets reported.
func (c *Client) ReportDataAtRest(ctx context.Context, tenant string, req api.DataReportRequest) ([]api.KeyUsage, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var r api.KeyUsageList
	if err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/data-reports", nil, req, &r); err != nil {
		return nil, err
	}
	return r.Usage, nil
}
