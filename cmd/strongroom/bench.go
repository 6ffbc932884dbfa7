package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/httpbody"
	"github.com/strongroom-kms/strongroom/internal/loadgen"
)

// benchTargets are the targets of `strongroom bench`, in the order a run
// takes them.
var benchTargets = []string{"encrypt", "decrypt", "rewrap", "dek", "transit-encrypt", "transit-datakey", "echo"}

// benchCommand is `strongroom bench`: internal/loadgen over Strongroom's
// data plane, a Vault/OpenBao transit engine, and a bare TLS echo server on
// the same Go stack as the ceiling (docs/benchmarks.md). Loopback only.
func benchCommand() *command {
	return &command{
		name:    "bench",
		summary: "load-test a Strongroom server, a Vault/OpenBao transit engine, or a bare TLS echo, on loopback (see docs/benchmarks.md)",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var af apiFlags
			af.register(fs, e)
			tenant := fs.String("tenant", "", "the tenant (Strongroom targets; the token must be its app token)")
			typ := keyTypeFlag(fs, "data", "the key type")
			targets := fs.StringSlice("target", []string{"encrypt"}, "what to measure: "+strings.Join(benchTargets, ", ")+"; repeat or separate with commas")
			levels := fs.IntSlice("concurrency", []int{1, 8, 32, 128}, "concurrent clients; each level is a run")
			duration := fs.Duration("duration", 5*time.Second, "each run's length (at most 60s)")
			count := fs.Int64("count", 0, "end each run after this many operations instead (0: by duration)")
			warmup := fs.Duration("warmup", 500*time.Millisecond, "unmeasured operations before each run")
			size := fs.Int("size", 1024, "plaintext bytes per item")
			batch := fs.Int("batch", 1, "items per request (encrypt, decrypt, rewrap, transit-encrypt; dek: DEKs per request, at most 64)")
			transitAddr := fs.String("transit-addr", e.getenv("BAO_ADDR"), "the Vault/OpenBao server (default $BAO_ADDR)")
			transitToken := fs.String("transit-token", e.getenv("BAO_TOKEN"), "its token (default $BAO_TOKEN)")
			transitCA := fs.String("transit-ca", e.getenv("BAO_CACERT"), "its CA certificate file (default $BAO_CACERT)")
			transitKey := fs.String("transit-key", "strongroom-bench", "the transit key (aes256-gcm96) to use")
			return func(ctx context.Context, args []string) error {
				switch {
				case len(args) > 0:
					return usageErrorf("bench takes no arguments")
				case *duration <= 0 && *count <= 0, *duration > time.Minute:
					return usageErrorf("--duration must be 1ns to 60s (or give --count)")
				case *size < 0 || *size > 64<<10:
					return usageErrorf("--size %d: 0 to 65536 bytes", *size)
				case *batch < 1 || *batch > 1000:
					return usageErrorf("--batch %d: 1 to 1000", *batch)
				}
				for _, c := range *levels {
					if c < 1 || c > 1024 {
						return usageErrorf("--concurrency %d: 1 to 1024", c)
					}
				}
				if *count > 0 && !fs.Changed("duration") {
					*duration = 0
				}
				b := &bench{e: e, af: &af, tenant: *tenant, typ: *typ, size: *size, batch: *batch,
					transit: transitFlags{addr: *transitAddr, token: *transitToken, ca: *transitCA, key: *transitKey}}
				var results []loadgen.Result
				if e.output != "json" {
					fmt.Fprintln(e.stdout, loadgen.Header)
				}
				for _, name := range *targets {
					op, cleanup, err := b.target(ctx, name)
					if err != nil {
						return err
					}
					for _, c := range *levels {
						r, err := loadgen.Run(ctx, name, op, loadgen.Options{Concurrency: c, Duration: *duration, Count: *count, Warmup: *warmup})
						if err != nil {
							cleanup()
							return err
						}
						results = append(results, r)
						if e.output != "json" {
							fmt.Fprintln(e.stdout, r)
							if r.FirstError != "" {
								fmt.Fprintf(e.stderr, "%s at %d: %d errors, the first: %s\n", name, c, r.Errors, r.FirstError)
							}
						}
					}
					cleanup()
				}
				if e.output == "json" {
					return e.print(results, nil)
				}
				return nil
			}
		},
	}
}

// bench is one `strongroom bench` invocation's settings.
type bench struct {
	e           *env
	af          *apiFlags
	tenant, typ string
	size, batch int
	transit     transitFlags
}

type transitFlags struct{ addr, token, ca, key string }

// checkLoopbackURL refuses a target that is not on this machine: a load test
// of a remote server is its operator's decision, not a default.
func checkLoopbackURL(what, addr string) error {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return usageErrorf("%s %q is not a URL such as https://127.0.0.1:8443", what, addr)
	}
	if !loopbackHost(u.Hostname()) {
		return usageErrorf("%s %s is not a loopback address: strongroom bench runs on this machine only", what, addr)
	}
	return nil
}

