package k8splugin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"
	"k8s.io/kms/pkg/service"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
	"github.com/strongroom-kms/strongroom/internal/k8splugin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

var ctx = context.Background()

// clock is the plugin's injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is a real Strongroom server (TLS on loopback) with tenant k8s and
// its data key, version 1, and a plugin on a unix socket in front of it,
// reached through the k8s.io/kms client.
type world struct {
	s      *apitest.Server
	ts     *httptest.Server
	op     *client.Client // operator
	app    *client.Client // the plugin's token
	plugin *k8splugin.Plugin
	kms    kmsapi.KeyManagementServiceClient
	clock  *clock
	socket string
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// socketDir is a short directory for sockets (a unix socket's path is at
// most 108 bytes; t.TempDir's can be longer).
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "k8sp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newWorld(t *testing.T, o k8splugin.Options) *world {
	t.Helper()
	s := apitest.NewServer(t, apitest.Options{})
	ts := httptest.NewTLSServer(s.Handler)
	t.Cleanup(ts.Close)
	s.Tenant(t, "k8s")
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	newClient := func(token string) *client.Client {
		c, err := client.New(ts.URL, token, client.WithRootCAs(pool), client.WithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	w := &world{s: s, ts: ts, op: newClient(s.Operator), clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, log: &syncBuffer{}}
	if _, err := w.op.GenerateKey(ctx, "k8s", "data"); err != nil {
		t.Fatal(err)
	}
	w.app = newClient(s.Token(t, api.RoleApp, "k8s"))
	o.Source, o.Tenant, o.Now = w.app, "k8s", w.clock.Now
	o.Logger = slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := k8splugin.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	w.plugin = p
	w.socket = filepath.Join(socketDir(t), "kms.sock")
	ln, err := k8splugin.Listen(w.socket)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- k8splugin.Serve(sctx, ln, p, o.Logger) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
		if _, err := os.Stat(w.socket); err == nil {
			t.Errorf("the socket %s is still there after Serve returned", w.socket)
		}
	})
	conn, err := grpc.NewClient("unix://"+w.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w.kms = kmsapi.NewKeyManagementServiceClient(conn)
	return w
}

// rotate makes a new active data key (the server's clock moves on past the
// rotation interval first).
func (w *world) rotate(t *testing.T) uint32 {
	t.Helper()
	w.s.Clock.Add(25 * time.Hour)
	k, err := w.op.GenerateKey(ctx, "k8s", "data")
	if err != nil {
		t.Fatal(err)
	}
	return k.Version
}

func (w *world) refresh(t *testing.T) {
	t.Helper()
	if err := w.plugin.Refresh(ctx); err != nil {
		t.Fatalf("Refresh() = %v", err)
	}
}

func (w *world) tenantID(t *testing.T) string {
	t.Helper()
	tn, err := w.op.Tenant(ctx, "k8s")
	if err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

func (w *world) status(t *testing.T) *kmsapi.StatusResponse {
	t.Helper()
	st, err := w.kms.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status() = %v", err)
	}
	return st
}

func uid() string { return rand.Text() }

func seed(t *testing.T) []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func (w *world) encrypt(t *testing.T, pt []byte) *kmsapi.EncryptResponse {
	t.Helper()
	res, err := w.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Uid: uid(), Plaintext: pt})
	if err != nil {
		t.Fatalf("Encrypt() = %v", err)
	}
	return res
}

func decryptReq(res *kmsapi.EncryptResponse) *kmsapi.DecryptRequest {
	return &kmsapi.DecryptRequest{Uid: uid(), Ciphertext: res.Ciphertext, KeyId: res.KeyId, Annotations: res.Annotations}
}

func (w *world) decrypt(t *testing.T, res *kmsapi.EncryptResponse, want []byte) {
	t.Helper()
	got, err := w.kms.Decrypt(ctx, decryptReq(res))
	if err != nil {
		t.Fatalf("Decrypt(%s) = %v", res.KeyId, err)
	}
	if !bytes.Equal(got.Plaintext, want) {
		t.Fatalf("Decrypt(%s) = %x, want %x", res.KeyId, got.Plaintext, want)
	}
}

// wantCode checks that err is a gRPC status of code whose message holds msg.
func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("%s = %v, want %v with %q", what, err, code, msg)
	}
	if strings.Contains(st.Message(), "k8splugin: ") {
		t.Errorf("%s: the message %q keeps a package prefix", what, st.Message())
	}
}

