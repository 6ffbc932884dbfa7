package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// devTemplate is a 'strongroom dev' directory made once per test binary
// (while the tests that use it run), by the first script or test that
// asks for one (devcopy, copyDevTemplate): a first start makes
// RSA-4096 keys and runs the dev ceremony, which takes seconds, and much
// longer under -race; a start over an existing directory does neither.
var devTemplate struct {
	mu    sync.Mutex // guards once and users
	once  *sync.Once
	users int    // tests using it (useDevTemplate)
	base  string // holds dir
	dir   string
	err   error
	log   bytes.Buffer
}

// devTemplateFiles are the files of a dev directory that name it (by its
// absolute path), rewritten in each copy.
var devTemplateFiles = map[string]bool{"strongroom.yaml": true, "dsn": true}

// devcopy DIR makes DIR a copy of the template dev directory, its paths
// rewritten, so that the script's 'strongroom dev --dir DIR' starts as a
// second start does (its env file is not copied: dev writes it when it
// serves). Scripts about the first start (dev_mode, dev_tour) do not use
// it.
func cmdDevCopy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: devcopy DIR")
	}
	ts.Check(copyDevTemplate(ts.MkAbs(args[0])))
}

// copyDevTemplate makes dst (which must not exist, its parent must) a copy
// of the template dev directory, as devcopy does. The caller's test must
// have called useDevTemplate.
func copyDevTemplate(dst string) error {
	devTemplate.mu.Lock()
	once := devTemplate.once
	devTemplate.mu.Unlock()
	once.Do(makeDevTemplate)
	if devTemplate.err != nil {
		return fmt.Errorf("making the template dev directory: %v\n%s", devTemplate.err, devTemplate.log.String())
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(devTemplate.dir)
	if err != nil {
		return err
	}
	for _, de := range entries {
		name := de.Name()
		if !de.Type().IsRegular() || name == "env" || strings.HasSuffix(name, ".lock") || strings.HasSuffix(name, "-shm") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(devTemplate.dir, name))
		if err != nil {
			return err
		}
		if devTemplateFiles[name] {
			data = bytes.ReplaceAll(data, []byte(devTemplate.dir), []byte(dst))
		} else if bytes.Contains(data, []byte(devTemplate.dir)) {
			return fmt.Errorf("the template's %s names its directory: add it to devTemplateFiles", name)
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// makeDevTemplate runs 'strongroom dev' in this process until it serves,
// then stops it, leaving its directory as the template.
func makeDevTemplate() {
	t := &devTemplate
	if t.base, t.err = os.MkdirTemp("", "strongroom-dev-template-"); t.err != nil {
		return
	}
	t.dir = filepath.Join(t.base, "dev") // dev makes it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.err = err
		return
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The environment every script has (TestScripts' Setup), and nothing
	// of this process's.
	getenv := func(k string) string {
		if k == "STRONGROOM_HSM_PASSPHRASE" {
			return "script passphrase"
		}
		return ""
	}
	var mu sync.Mutex
	out := lockedWriter{mu: &mu, w: &t.log}
	e := &env{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: getenv, now: time.Now}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"dev", "--dir", t.dir, "--listen", addr}) }()
	deadline := time.After(3 * time.Minute)
	for {
		if data, err := os.ReadFile(filepath.Join(t.dir, "env")); err == nil && bytes.Count(data, []byte("\n")) >= 3 {
			break
		}
		select {
		case code := <-done:
			t.err = fmt.Errorf("strongroom dev exited with %d before serving", code)
			return
		case <-deadline:
			t.err = fmt.Errorf("strongroom dev did not serve within 3 minutes")
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.err = fmt.Errorf("strongroom dev stopped with %d", code)
	}
}

// useDevTemplate lets t's scripts use the template; when the last test
// using it ends, it is removed (and made again if another test asks).
func useDevTemplate(t *testing.T) {
	d := &devTemplate
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.once == nil {
		d.once = new(sync.Once)
	}
	d.users++
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.users--; d.users > 0 {
			return
		}
		if d.base != "" {
			os.RemoveAll(d.base)
		}
		d.once, d.base, d.dir, d.err = nil, "", "", nil
		d.log.Reset()
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