// target returns the operation of a target and what to do after its runs.
func (b *bench) target(ctx context.Context, name string) (loadgen.Op, func(), error) {
	nothing := func() {}
	plain := make([]byte, b.size)
	rand.Read(plain)
	items := make([]api.EncryptItem, b.batch)
	for i := range items {
		items[i] = api.EncryptItem{Plaintext: plain, Context: map[string]string{"bench": strconv.Itoa(i)}}
	}
	switch name {
	case "encrypt", "decrypt", "rewrap", "dek":
		c, err := b.strongroom()
		if err != nil {
			return nil, nil, err
		}
		if name == "dek" && b.batch > 1 {
			// --batch: one POST .../deks for that many DEKs of the active
			// key, each sealed, audited and counted as one delivery.
			keys := make([]api.DEKKey, b.batch)
			for i := range keys {
				keys[i] = api.DEKKey{Type: b.typ}
			}
			return func(ctx context.Context) error {
				res, err := c.DEKs(ctx, b.tenant, client.KEMX25519, keys...)
				for _, r := range res {
					r.DEK.Destroy()
				}
				if err != nil {
					return err
				}
				return itemErr(len(res), func(i int) *api.Error { return res[i].Error })
			}, nothing, nil
		}
		if name == "dek" {
			return func(ctx context.Context) error {
				d, err := c.DEK(ctx, b.tenant, b.typ, 0, client.KEMX25519)
				d.Destroy()
				return err
			}, nothing, nil
		}
		enc := func(ctx context.Context) ([]api.EncryptResult, error) {
			res, err := c.Encrypt(ctx, b.tenant, b.typ, items...)
			if err != nil {
				return nil, err
			}
			return res, itemErr(len(res), func(i int) *api.Error { return res[i].Error })
		}
		if name == "encrypt" {
			return func(ctx context.Context) error { _, err := enc(ctx); return err }, nothing, nil
		}
		res, err := enc(ctx)
		if err != nil {
			return nil, nil, explain(err)
		}
		if name == "decrypt" {
			dec := make([]api.DecryptItem, len(res))
			for i, r := range res {
				dec[i] = api.DecryptItem{Ciphertext: r.Ciphertext, Context: items[i].Context}
			}
			return func(ctx context.Context) error {
				out, err := c.Decrypt(ctx, b.tenant, dec...)
				if err != nil {
					return err
				}
				return itemErr(len(out), func(i int) *api.Error { return out[i].Error })
			}, nothing, nil
		}
		rw := make([]api.RewrapItem, len(res))
		for i, r := range res {
			rw[i] = api.RewrapItem{Ciphertext: r.Ciphertext, Context: items[i].Context}
		}
		return func(ctx context.Context) error {
			out, err := c.Rewrap(ctx, b.tenant, rw...)
			if err != nil {
				return err
			}
			return itemErr(len(out), func(i int) *api.Error { return out[i].Error })
		}, nothing, nil
	case "transit-encrypt", "transit-datakey":
		return b.transitTarget(ctx, name, plain)
	case "echo":
		return b.echo(plain)
	}
	return nil, nil, usageErrorf("--target %q: one of %s", name, strings.Join(benchTargets, ", "))
}

func itemErr(n int, errOf func(int) *api.Error) error {
	for i := range n {
		if e := errOf(i); e != nil {
			return fmt.Errorf("item %d: %s: %s", i, e.Code, e.Message)
		}
	}
	return nil
}

func (b *bench) strongroom() (*client.Client, error) {
	if b.tenant == "" {
		return nil, usageErrorf("--tenant is required for the Strongroom targets")
	}
	if err := checkLoopbackURL("--addr", b.af.addr); err != nil {
		return nil, err
	}
	return b.af.client()
}