// TestStatusEncryptDecrypt: healthy Status with the active version's key id,
// and a round trip whose ciphertext is the server's format under the fixed
// context.
func TestStatusEncryptDecrypt(t *testing.T) {
	w := newWorld(t, k8splugin.Options{})
	st := w.status(t)
	if st.Healthz == k8splugin.Healthy || st.Version != "v2" || st.KeyId != "" {
		t.Errorf("Status() before the first delivery = %+v, want unhealthy, v2, no key id", st)
	}
	w.refresh(t)
	tid := w.tenantID(t)
	st = w.status(t)
	wantID := "strongroom:" + tid + ":data:1"
	if st.Healthz != "ok" || st.Version != "v2" || st.KeyId != wantID || k8splugin.KeyID(tid, "data", 1) != wantID {
		t.Fatalf("Status() = %+v, want ok, v2, %s", st, wantID)
	}
	if !regexp.MustCompile(`^strongroom:[0-9a-f]{32}:data:1$`).MatchString(st.KeyId) {
		t.Errorf("key id %q", st.KeyId)
	}

	pt := seed(t)
	res := w.encrypt(t, pt)
	if res.KeyId != wantID || len(res.Ciphertext) != 32+71 || len(res.Annotations) != 1 ||
		string(res.Annotations["format.kms.strongroom.dev"]) != "1" {
		t.Fatalf("Encrypt() = key id %q, %d bytes, annotations %q", res.KeyId, len(res.Ciphertext), res.Annotations)
	}
	if bytes.Contains(res.Ciphertext, pt) {
		t.Fatal("the ciphertext holds the plaintext")
	}
	w.decrypt(t, res, pt)
	again := w.encrypt(t, pt)
	if bytes.Equal(again.Ciphertext, res.Ciphertext) {
		t.Error("two encryptions of one plaintext are equal")
	}

	// The server's Decrypt opens it with the fixed context, and not without.
	dec, err := w.app.Decrypt(ctx, "k8s", api.DecryptItem{Ciphertext: res.Ciphertext, Context: map[string]string{"purpose": "k8s-kms-v2"}})
	if err != nil || dec[0].Error != nil || !bytes.Equal(dec[0].Plaintext, pt) || dec[0].Version != 1 {
		t.Errorf("server Decrypt(plugin ciphertext) = %+v, %v", dec, err)
	}
	dec, err = w.app.Decrypt(ctx, "k8s", api.DecryptItem{Ciphertext: res.Ciphertext})
	if err != nil || dec[0].Error == nil || dec[0].Error.Code != api.CodeDecrypt {
		t.Errorf("server Decrypt(plugin ciphertext, no context) = %+v, %v, want decryption_failed", dec, err)
	}
	// And the plugin opens what the server encrypted with that context.
	enc, err := w.app.Encrypt(ctx, "k8s", "data", api.EncryptItem{Plaintext: pt, Context: k8splugin.Context()})
	if err != nil || enc[0].Error != nil {
		t.Fatalf("server Encrypt() = %+v, %v", enc, err)
	}
	w.decrypt(t, &kmsapi.EncryptResponse{Ciphertext: enc[0].Ciphertext, KeyId: wantID, Annotations: res.Annotations}, pt)
	if got := w.plugin.Cached(); len(got) != 1 || got[0] != wantID {
		t.Errorf("Cached() = %q, want [%s]", got, wantID)
	}
}

