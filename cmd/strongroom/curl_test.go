package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCurlExamples runs docs/curl.md's examples, as written, with bash
// against a dev server, so that they stay true. Each line must succeed
// (bash -e, pipefail), and what the page says they print, they print.
func TestCurlExamples(t *testing.T) {
	t.Parallel() // a dev server of its own, on a port of its own
	for _, tool := range []string{"bash", "curl", "jq", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI (scripts/test.sh installs it): %v", tool, err)
			}
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	doc, err := os.ReadFile("../../docs/curl.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- curl-examples:begin -->\n```sh\n")
	block, _, ok2 := strings.Cut(block, "```\n<!-- curl-examples:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/curl.md has no curl-examples block")
	}

	// A dev directory after its first start (the template the scripts'
	// devcopy copies): the examples are about the API, not the set-up.
	home := t.TempDir()
	useDevTemplate(t)
	devDir := filepath.Join(home, ".strongroom", "dev")
	if err := os.Mkdir(filepath.Dir(devDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := copyDevTemplate(devDir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var log lockedBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &log, stderr: &log, now: time.Now,
		getenv: func(k string) string {
			if k == "HOME" {
				return home
			}
			return ""
		}}
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- runDev(ctx, e, devOptions{dir: devDir, listen: addr}, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("dev did not start: %v\n%s", err, log.Bytes())
	case <-time.After(3 * time.Minute):
		t.Fatal("dev did not start in 3 minutes")
	}

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", block)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docs/curl.md's examples failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"status":"ok"`, "data/1 active", "card 4111 1111 1111 1111", "decryption_failed", "token.create",
		"strongroom_ready 1", `strongroom_http_requests_total{class="2xx",code="ok",route="POST /v1/tenants/{tenant}/decrypt"} 2`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the examples' output lacks %q:\n%s", want, out)
		}
	}
}