// transitTarget is Vault/OpenBao transit's encrypt, or its datakey (a
// plaintext DEK and its wrapped form), with the key made if missing.
func (b *bench) transitTarget(ctx context.Context, name string, plain []byte) (loadgen.Op, func(), error) {
	t := b.transit
	if t.addr == "" || t.token == "" {
		return nil, nil, usageErrorf("--transit-addr and --transit-token (or BAO_ADDR and BAO_TOKEN) are required for %s", name)
	}
	if err := checkLoopbackURL("--transit-addr", t.addr); err != nil {
		return nil, nil, err
	}
	hc, err := benchHTTPClient(t.ca, nil)
	if err != nil {
		return nil, nil, err
	}
	base := strings.TrimSuffix(t.addr, "/") + "/v1/transit/"
	// Like the Go client for Strongroom's targets, it encodes each request
	// and decodes each answer (out, if not nil), as a real client must to
	// use it, with the client's body reader and JSON decoder (client.do),
	// so that no target pays more on the client's side than another.
	call := func(ctx context.Context, path string, body, out any) error {
		data, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("X-Vault-Token", t.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		answer, err := httpbody.ReadAll(io.LimitReader(res.Body, 1<<20), res.ContentLength, 1<<20)
		if err != nil {
			return err
		}
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("transit %s: %s: %s", path, res.Status, bytes.TrimSpace(answer))
		}
		if out == nil {
			return nil
		}
		if err := jsonv2.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("transit %s: the answer: %w", path, err)
		}
		return nil
	}
	// The key, aes256-gcm96 as transit's default; creating it again is a
	// no-op.
	if err := call(ctx, "keys/"+url.PathEscape(t.key), map[string]string{"type": "aes256-gcm96"}, nil); err != nil {
		return nil, nil, err
	}
	if name == "transit-encrypt" && b.batch > 1 {
		// --batch: transit's batch_input, the counterpart of an encrypt
		// request of as many items.
		return func(ctx context.Context) error {
			type item struct {
				Plaintext string `json:"plaintext"`
			}
			in := make([]item, b.batch)
			for i := range in {
				in[i].Plaintext = base64.StdEncoding.EncodeToString(plain)
			}
			var out struct {
				Data struct {
					BatchResults []struct {
						Ciphertext string `json:"ciphertext"`
						Error      string `json:"error"`
					} `json:"batch_results"`
				} `json:"data"`
			}
			if err := call(ctx, "encrypt/"+url.PathEscape(t.key), map[string][]item{"batch_input": in}, &out); err != nil {
				return err
			}
			if len(out.Data.BatchResults) != b.batch {
				return fmt.Errorf("transit encrypt: %d batch results for %d items", len(out.Data.BatchResults), b.batch)
			}
			for i, r := range out.Data.BatchResults {
				if r.Ciphertext == "" {
					return fmt.Errorf("transit encrypt: item %d: no ciphertext (%s)", i, r.Error)
				}
			}
			return nil
		}, func() {}, nil
	}
	if name == "transit-encrypt" {
		return func(ctx context.Context) error {
			var out struct {
				Data struct {
					Ciphertext string `json:"ciphertext"`
				} `json:"data"`
			}
			body := map[string]string{"plaintext": base64.StdEncoding.EncodeToString(plain)}
			if err := call(ctx, "encrypt/"+url.PathEscape(t.key), body, &out); err != nil {
				return err
			}
			if out.Data.Ciphertext == "" {
				return errors.New("transit encrypt: no ciphertext in the answer")
			}
			return nil
		}, func() {}, nil
	}
	return func(ctx context.Context) error {
		var out struct {
			Data struct {
				Plaintext  string `json:"plaintext"`
				Ciphertext string `json:"ciphertext"`
			} `json:"data"`
		}
		if err := call(ctx, "datakey/plaintext/"+url.PathEscape(t.key), map[string]int{"bits": 256}, &out); err != nil {
			return err
		}
		key, err := base64.StdEncoding.DecodeString(out.Data.Plaintext)
		clear(key)
		if err != nil || len(key) != 32 || out.Data.Ciphertext == "" {
			return errors.New("transit datakey: no 32-byte key and its wrapped form in the answer")
		}
		return nil
	}, func() {}, nil
}

// benchHTTPClient is an HTTP client like the Go client's (the default
// transport, HTTP/2 when the server offers it) trusting caFile or pool.
func benchHTTPClient(caFile string, pool *x509.CertPool) (*http.Client, error) {
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	tr.MaxIdleConnsPerHost = 1024
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, nil
}

// echo is the ceiling: a TLS server on loopback in this process, on the
// same Go stack and with the same certificate type as Strongroom dev's
// (ECDSA P-256), that reads a request the size of an encrypt request and
// answers a body the size of an encrypt answer, doing nothing else.
func (b *bench) echo(plain []byte) (loadgen.Op, func(), error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strongroom bench echo"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	items := make([]api.EncryptItem, b.batch)
	results := make([]api.EncryptResult, b.batch)
	for i := range items {
		items[i] = api.EncryptItem{Plaintext: plain, Context: map[string]string{"bench": strconv.Itoa(i)}}
		results[i] = api.EncryptResult{Ciphertext: make([]byte, len(plain)+71), Type: b.typ, Version: 1}
	}
	answer, _ := json.Marshal(api.EncryptResponse{Items: results})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write(answer)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.ServeTLS(l, "", "")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc, err := benchHTTPClient("", pool)
	if err != nil {
		return nil, nil, err
	}
	u := "https://" + l.Addr().String() + "/v1/tenants/bench/encrypt"
	op := func(ctx context.Context) error {
		// Encoded per request, as the Go client does.
		reqBody, err := json.Marshal(api.EncryptRequest{Type: b.typ, Items: items})
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(reqBody))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer srt_bench")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		// Read and decoded as the Go client does (client.do).
		answer, err := httpbody.ReadAll(io.LimitReader(res.Body, 1<<20), res.ContentLength, 1<<20)
		if err != nil {
			return err
		}
		var out api.EncryptResponse
		if err := jsonv2.Unmarshal(answer, &out); err != nil {
			return err
		}
		if len(out.Items) != len(items) {
			return errors.New("echo: short answer")
		}
		return nil
	}
	return op, func() { srv.Close() }, nil
}