// TestRotation: after a rotation, the periodic re-check makes Status and
// new Encrypts report the new version; old ciphertexts still decrypt, from
// the cache and, in a fresh plugin, by fetching their version.
func TestRotation(t *testing.T) {
	w := newWorld(t, k8splugin.Options{Refresh: 50 * time.Millisecond})
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { w.plugin.Run(rctx); close(ran) }()
	defer func() { stop(); <-ran }()
	tid := w.tenantID(t)
	v1, v2 := k8splugin.KeyID(tid, "data", 1), k8splugin.KeyID(tid, "data", 2)
	waitKeyID := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := w.status(t)
			if st.KeyId == want && st.Healthz == "ok" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Status() = %+v, want ok, %s", st, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitKeyID(v1)
	pt1 := seed(t)
	old := w.encrypt(t, pt1)
	if old.KeyId != v1 {
		t.Fatalf("Encrypt() key id = %s, want %s", old.KeyId, v1)
	}

	if v := w.rotate(t); v != 2 {
		t.Fatalf("rotated to version %d", v)
	}
	waitKeyID(v2) // the refresh loop noticed, with no call of ours
	pt2 := seed(t)
	cur := w.encrypt(t, pt2)
	if cur.KeyId != v2 || !bytes.Equal(cur.Ciphertext[len(cur.Ciphertext)-32-28-4:][:4], []byte{0, 0, 0, 2}) {
		t.Fatalf("Encrypt() after rotation: key id %s, want %s under version 2", cur.KeyId, v2)
	}
	w.decrypt(t, old, pt1)
	w.decrypt(t, cur, pt2)
	if !strings.Contains(w.log.String(), "the active key changed") || !strings.Contains(w.log.String(), "to="+v2) {
		t.Errorf("no rotation in the log:\n%s", w.log)
	}

	// A plugin that never saw version 1 fetches it to decrypt.
	fresh, err := k8splugin.New(k8splugin.Options{Source: w.app, Tenant: "k8s"})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	got, err := fresh.Decrypt(ctx, uid(), kmsservice{old}.req())
	if err != nil || !bytes.Equal(got, pt1) {
		t.Errorf("fresh plugin Decrypt(version 1) = %x, %v, want %x", got, err, pt1)
	}
	if c := fresh.Cached(); len(c) != 1 || c[0] != v1 {
		t.Errorf("fresh plugin Cached() = %q, want [%s]", c, v1)
	}

	// The log never holds key material.
	for _, v := range []uint32{1, 2} {
		d, err := w.app.DEK(ctx, "k8s", "data", v, 0)
		if err != nil {
			t.Fatal(err)
		}
		key := d.Bytes()
		d.Destroy()
		for _, f := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key), fmt.Sprint(key)} {
			if strings.Contains(w.log.String(), f) {
				t.Fatalf("the log holds version %d's DEK", v)
			}
		}
	}
}

// TestServerUnavailable: with the server gone, Status is unhealthy, cached
// DEKs serve Encrypt and Decrypt until the DEK max age after the server
// last confirmed them, and fail after it.
func TestServerUnavailable(t *testing.T) {
	const maxAge = 30 * time.Minute
	w := newWorld(t, k8splugin.Options{Refresh: time.Minute, DEKMaxAge: maxAge})
	w.refresh(t)
	pt := seed(t)
	res := w.encrypt(t, pt)
	keyID := w.status(t).KeyId
	w.clock.Add(10 * time.Minute)
	w.refresh(t) // the last confirmation: max age runs from here
	confirmed := w.clock.Now()

	w.ts.Close()
	w.clock.Add(time.Minute)
	if err := w.plugin.Refresh(ctx); err == nil {
		t.Fatal("Refresh() with the server gone = nil")
	}
	st := w.status(t)
	if st.Healthz == "ok" || !strings.Contains(st.Healthz, "cannot reach the key server") || st.KeyId != keyID || st.Version != "v2" {
		t.Fatalf("Status() with the server gone = %+v, want unhealthy with the reason, key id %s", st, keyID)
	}
	w.decrypt(t, res, pt)
	again := w.encrypt(t, pt)
	if again.KeyId != keyID {
		t.Errorf("Encrypt() with the server gone: key id %s, want %s", again.KeyId, keyID)
	}

	// Up to the max age, from the cache; just after it, not at all.
	w.clock.Add(confirmed.Add(maxAge).Sub(w.clock.Now()))
	w.decrypt(t, again, pt)
	w.clock.Add(time.Second)
	_, err := w.kms.Decrypt(ctx, decryptReq(res))
	wantCode(t, "Decrypt() past the max age", err, codes.Unavailable, "over the DEK max age (30m0s) ago")
	_, err = w.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Uid: uid(), Plaintext: pt})
	wantCode(t, "Encrypt() past the max age", err, codes.Unavailable, "the key server is unavailable")
	if err := w.plugin.Refresh(ctx); err == nil {
		t.Fatal("Refresh() = nil")
	}
	if c := w.plugin.Cached(); len(c) != 0 {
		t.Errorf("Cached() past the max age = %q, want none", c)
	}
	if st := w.status(t); st.Healthz == "ok" {
		t.Errorf("Status() = %+v, want unhealthy", st)
	}
}

