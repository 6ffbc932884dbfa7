package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// devenv FILE waits (up to three minutes: the first 'strongroom dev' makes
// RSA-4096 keys) until FILE, the env file 'strongroom dev' writes, exists,
// then sets every variable its 'export K=V' lines name.
func cmdDevEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: devenv FILE")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(3 * time.Minute)
	var data []byte
	for {
		var err error
		if data, err = os.ReadFile(path); err == nil && bytes.Count(data, []byte("\n")) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			ts.Setenv(k, v)
		}
	}
}

// setenv-file VAR FILE sets $VAR to FILE's content without surrounding
// space (as a shell's VAR=$(cat FILE) would).
func cmdSetenvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setenv-file VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// waitgone ADDR waits up to 30 seconds until nothing listens at ADDR (TCP)
// any more.
func cmdWaitGone(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitgone ADDR")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			ts.Fatalf("something still listens at %s after 30s", args[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sleep DURATION waits that long (a Go duration, e.g. 10s).
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}
