package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/strongroom-kms/strongroom/internal/hsm/hsmtest"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

func TestMain(m *testing.M) {
	raceChildren()
	testscript.Main(cleanupM{m}, map[string]func(){
		"strongroom": func() {
			e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := run(ctx, e, os.Args[1:])
			stop()
			os.Exit(code)
		},
	})
}

// cleanupM runs the tests, then removes what the package made once for
// all of them (the binary's copy, the shared dev region, apitest's
// world), which no single test's cleanup may remove.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	apitest.Cleanup()
	if childRaces() {
		code = 1
	}
	for _, p := range []string{binPath, regionDir} {
		if p != "" {
			os.RemoveAll(filepath.Dir(p))
		}
	}
	return code
}

// raceLogDir receives the race detector's reports of the child processes
// (GORACE log_path), so that a race in a command that a script expects to
// fail (`! exec strongroom …`, whose exit status 66 would pass for the
// expected failure) still fails the package; "" if GORACE already chose a
// log_path.
var raceLogDir string

// childRaces prints the reports in raceLogDir, if any, and says whether
// there were any; it removes the directory.
func childRaces() bool {
	if raceLogDir == "" {
		return false
	}
	defer os.RemoveAll(raceLogDir)
	reports, _ := filepath.Glob(filepath.Join(raceLogDir, "report.*"))
	for _, r := range reports {
		b, _ := os.ReadFile(r)
		fmt.Fprintf(os.Stderr, "a strongroom command started by the tests reported a data race (%s):\n%s\n", filepath.Base(r), b)
	}
	return len(reports) > 0
}

// raceExitSleep is how long a child process built with the race detector
// (every strongroom a script or a test starts is a copy of this binary)
// sleeps when it exits, for goroutines still running to race and be
// reported. The race detector's default, 1 s (GORACE atexit_sleep_ms), is
// pure wall time spent by each of the scripts' several hundred commands
// one after another, minutes of the package's run with the cores idle; a
// race is reported when it happens, not at exit, so only the window after
// the command's own work shrinks. (testscript passes GORACE on to scripts
// for this very setting.)
const raceExitSleep = "atexit_sleep_ms=10"

// raceChildren sets GORACE for the child processes (this process read
// GORACE when it started; only children see the change): raceExitSleep,
// and a log_path in raceLogDir, each unless GORACE already chooses it.
func raceChildren() {
	g := os.Getenv("GORACE")
	if !strings.Contains(g, "atexit_sleep_ms") {
		g += " " + raceExitSleep
	}
	if !strings.Contains(g, "log_path") {
		if dir, err := os.MkdirTemp("", "strongroom-race"); err == nil && !strings.ContainsAny(dir, " \t") {
			raceLogDir = dir
			g += " log_path=" + filepath.Join(dir, "report")
		}
	}
	os.Setenv("GORACE", strings.TrimSpace(g))
}

// TestScripts runs the command-line transcripts in testdata/script, but
// scriptsAtOnce. Scripts whose name starts with pkcs11_ run against fresh
// SoftHSM2 tokens (created by hsmtest.SoftHSMToken, which skips loudly
// without SoftHSM2 and fails in CI).
func TestScripts(t *testing.T) {
	t.Parallel() // its scripts run in parallel with the other long tests
	files, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata/script: %v", err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return slices.Contains(scriptsAtOnce, filepath.Base(f)) })
	testscript.Run(t, scriptParams(t, files))
}

// scriptsAtOnce are the scripts of testdata/script that mostly wait:
// cacheonly_e2e waits out a revoked key's one-minute recheck. Among the
// scripts they would wait for a -parallel slot behind every test already
// waiting, start last and end the package's run alone; TestScriptsAtOnce
// runs them as soon as it starts.
var scriptsAtOnce = []string{"cacheonly_e2e.txtar"}

// TestScriptsAtOnce runs scriptsAtOnce as TestScripts would, one after
// another, each as soon as the one before ends.
func TestScriptsAtOnce(t *testing.T) {
	t.Parallel()
	var files []string
	for _, f := range scriptsAtOnce {
		files = append(files, filepath.Join("testdata/script", f))
	}
	p := scriptParams(t, files)
	if deadline, ok := t.Deadline(); ok {
		p.Deadline = deadline
	}
	testscript.RunT(atOnceT{t}, p)
}

// atOnceT runs testscript's scripts as subtests that do not call
// t.Parallel.
type atOnceT struct{ *testing.T }

func (atOnceT) Parallel()     {}
func (atOnceT) Verbose() bool { return testing.Verbose() }
func (t atOnceT) Run(name string, f func(testscript.T)) {
	t.T.Run(name, func(t *testing.T) { f(atOnceT{t}) })
}