// TestUnavailableCold: a version never cached cannot be decrypted without
// the server.
func TestUnavailableCold(t *testing.T) {
	w := newWorld(t, k8splugin.Options{})
	w.refresh(t)
	res := w.encrypt(t, seed(t))
	w.ts.Close()
	cold, err := k8splugin.New(k8splugin.Options{Source: w.app, Tenant: "k8s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	_, err = cold.Decrypt(ctx, uid(), kmsservice{res}.req())
	if err == nil || status.Code(err) != codes.Unavailable {
		t.Errorf("cold Decrypt() with the server gone = %v, want Unavailable", err)
	}
	st, _ := cold.Status(ctx)
	if st.Healthz == "ok" || st.KeyID != "" {
		t.Errorf("cold Status() = %+v", st)
	}
}

// TestDestroyedEvicted: a destroyed version is evicted at the next refresh
// and its ciphertexts fail with the reason.
func TestDestroyedEvicted(t *testing.T) {
	w := newWorld(t, k8splugin.Options{})
	w.refresh(t)
	pt := seed(t)
	old := w.encrypt(t, pt)
	w.rotate(t)
	w.refresh(t)
	w.decrypt(t, old, pt) // version 1 is cached
	tid := w.tenantID(t)
	if c := w.plugin.Cached(); len(c) != 2 {
		t.Fatalf("Cached() = %q, want versions 1 and 2", c)
	}
	if _, err := w.op.DestroyKey(ctx, "k8s", "data", 1, "k8s/data/1"); err != nil {
		t.Fatal(err)
	}
	w.decrypt(t, old, pt) // still cached until the refresh
	w.refresh(t)
	if c := w.plugin.Cached(); len(c) != 1 || c[0] != k8splugin.KeyID(tid, "data", 2) {
		t.Errorf("Cached() after destroy and refresh = %q, want version 2 only", c)
	}
	_, err := w.kms.Decrypt(ctx, decryptReq(old))
	wantCode(t, "Decrypt(destroyed)", err, codes.FailedPrecondition, "key data version 1 of tenant k8s was destroyed")
	if st := w.status(t); st.Healthz != "ok" {
		t.Errorf("Status() = %+v, want ok (the active key is fine)", st)
	}
	if !strings.Contains(w.log.String(), "DEK evicted") || !strings.Contains(w.log.String(), "key_destroyed") {
		t.Errorf("no eviction in the log:\n%s", w.log)
	}
}

// TestRejects: altered ciphertexts, bad uids, annotations, key ids and
// sizes are refused.
func TestRejects(t *testing.T) {
	w := newWorld(t, k8splugin.Options{})
	w.refresh(t)
	pt := seed(t)
	res := w.encrypt(t, pt)
	mod := func(f func(r *kmsapi.DecryptRequest)) *kmsapi.DecryptRequest {
		r := decryptReq(res)
		r.Ciphertext = bytes.Clone(r.Ciphertext)
		r.Annotations = map[string][]byte{"format.kms.strongroom.dev": []byte("1")}
		f(r)
		return r
	}
	otherCtx, err := w.app.Encrypt(ctx, "k8s", "data", api.EncryptItem{Plaintext: pt})
	if err != nil || otherCtx[0].Error != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		req  *kmsapi.DecryptRequest
		code codes.Code
		msg  string
	}{
		{"altered tag", mod(func(r *kmsapi.DecryptRequest) { r.Ciphertext[len(r.Ciphertext)-1] ^= 1 }), codes.InvalidArgument, "decryption failed"},
		{"altered body", mod(func(r *kmsapi.DecryptRequest) { r.Ciphertext[60] ^= 0x80 }), codes.InvalidArgument, "decryption failed"},
		{"truncated", mod(func(r *kmsapi.DecryptRequest) { r.Ciphertext = r.Ciphertext[:50] }), codes.InvalidArgument, "not a Strongroom ciphertext"},
		{"empty", mod(func(r *kmsapi.DecryptRequest) { r.Ciphertext = nil }), codes.InvalidArgument, "not a Strongroom ciphertext"},
		{"relabelled version", mod(func(r *kmsapi.DecryptRequest) { r.Ciphertext[42] = 2 }), codes.InvalidArgument, "is not the ciphertext's"},
		{"another context", mod(func(r *kmsapi.DecryptRequest) { r.Ciphertext = otherCtx[0].Ciphertext }), codes.InvalidArgument, "not made by this plugin"},
		{"too long", mod(func(r *kmsapi.DecryptRequest) { r.Ciphertext = make([]byte, 1025) }), codes.InvalidArgument, "at most 1024"},
		{"no uid", mod(func(r *kmsapi.DecryptRequest) { r.Uid = "" }), codes.InvalidArgument, "uid must be 1 to 128 bytes"},
		{"long uid", mod(func(r *kmsapi.DecryptRequest) { r.Uid = strings.Repeat("u", 129) }), codes.InvalidArgument, "uid must be 1 to 128 bytes"},
		{"uid with a space", mod(func(r *kmsapi.DecryptRequest) { r.Uid = "a b" }), codes.InvalidArgument, "not printable ASCII"},
		{"no key id", mod(func(r *kmsapi.DecryptRequest) { r.KeyId = "" }), codes.InvalidArgument, "key id must be 1 to 1024 bytes"},
		{"another key id", mod(func(r *kmsapi.DecryptRequest) { r.KeyId = strings.Replace(r.KeyId, ":1", ":2", 1) }), codes.InvalidArgument, "is not the ciphertext's"},
		{"long key id", mod(func(r *kmsapi.DecryptRequest) { r.KeyId = strings.Repeat("k", 1025) }), codes.InvalidArgument, "key id must be 1 to 1024 bytes"},
		{"no annotations", mod(func(r *kmsapi.DecryptRequest) { r.Annotations = nil }), codes.InvalidArgument, "annotation format.kms.strongroom.dev is missing"},
		{"another format", mod(func(r *kmsapi.DecryptRequest) { r.Annotations["format.kms.strongroom.dev"] = []byte("2") }), codes.InvalidArgument, "reads format 1 only"},
		{"extra annotation", mod(func(r *kmsapi.DecryptRequest) { r.Annotations["x.example.com"] = []byte("y") }), codes.InvalidArgument, `unknown annotations ["x.example.com"]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.kms.Decrypt(ctx, tt.req)
			wantCode(t, "Decrypt("+tt.name+")", err, tt.code, tt.msg)
			if got != nil {
				t.Errorf("Decrypt(%s) plaintext %x", tt.name, got.Plaintext)
			}
		})
	}
	w.decrypt(t, res, pt) // the original still opens

	// A ciphertext of another tenant, under the same key id scheme.
	w.s.Tenant(t, "other")
	if _, err := w.op.GenerateKey(ctx, "other", "data"); err != nil {
		t.Fatal(err)
	}
	otherApp, err := client.New(w.ts.URL, w.s.Token(t, api.RoleApp, "other"), client.WithRootCAs(pool(w.ts)))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := otherApp.Encrypt(ctx, "other", "data", api.EncryptItem{Plaintext: pt, Context: k8splugin.Context()})
	if err != nil || foreign[0].Error != nil {
		t.Fatal(err)
	}
	otn, _ := w.op.Tenant(ctx, "other")
	_, err = w.kms.Decrypt(ctx, &kmsapi.DecryptRequest{Uid: uid(), Ciphertext: foreign[0].Ciphertext,
		KeyId: k8splugin.KeyID(otn.ID, "data", 1), Annotations: res.Annotations})
	wantCode(t, "Decrypt(another tenant's)", err, codes.InvalidArgument, "not of tenant k8s")

	// Encrypt: sizes and uid.
	max := 1024 - 71
	big := w.encrypt(t, bytes.Repeat([]byte{7}, max))
	if len(big.Ciphertext) != 1024 {
		t.Errorf("Encrypt(%d bytes) = %d bytes, want 1024", max, len(big.Ciphertext))
	}
	for _, tt := range []struct {
		name, uid string
		pt        []byte
		msg       string
	}{
		{"one byte too many", uid(), make([]byte, max+1), "at most 953 bytes"},
		{"over 1 KiB", uid(), make([]byte, 4096), "does not fit a ciphertext of at most 1024 bytes"},
		{"empty", uid(), nil, "the plaintext is empty"},
		{"no uid", "", pt, "uid must be"},
	} {
		_, err := w.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Uid: tt.uid, Plaintext: tt.pt})
		wantCode(t, "Encrypt("+tt.name+")", err, codes.InvalidArgument, tt.msg)
	}
	if st := w.status(t); st.Healthz != "ok" {
		t.Errorf("Status() after refused requests = %+v, want ok", st)
	}
}

// TestCacheBounds: at most MaxDEKs entries, the least recently used
// archived one evicted first; entries unused for the max age are dropped.
func TestCacheBounds(t *testing.T) {
	w := newWorld(t, k8splugin.Options{MaxDEKs: 2, DEKMaxAge: time.Hour})
	w.refresh(t)
	tid := w.tenantID(t)
	var cts []*kmsapi.EncryptResponse
	var pts [][]byte
	for v := 1; v <= 3; v++ {
		if v > 1 {
			w.rotate(t)
			w.refresh(t)
		}
		pts = append(pts, seed(t))
		cts = append(cts, w.encrypt(t, pts[v-1]))
	}
	if c := w.plugin.Cached(); len(c) > 2 {
		t.Fatalf("Cached() = %q, over MaxDEKs 2", c)
	}
	for i := range 3 {
		w.decrypt(t, cts[i], pts[i])
		if c := w.plugin.Cached(); len(c) > 2 || !contains(c, k8splugin.KeyID(tid, "data", 3)) {
			t.Fatalf("Cached() = %q, want at most 2, with the active version 3", c)
		}
	}
	if c := w.plugin.Cached(); !contains(c, k8splugin.KeyID(tid, "data", 3)) || !contains(c, k8splugin.KeyID(tid, "data", 2)) {
		t.Errorf("Cached() = %q, want versions 2 and 3", c)
	}
	// Unused for over the max age: dropped; the active one stays.
	w.clock.Add(time.Hour + time.Second)
	w.refresh(t)
	if c := w.plugin.Cached(); len(c) != 1 || c[0] != k8splugin.KeyID(tid, "data", 3) {
		t.Errorf("Cached() after an idle hour = %q, want version 3 only", c)
	}
	w.decrypt(t, cts[0], pts[0]) // fetched again
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func pool(ts *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ts.Certificate())
	return p
}

// kmsservice turns an API response into the service's request type.
type kmsservice struct{ r *kmsapi.EncryptResponse }

func (k kmsservice) req() *service.DecryptRequest {
	return &service.DecryptRequest{Ciphertext: k.r.Ciphertext, KeyID: k.r.KeyId, Annotations: k.r.Annotations}
}

// TestConcurrent: calls in parallel with the refresh loop, a rotation and
// evictions (a cache of 2 over 3 versions) all succeed.
func TestConcurrent(t *testing.T) {
	w := newWorld(t, k8splugin.Options{Refresh: 5 * time.Millisecond, MaxDEKs: 2})
	w.refresh(t)
	var old []*kmsapi.EncryptResponse
	var olds [][]byte
	for range 2 {
		pt := seed(t)
		old, olds = append(old, w.encrypt(t, pt)), append(olds, pt)
		w.rotate(t)
		w.refresh(t)
	}
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { w.plugin.Run(rctx); close(ran) }()
	defer func() { stop(); <-ran }()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 6 {
		wg.Go(func() {
			for i := range 30 {
				pt := seed(t)
				res, err := w.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Uid: uid(), Plaintext: pt})
				if err != nil {
					errs <- err
					return
				}
				for _, c := range []struct {
					res *kmsapi.EncryptResponse
					pt  []byte
				}{{res, pt}, {old[(g+i)%2], olds[(g+i)%2]}} {
					got, err := w.kms.Decrypt(ctx, decryptReq(c.res))
					if err != nil || !bytes.Equal(got.Plaintext, c.pt) {
						errs <- fmt.Errorf("Decrypt(%s) = %v", c.res.KeyId, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := w.plugin.Cached(); len(c) > 2 {
		t.Errorf("Cached() = %q, over 2", c)
	}
}

// TestTokenRevoked: when the server refuses the plugin's token, every
// cached DEK is evicted at the next refresh, the active one too, and
// Status says why.
func TestTokenRevoked(t *testing.T) {
	w := newWorld(t, k8splugin.Options{})
	w.refresh(t)
	pt := seed(t)
	res := w.encrypt(t, pt)
	w.rotate(t)
	w.refresh(t)
	w.decrypt(t, res, pt)
	if c := w.plugin.Cached(); len(c) != 2 {
		t.Fatalf("Cached() = %q, want 2", c)
	}
	if _, err := w.app.RevokeSelf(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.plugin.Refresh(ctx); err == nil {
		t.Fatal("Refresh() with a revoked token = nil")
	}
	if c := w.plugin.Cached(); len(c) != 0 {
		t.Errorf("Cached() with a revoked token = %q, want none", c)
	}
	if st := w.status(t); !strings.Contains(st.Healthz, "unhealthy: the key server refused") || !strings.Contains(st.Healthz, "token_revoked") {
		t.Errorf("Status() = %+v, want unhealthy: refused, token_revoked", st)
	}
	_, err := w.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Uid: uid(), Plaintext: pt})
	wantCode(t, "Encrypt() with a revoked token", err, codes.FailedPrecondition, "token_revoked")
	_, err = w.kms.Decrypt(ctx, decryptReq(res))
	wantCode(t, "Decrypt() with a revoked token", err, codes.FailedPrecondition, "token_revoked")
}
