package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// TestReadinessNamesBadBundle: a node whose database holds a corrupted
// bundle starts, serves health, and stays not ready: the public readiness
// answer counts the problem without naming it, and GET /v1/status names
// the bundle to an operator; the good release is still served.
func TestReadinessNamesBadBundle(t *testing.T) {
	t.Parallel() // a dev directory and server of its own
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := copyDevDir(t) // what setupDev(ctx, e, dir, plan.MinIterations) makes
	var out bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }, now: time.Now}
	cfg, err := config.Load(filepath.Join(dir, "strongroom.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rels, err := st.Releases(ctx)
	if err != nil || len(rels) != 1 {
		t.Fatalf("Releases() = %v, %v", rels, err)
	}
	block, _ := pem.Decode(rels[0].Bundle)
	block.Bytes[len(block.Bytes)-20] ^= 0x01 // inside the signature
	if _, err := st.InstallRelease(ctx, release.Installation{ID: "dev-9", Bundle: pem.EncodeToMemory(block), Installed: time.Now()},
		cliEntry(time.Now(), audit.ActionReleaseInstall, "a bad bundle, by the test")); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg.Listen = "127.0.0.1:0"
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- runServer(ctx, e, cfg, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("runServer() error = %v", err)
	}
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	token, err := os.ReadFile(filepath.Join(dir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, token string, v any) (int, string) {
		req, err := http.NewRequestWithContext(ctx, "GET", "https://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		json.Unmarshal(body, v)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/v1/health", "", &api.Health{}); code != http.StatusOK {
		t.Errorf("GET /v1/health = %d, want 200", code)
	}
	var rd api.Ready
	code, body := get("/v1/ready", "", &rd)
	if code != http.StatusServiceUnavailable || rd.Problems != 1 || rd.Releases != 1 || strings.Contains(body, "dev-9") {
		t.Errorf("GET /v1/ready = %d %s, want 503 counting one problem and one release, naming nothing", code, body)
	}
	var status api.Status
	code, body = get("/v1/status", strings.TrimSpace(string(token)), &status)
	if code != http.StatusOK || status.Status != "not_ready" || !strings.Contains(strings.Join(status.Problems, " "), "dev-9") {
		t.Errorf("GET /v1/status = %d %s, want not_ready naming dev-9", code, body)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("runServer() after shutdown = %v", err)
	}
}