// scriptParams are the parameters of the scripts of testdata/script.
func scriptParams(t *testing.T, files []string) testscript.Params {
	// byok.txtar signs a tenant's CA certificate with openssl and the
	// keyservice scripts fetch with curl; they skip without them, and in CI
	// nothing may skip.
	for _, tool := range []string{"openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil && os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (scripts/test.sh installs it; the byok and keyservice scripts use it): %v", tool, err)
		}
	}
	useDevTemplate(t)
	return testscript.Params{
		Files: files,
		Setup: func(e *testscript.Env) error {
			e.Setenv("STRONGROOM_HSM_PASSPHRASE", "script passphrase")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"corrupt":  cmdCorrupt,
			"tlscert":  cmdTLSCert,
			"freeport": cmdFreePort, "waitfor": cmdWaitFor, "fakebundle": cmdFakeBundle,
			"devenv": cmdDevEnv, "devcopy": cmdDevCopy, "setenv-file": cmdSetenvFile, "waitgone": cmdWaitGone, "sleep": cmdSleep,
			"sha256": cmdSHA256, "opendata": cmdOpenData, "kms": cmdKMS, "sqlite": cmdSQLite,
		},
	}
}

// TestPKCS11Scripts runs testdata/pkcs11 with two SoftHSM2 tokens, exported
// to the scripts as $PRIMARY and $EU1.
func TestPKCS11Scripts(t *testing.T) {
	t.Parallel()
	primary := hsmtest.SoftHSMToken(t, "primary")
	eu1 := hsmtest.SoftHSMToken(t, "eu1")
	testscript.Run(t, testscript.Params{
		Dir: "testdata/pkcs11",
		Setup: func(e *testscript.Env) error {
			e.Setenv("PRIMARY", primary)
			e.Setenv("EU1", eu1)
			e.Setenv("MODULE", os.Getenv(hsmtest.ModuleEnv))
			e.Setenv("SOFTHSM2_CONF", os.Getenv("SOFTHSM2_CONF"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"corrupt":      cmdCorrupt,
			"list-objects": cmdListObjects,
		},
	})
}

// corrupt FILE OFFSET flips the low bit of one byte of a file's PEM body
// (OFFSET counts base64 characters after the header line).
func cmdCorrupt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: corrupt FILE OFFSET")
	}
	path := ts.MkAbs(args[0])
	data, err := os.ReadFile(path)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	i := strings.IndexByte(string(data), '\n') + 1 + off
	if i >= len(data) {
		ts.Fatalf("offset %d beyond the file", off)
	}
	// Swap to another base64 letter so the PEM still decodes.
	if data[i] == 'A' {
		data[i] = 'B'
	} else {
		data[i] = 'A'
	}
	ts.Check(os.WriteFile(path, data, 0o644))
}

// list-objects URI runs 'pkcs11-tool --list-objects --login' on the token the
// URI names, printing its output to stdout.
func cmdListObjects(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: list-objects PKCS11-URI")
	}
	rest := strings.TrimPrefix(args[0], "pkcs11:")
	path, query, _ := strings.Cut(rest, "?")
	attrs, err := url.ParseQuery(strings.ReplaceAll(path, ";", "&"))
	ts.Check(err)
	q, err := url.ParseQuery(query)
	ts.Check(err)
	pin, err := os.ReadFile(strings.TrimPrefix(q.Get("pin-source"), "file:"))
	ts.Check(err)
	cmd := exec.Command("pkcs11-tool", "--module", q.Get("module-path"), "--token-label", attrs.Get("token"),
		"--login", "--pin", strings.TrimSpace(string(pin)), "--list-objects")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+ts.Getenv("SOFTHSM2_CONF"))
	out, err := cmd.CombinedOutput()
	fmt.Fprint(ts.Stdout(), string(out))
	if (err != nil) != neg {
		ts.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
}

// sqlite [-out FILE] DB SQL [ARG...] runs one statement on a SQLite file
// (the user's own database of `strongroom sync`), ARGs bound as $1…$n (an
// ARG @FILE binds the file's bytes, a blob). A query's rows go to stdout,
// tab-separated; with -out, the first column of the first row is written
// to FILE as it is.
func cmdSQLite(ts *testscript.TestScript, neg bool, args []string) {
	out := ""
	if len(args) > 1 && args[0] == "-out" {
		out, args = args[1], args[2:]
	}
	if neg || len(args) < 2 {
		ts.Fatalf("usage: sqlite [-out FILE] DB SQL [ARG...]")
	}
	db, err := sql.Open("sqlite", ts.MkAbs(args[0]))
	ts.Check(err)
	defer db.Close()
	var params []any
	for _, a := range args[2:] {
		if f, ok := strings.CutPrefix(a, "@"); ok {
			b, err := os.ReadFile(ts.MkAbs(f))
			ts.Check(err)
			params = append(params, b)
			continue
		}
		params = append(params, a)
	}
	rows, err := db.Query(args[1], params...)
	ts.Check(err)
	defer rows.Close()
	cols, err := rows.Columns()
	ts.Check(err)
	first := true
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		ts.Check(rows.Scan(ptrs...))
		if out != "" && first {
			b, ok := vals[0].([]byte)
			if !ok {
				b = []byte(fmt.Sprint(vals[0]))
			}
			ts.Check(os.WriteFile(ts.MkAbs(out), b, 0o644))
		}
		first = false
		line := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = fmt.Sprintf("(%d bytes)", len(b))
			}
			line[i] = fmt.Sprint(v)
		}
		fmt.Fprintln(ts.Stdout(), strings.Join(line, "\t"))
	}
	ts.Check(rows.Err())
	if out != "" && first {
		ts.Fatalf("sqlite -out: the query returned no row")
	}
}
