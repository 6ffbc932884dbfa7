package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

// This file runs real server processes: the test binary copied to a file
// named strongroom, which TestMain dispatches to the command line (as
// testscript does for scripts). The tests that use it need a server that
// can be killed (SIGKILL) and restarted, or several servers at once.

var (
	binOnce sync.Once
	binPath string
	binErr  error

	regionOnce sync.Once
	regionDir  string
	regionErr  error
)

// strongroomBin returns the path of a copy of the test binary named
// strongroom, made once per package.
func strongroomBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		var self string
		if self, binErr = os.Executable(); binErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "strongroom-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "strongroom")
		binErr = copyFile(self, binPath, 0o755)
	})
	if binErr != nil {
		t.Fatalf("copying the test binary: %v", binErr)
	}
	return binPath
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sharedDevRegion returns a region set up by 'strongroom dev' (HSMs, enrollment,
// the dev-1 ceremony, TLS), made once per package: the RSA-4096 keys take
// seconds. Its release has the fewest PBKDF2 iterations a plan allows, as
// restarted servers derive every DEK again. Tests copy it (copyRegion) before they start servers on it.
func sharedDevRegion(t *testing.T) string {
	t.Helper()
	regionOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strongroom-region")
		if err != nil {
			regionErr = err
			return
		}
		regionDir = filepath.Join(dir, "dev")
		e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }, now: time.Now}
		regionErr = setupDev(context.Background(), e, regionDir, plan.MinIterations)
	})
	if regionErr != nil {
		t.Fatalf("setting up the dev region: %v", regionErr)
	}
	return regionDir
}

// copyDevDir copies the shared dev region whole, database and operator
// token included, into a fresh directory named dev, and returns it: the
// directory setupDev(…, plan.MinIterations) makes, without making the
// RSA-4096 keys again. Its configuration and dsn name the copy.
func copyDevDir(t *testing.T) string {
	t.Helper()
	src := sharedDevRegion(t)
	dir := filepath.Join(t.TempDir(), "dev")
	copyTree(t, src, dir)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch rel, _ := filepath.Rel(dir, p); {
		case rel == "strongroom.yaml" || rel == "dsn":
			return os.WriteFile(p, bytes.ReplaceAll(b, []byte(src), []byte(dir)), 0o600)
		case bytes.Contains(b, []byte(src)):
			return fmt.Errorf("the dev region's %s names its directory: rewrite it in copyDevDir", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyTree copies the directory src to dir, with the files' modes (the
// server refuses a readable TLS key).
func copyTree(t *testing.T, src, dir string) {
	t.Helper()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	// CopyFS does not keep modes.
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return os.Chmod(filepath.Join(dir, rel), info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// region is a copy of the dev region for one test, with its own store.
type region struct {
	// extra is appended to every node's configuration (YAML).
	extra  string
	dir    string
	dsn    string // the store
	bundle string // the dev-1 bundle file
	ca     string
}

// copyRegion copies the dev region into a fresh directory (the soft HSM
// files are written by upload-certificate generation, so tests never share
// them) and points its store at dsn ("" = a fresh SQLite file).
func copyRegion(t *testing.T, dsn string) *region {
	t.Helper()
	src := sharedDevRegion(t)
	dir := filepath.Join(t.TempDir(), "region")
	copyTree(t, src, dir)
	// The copy's own paths, and a fresh database.
	for _, name := range []string{"strongroom.yaml"} {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte(src), []byte(dir)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(dir, "kms.db"))
	os.Remove(filepath.Join(dir, "operator.token"))
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(dir, "kms.db")
	}
	if err := os.WriteFile(filepath.Join(dir, "dsn"), []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &region{dir: dir, dsn: dsn, ca: filepath.Join(dir, "ca.pem"),
		bundle: filepath.Join(dir, "ceremony", release.FileName(devRelease, devRegion))}
}

// config writes a configuration for a node listening on addr, and returns
// its path.
func (r *region) config(t *testing.T, name, addr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "strongroom.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "listen: 127.0.0.1:8443", "listen: "+addr, 1)
	if text == string(b) {
		t.Fatal("the dev configuration has no listen line to replace")
	}
	p := filepath.Join(r.dir, name+".yaml")
	if err := os.WriteFile(p, []byte(text+r.extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// initStore creates the schema and the first operator token, and returns
// the token.
func (r *region) initStore(t *testing.T) string {
	t.Helper()
	tokFile := filepath.Join(r.dir, "init-operator.token")
	cmd := exec.Command(strongroomBin(t), "server", "--config", r.config(t, "init", "127.0.0.1:0"), "--init", tokFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strongroom server --init: %v\n%s", err, out)
	}
	b, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// serverProcess is one server process.
type serverProcess struct {
	name, addr, config string
	cmd                *exec.Cmd
	log                *lockedBuffer
	done               chan struct{}
	starts             int           // how many times it started
	startTime          time.Duration // how long the starts took, in all
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNode starts a server process of the region and waits until it
// answers. It is killed when the test ends.
func (r *region) startNode(t *testing.T, name string) *serverProcess {
	t.Helper()
	addr := freeAddr(t)
	n := &serverProcess{name: name, addr: addr, config: r.config(t, name, addr), log: &lockedBuffer{}}
	n.start(t)
	return n
}

func (n *serverProcess) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(strongroomBin(t), "server", "--config", n.config)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.done = make(chan struct{})
	started := time.Now()
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(n.cmd, n.done)
	t.Cleanup(func() { n.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-n.done:
			t.Fatalf("node %s exited while starting:\n%s", n.name, n.log.Bytes())
		default:
		}
		c, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err == nil {
			c.Close()
			n.starts++
			n.startTime += time.Since(started)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not listen on %s within 60 s:\n%s", n.name, n.addr, n.log.Bytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills the process with SIGKILL (no shutdown of any kind) and waits
// for it.
func (n *serverProcess) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// client is an API client of the node with token.
func (n *serverProcess) client(t *testing.T, r *region, token string) *client.Client {
	t.Helper()
	c, err := client.New("https://"+n.addr, token, client.WithCAFile(r.ca), client.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// installRelease installs the dev-1 bundle through the node (idempotent
// across nodes sharing a store: each node loads it into its ring).
func (n *serverProcess) installRelease(t *testing.T, r *region, c *client.Client) {
	t.Helper()
	b, err := os.ReadFile(r.bundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.InstallRelease(context.Background(), b); err != nil {
		t.Fatalf("installing %s on node %s: %v\n%s", r.bundle, n.name, err, n.log.Bytes())
	}
}

func (n *serverProcess) String() string { return fmt.Sprintf("node %s (%s)", n.name, n.addr) }

// twoNodesWithTenant starts nodes a and b of one region on one PostgreSQL
// database, installs the region's release on both, and creates the tenant
// name (production). It returns the region, the nodes and an operator
// client of node a.
func twoNodesWithTenant(t *testing.T, name string) (r *region, a, b *serverProcess, opA *client.Client) {
	t.Helper()
	r = copyRegion(t, storetest.Postgres(t))
	op := r.initStore(t)
	a, b = r.startNode(t, "a"), r.startNode(t, "b")
	opA, opB := a.client(t, r, op), b.client(t, r, op)
	a.installRelease(t, r, opA)
	b.installRelease(t, r, opB)
	if _, err := opA.CreateTenant(context.Background(), name, "production"); err != nil {
		t.Fatal(err)
	}
	return r, a, b, opA
}
