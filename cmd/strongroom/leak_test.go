package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to read the database raw

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// lockedBuffer is a bytes.Buffer safe for the server's goroutines to write
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// leakSecret is one piece of secret material and where it may legitimately
// appear (allowed: base names of files in the dev directory).
type leakSecret struct {
	name    string
	raw     []byte
	allowed map[string]bool
}

// shortHash names a secret in failure messages without revealing it.
func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:4])
}

// leakForms are the encodings a secret is searched for in.
func leakForms(raw []byte) map[string][]byte {
	h := hex.EncodeToString(raw)
	return map[string][]byte{
		"raw bytes":      raw,
		"hex":            []byte(h),
		"HEX":            []byte(strings.ToUpper(h)),
		"base64":         []byte(base64.StdEncoding.EncodeToString(raw)),
		"base64 raw":     []byte(base64.RawStdEncoding.EncodeToString(raw)), // also matches padded or JSON-embedded forms
		"base64url raw":  []byte(base64.RawURLEncoding.EncodeToString(raw)),
		"base64url full": []byte(base64.URLEncoding.EncodeToString(raw)),
	}
}

// findLeaks reports, for each secret found in data, "NAME (sha256 HASH) as
// FORM in WHERE". file is the base name of a dev-directory file, "" if data
// is not a file. It also searches the decoded bytes of every PEM block in
// data (certificates, backup files), where a secret's base64 would be cut
// across lines or misaligned with the block's.
func findLeaks(secrets []leakSecret, where, file string, data []byte) []string {
	found := findLeaksIn(secrets, where, file, data)
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return found
		}
		found = append(found, findLeaksIn(secrets, fmt.Sprintf("%s (PEM block %d, %s, decoded)", where, n, b.Type), file, b.Bytes)...)
	}
}

// findLeaksIn is findLeaks without the PEM decoding.
func findLeaksIn(secrets []leakSecret, where, file string, data []byte) []string {
	var found []string
	for _, s := range secrets {
		if file != "" && s.allowed[file] {
			continue
		}
		forms := leakForms(s.raw)
		names := make([]string, 0, len(forms))
		for f := range forms {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, f := range names {
			if bytes.Contains(data, forms[f]) {
				found = append(found, fmt.Sprintf("%s (sha256 %s) as %s in %s", s.name, shortHash(s.raw), f, where))
			}
		}
	}
	return found
}

// TestLeakSearchFindsPlanted: the search used by TestNoKeyMaterialLeaks does
// find a planted secret in every form, and nothing where there is nothing.
func TestLeakSearchFindsPlanted(t *testing.T) {
	raw := make([]byte, 32)
	rand.Read(raw)
	s := []leakSecret{{name: "planted", raw: raw, allowed: map[string]bool{"ok.file": true}}}
	for form, enc := range leakForms(raw) {
		buf := []byte(`{"time":"x","level":"DEBUG","msg":"m","v":"` + string(enc) + `"}` + "\n")
		if got := findLeaks(s, "buffer", "", buf); len(got) == 0 {
			t.Errorf("findLeaks() missed the planted secret as %s", form)
		} else if strings.Contains(strings.Join(got, " "), hex.EncodeToString(raw)) {
			t.Errorf("findLeaks() report prints the secret: %q", got)
		}
		if got := findLeaks(s, "file", "ok.file", buf); len(got) != 0 {
			t.Errorf("findLeaks() flagged a secret in a file where it is allowed: %q", got)
		}
		if got := findLeaks(s, "file", "other.file", buf); len(got) == 0 {
			t.Errorf("findLeaks() missed the planted secret as %s in a file where it is not allowed", form)
		}
	}
	// Inside a PEM block, 7 bytes in: its base64 is not that of the secret.
	block := pem.EncodeToMemory(&pem.Block{Type: "STRONGROOM KEY BACKUP", Bytes: append([]byte("header:"), raw...)})
	if got := findLeaksIn(s, "file", "other.file", block); len(got) != 0 {
		t.Errorf("findLeaksIn() found the secret in the PEM text itself (%q): this case no longer tests the PEM decoding", got)
	}
	if got := findLeaks(s, "file", "other.file", block); len(got) == 0 {
		t.Errorf("findLeaks() missed the planted secret inside a PEM block")
	}
	other := make([]byte, 32)
	rand.Read(other)
	clean := []byte(hex.EncodeToString(other) + base64.StdEncoding.EncodeToString(other) + string(other))
	if got := findLeaks(s, "buffer", "", clean); len(got) != 0 {
		t.Errorf("findLeaks() on a clean buffer = %q, want nothing", got)
	}
}

// TestNoKeyMaterialLeaks runs a full lifecycle with debug logging: dev
// ceremony, generate, encrypt and decrypt, HPKE DEK delivery, BYOK uploads
// (derived and opted out) through an upload certificate, export to backup
// files in the dev directory, destroy, import, a second tenant. Then it looks
// for every secret that existed (release seed, salt and TWK, tenant secrets
// and uploaded values, DEKs, the tenants' export keys and the keys derived
// from them, token secrets, plaintexts) in the logs, stdout, every row of the
// database and every file of the dev directory, backup files included.
func TestNoKeyMaterialLeaks(t *testing.T) {
	t.Parallel() // it searches only its own server's output, database and directory
	t.Run("search self-check", TestLeakSearchFindsPlanted)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "dev")
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	e := &env{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }, now: time.Now}
	if err := setupDev(ctx, e, dir, plan.DefaultIterations); err != nil {
		t.Fatalf("setupDev() error = %v", err)
	}
	cfg, err := config.Load(filepath.Join(dir, "strongroom.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.Level = "debug"
	cfg.Log.Format = "json"
	// Let the test rotate (generate, then upload) the data key in a row.
	cfg.Rotation.Production = map[string]config.Duration{"data": config.Duration(time.Nanosecond)}

	r := &leakRun{t: t, ctx: ctx, dir: dir}
	// The release's secrets: open the installed bundle with a handle of our
	// own on the regional soft HSM, before the server holds it.
	r.rel = openDevRelease(ctx, t, e, cfg)
	defer r.rel.Destroy()
	r.add("release KDF seed", r.rel.Seed.Bytes(), nil)
	r.add("release KDF salt", r.rel.Salt.Bytes(), nil)
	r.add("release TWK", r.rel.TWK.Bytes(), nil)

	opTok, err := os.ReadFile(filepath.Join(dir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	operatorToken := strings.TrimSpace(string(opTok))
	r.addToken("operator token", operatorToken)

	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- runServer(ctx, e, cfg, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("runServer() error = %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("runServer() after shutdown = %v", err)
		}
	}
	defer stop()
	r.base, r.caFile = "https://"+addr, filepath.Join(dir, "ca.pem")
	op := r.client(operatorToken)
	r.op = op

	// A second store handle, to read the wrapped tenant secrets and the
	// wrapped export key.
	r.st, err = openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.st.Close()

	// Tenant acme: two data key versions, an app token, encrypt and decrypt
	// under both, the DEKs of both.
	acme, err := op.CreateTenant(ctx, "acme", "production")
	if err != nil {
		t.Fatalf("CreateTenant(acme) error = %v", err)
	}
	if _, err := op.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatalf("GenerateKey(acme, data) #1 error = %v", err)
	}
	appTok, err := op.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", Name: "leak-test app"})
	if err != nil {
		t.Fatalf("CreateToken(app) error = %v", err)
	}
	r.addToken("acme app token", appTok.Secret)
	app := r.client(appTok.Secret)

	dec1, items1 := r.encrypt(app, "acme", "data", 4)
	r.decrypt(app, "acme", dec1, items1)
	r.deliver(app, "acme", "data", 1)

	if _, err := op.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatalf("GenerateKey(acme, data) #2 error = %v", err)
	}
	dec2, items2 := r.encrypt(app, "acme", "data", 3)
	r.decrypt(app, "acme", append(dec1[:len(dec1):len(dec1)], dec2...), append(items1[:len(items1):len(items1)], items2...))
	r.deliver(app, "acme", "data", 2)
	r.deliver(app, "acme", "data", 0)
	// Rewrap v1's data to v2: the plaintexts stay on the server.
	r.decrypt(app, "acme", r.rewrap(app, "acme", dec1, items1), items1)

	// Tenant globex: a key of its own, and its DEK through its own app token.
	globex, err := op.CreateTenant(ctx, "globex", "production")
	if err != nil {
		t.Fatalf("CreateTenant(globex) error = %v", err)
	}
	if _, err := op.GenerateKey(ctx, "globex", "data"); err != nil {
		t.Fatalf("GenerateKey(globex, data) error = %v", err)
	}
	gTok, err := op.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "globex"})
	if err != nil {
		t.Fatalf("CreateToken(globex app) error = %v", err)
	}
	r.addToken("globex app token", gTok.Secret)
	r.deliver(r.client(gTok.Secret), "globex", "data", 0)
	// A rotation refused by the rate limit (analytics keys: once a day).
	if _, err := op.GenerateKey(ctx, "globex", "analytics"); err != nil {
		t.Fatalf("GenerateKey(globex, analytics) error = %v", err)
	}
	if _, err := op.GenerateKey(ctx, "globex", "analytics"); !isAPIError(err, api.CodeRateLimited) {
		t.Fatalf("GenerateKey(globex, analytics) again error = %v, want %s", err, api.CodeRateLimited)
	}

	// BYOK on acme: uploads, derivation, delivery, export, destroy, import.
	uploaded := r.byok(op, app, acme)

	// Tenant initech: a cache-only key, whose material and bearer secret
	// its key service holds.
	initech, err := op.CreateTenant(ctx, "initech", "production")
	if err != nil {
		t.Fatalf("CreateTenant(initech) error = %v", err)
	}
	r.cacheOnly()

	// globex has an export key too: its generated key has a fingerprint.
	r.exportKeySecrets("globex", globex.ID)

	// Keep every tenant secret, the one about to be destroyed included.
	tenantSecrets := map[string][]byte{} // "tenant/type/version" → secret
	r.collect("acme", acme.ID, tenantSecrets)
	r.collect("globex", globex.ID, tenantSecrets)
	if _, ok := tenantSecrets["acme/data/1"]; !ok {
		t.Fatalf("no secret collected for acme/data/1 (have %d)", len(tenantSecrets))
	}
	for name, v := range uploaded {
		if !bytes.Equal(tenantSecrets[name], v) {
			t.Fatalf("the tenant secret of %s (imported back) is not the value uploaded", name)
		}
	}

	// Destroy acme's data v1 (archived); its data is then key_destroyed.
	if _, err := op.DestroyKey(ctx, "acme", "data", 1, "acme/data/1"); err != nil {
		t.Fatalf("DestroyKey(acme/data/1) error = %v", err)
	}
	r.decryptFails(app, "acme", dec1[:1], api.CodeKeyDestroyed)
	if _, err := app.DEK(ctx, "acme", "data", 1, 0); err == nil {
		t.Errorf("DEK(acme/data/1) after destroy succeeded, want an error")
	}
	r.decrypt(app, "acme", dec2, items2)
	r.collect("acme", acme.ID, tenantSecrets)
	r.collect("globex", globex.ID, tenantSecrets)
	for _, name := range sortedKeys(tenantSecrets) {
		r.add("tenant secret "+name, tenantSecrets[name], nil)
	}
	r.st.Close()

	// The metrics, as an operator and as an auditor scrape them, with
	// what a scrape must never name: tenants, token ids.
	auditorTok, err := op.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleAuditor, Name: "leak-test auditor"})
	if err != nil {
		t.Fatalf("CreateToken(auditor) error = %v", err)
	}
	r.addToken("auditor token", auditorTok.Secret)
	for _, tn := range []api.Tenant{acme, globex, initech} {
		r.identifiers = append(r.identifiers, leakSecret{name: "tenant name " + tn.Name, raw: []byte(tn.Name)},
			leakSecret{name: "tenant id of " + tn.Name, raw: []byte(tn.ID)})
	}
	for name, tok := range map[string]api.Token{"acme app": appTok, "globex app": gTok, "auditor": auditorTok} {
		r.identifiers = append(r.identifiers, leakSecret{name: "token id of " + name, raw: []byte(tok.ID)})
	}
	scrapes := map[string][]byte{"operator": r.scrapeMetrics(operatorToken), "auditor": r.scrapeMetrics(auditorTok.Secret)}
	checkScrape(t, scrapes["operator"])

	// The dev directory while the server runs (the WAL and SHM files and
	// the backup files are there now), then again after it stopped.
	running := snapshotDir(t, dir)
	stop()
	after := snapshotDir(t, dir)
	for _, name := range r.backups {
		if running[name] == nil || after[name] == nil {
			t.Fatalf("the backup file %s is not in the dev-directory snapshots: the search would not cover it", name)
		}
	}

	rows, cells := 0, 0
	search := func(ss []leakSecret) []string {
		var found []string
		found = append(found, findLeaks(ss, "the server's log (stderr)", "", stderr.Bytes())...)
		found = append(found, findLeaks(ss, "stdout", "", stdout.Bytes())...)
		for _, snap := range []struct {
			when  string
			files map[string][]byte
		}{{"while running", running}, {"after shutdown", after}} {
			for _, name := range sortedKeys(snap.files) {
				found = append(found, findLeaks(ss, "file "+name+" ("+snap.when+")", filepath.Base(name), snap.files[name])...)
			}
		}
		for _, who := range sortedKeys(scrapes) {
			found = append(found, findLeaks(ss, "the metrics scrape (as "+who+")", "", scrapes[who])...)
		}
		rows, cells = 0, 0
		return append(found, searchDatabase(t, filepath.Join(dir, "kms.db"), ss, &rows, &cells)...)
	}
	leaks := search(r.secrets)
	for _, who := range sortedKeys(scrapes) {
		leaks = append(leaks, findLeaks(r.identifiers, "the metrics scrape (as "+who+")", "", scrapes[who])...)
	}
	// The identifiers are the real ones: the database holds each.
	inDB := strings.Join(searchDatabase(t, filepath.Join(dir, "kms.db"), r.identifiers, new(int), new(int)), "\n")
	for _, id := range r.identifiers {
		if !strings.Contains(inDB, id.name+" (sha256 ") {
			t.Errorf("the %s is not in the database: the scrape's search for it proves nothing", id.name)
		}
	}
	r.checkControls(search)
	for _, l := range search(r.informational) {
		t.Logf("note (not a secret): %s", l)
	}

	logLines := bytes.Count(stderr.Bytes(), []byte("\n"))
	t.Logf("searched %d secrets (%d controls found where expected) in %d log lines, %d bytes of stdout, %d+%d dev-directory files (%d backup files), %d database rows (%d cells)",
		len(r.secrets), len(r.controls), logLines, len(stdout.Bytes()), len(running), len(after), len(r.backups), rows, cells)
	// The server logs at debug level here (nothing of it logs at DEBUG yet);
	// it must at least have logged its requests (by route pattern).
	for _, route := range []string{"/encrypt", "/keys/{type}/upload", "/keys/{type}/{version}/export", "/keys/import", "/key-services"} {
		if !bytes.Contains(stderr.Bytes(), []byte(route)) {
			t.Errorf("the server logged %d lines, none of a %s request: the log search covers too little", logLines, route)
		}
	}
	if rows == 0 {
		t.Errorf("no database rows were searched")
	}
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
}

// leakRun is the state of TestNoKeyMaterialLeaks: the secrets seen so far
// and what reaches the server and its database.
type leakRun struct {
	t            *testing.T
	ctx          context.Context
	dir          string // the dev directory
	base, caFile string // the server's URL and CA
	rel          *release.Release
	st           *store.Store
	op           *client.Client // the operator

	secrets []leakSecret
	// controls are public values the search must find in the places named
	// (proof that it reads those places); informational values are only
	// reported where they are found.
	controls      []leakControl
	informational []leakSecret
	backups       []string // backup files, relative to dir
	plaintexts    int

	// identifiers are not secrets, but a metrics scrape must not hold
	// them: tenants' names and ids, token ids.
	identifiers []leakSecret
}

// leakControl is a value the search must find, in a place whose name
// contains each of where.
type leakControl struct {
	leakSecret
	where []string
}

// add records a secret to search for; a value recorded already under
// another name is searched once.
func (r *leakRun) add(name string, raw []byte, allowed map[string]bool) {
	r.t.Helper()
	if len(raw) == 0 {
		r.t.Fatalf("secret %s is empty", name)
	}
	for _, s := range r.secrets {
		if bytes.Equal(s.raw, raw) {
			return
		}
	}
	r.secrets = append(r.secrets, leakSecret{name: name, raw: bytes.Clone(raw), allowed: allowed})
}

// tokenFiles are the dev-directory files a token may be written to.
var tokenFiles = map[string]bool{"operator.token": true, "env": true}

// addToken records an API token: the string and its random bytes.
func (r *leakRun) addToken(name, tok string) {
	r.t.Helper()
	rest, ok := strings.CutPrefix(tok, auth.Prefix)
	if !ok {
		r.t.Fatalf("%s does not start with %s", name, auth.Prefix)
	}
	r.add(name+" (string)", []byte(tok), tokenFiles)
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		r.t.Fatalf("%s: %v", name, err)
	}
	r.add(name+" (random bytes)", raw, tokenFiles)
}

func (r *leakRun) client(tok string) *client.Client {
	r.t.Helper()
	c, err := client.New(r.base, tok, client.WithCAFile(r.caFile))
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// encrypt encrypts n fresh plaintexts (secrets) under the active key of
// typ and returns them ready to decrypt.
func (r *leakRun) encrypt(c *client.Client, tenantName, typ string, n int) ([]api.DecryptItem, []api.EncryptItem) {
	r.t.Helper()
	var items []api.EncryptItem
	for range n {
		r.plaintexts++
		p := make([]byte, 24)
		rand.Read(p)
		r.add(fmt.Sprintf("plaintext %d", r.plaintexts), p, nil)
		items = append(items, api.EncryptItem{Plaintext: p, Context: map[string]string{"field": fmt.Sprintf("card-%d", r.plaintexts), "table": "payments"}})
	}
	res, err := c.Encrypt(r.ctx, tenantName, typ, items...)
	if err != nil {
		r.t.Fatalf("Encrypt(%s, %s) error = %v", tenantName, typ, err)
	}
	var dec []api.DecryptItem
	for i, res := range res {
		if res.Error != nil {
			r.t.Fatalf("Encrypt(%s, %s) item %d error = %+v", tenantName, typ, i, res.Error)
		}
		dec = append(dec, api.DecryptItem{Ciphertext: res.Ciphertext, Context: items[i].Context})
	}
	return dec, items
}

// decrypt decrypts every item and wants the plaintexts back.
func (r *leakRun) decrypt(c *client.Client, tenantName string, dec []api.DecryptItem, items []api.EncryptItem) {
	r.t.Helper()
	res, err := c.Decrypt(r.ctx, tenantName, dec...)
	if err != nil {
		r.t.Fatalf("Decrypt(%s) error = %v", tenantName, err)
	}
	for i, res := range res {
		if res.Error != nil || !bytes.Equal(res.Plaintext, items[i].Plaintext) {
			r.t.Fatalf("Decrypt(%s) item %d = %+v, want the plaintext back", tenantName, i, res)
		}
	}
}

// rewrap moves every item to the active key and returns them ready to
// decrypt; no answer holds a plaintext.
func (r *leakRun) rewrap(c *client.Client, tenantName string, dec []api.DecryptItem, items []api.EncryptItem) []api.DecryptItem {
	r.t.Helper()
	req := make([]api.RewrapItem, len(dec))
	for i, d := range dec {
		req[i] = api.RewrapItem{Ciphertext: d.Ciphertext, Context: d.Context}
	}
	res, err := c.Rewrap(r.ctx, tenantName, req...)
	if err != nil {
		r.t.Fatalf("Rewrap(%s) error = %v", tenantName, err)
	}
	out := make([]api.DecryptItem, len(res))
	for i, res := range res {
		if res.Error != nil || !res.Rewrapped || bytes.Contains(res.Ciphertext, items[i].Plaintext) {
			r.t.Fatalf("Rewrap(%s) item %d = %+v, want a new ciphertext", tenantName, i, res)
		}
		out[i] = api.DecryptItem{Ciphertext: res.Ciphertext, Context: dec[i].Context}
	}
	return out
}

// decryptFails wants every item refused with code.
func (r *leakRun) decryptFails(c *client.Client, tenantName string, dec []api.DecryptItem, code string) {
	r.t.Helper()
	res, err := c.Decrypt(r.ctx, tenantName, dec...)
	if err != nil {
		r.t.Fatalf("Decrypt(%s) error = %v", tenantName, err)
	}
	for i, res := range res {
		if res.Error == nil || res.Error.Code != code {
			r.t.Fatalf("Decrypt(%s) item %d = %+v, want %s", tenantName, i, res, code)
		}
	}
}

// dek returns a DEK delivered through HPKE (client.DEK), not recorded.
func (r *leakRun) dek(c *client.Client, tenantName, typ string, version uint32) []byte {
	r.t.Helper()
	d, err := c.DEK(r.ctx, tenantName, typ, version, 0)
	if err != nil {
		r.t.Fatalf("DEK(%s, %s, %d) error = %v", tenantName, typ, version, err)
	}
	defer d.Destroy()
	return d.Bytes()
}

// deliver records a DEK delivered through HPKE.
func (r *leakRun) deliver(c *client.Client, tenantName, typ string, version uint32) {
	r.t.Helper()
	d, err := c.DEK(r.ctx, tenantName, typ, version, 0)
	if err != nil {
		r.t.Fatalf("DEK(%s, %s, %d) error = %v", tenantName, typ, version, err)
	}
	key := d.Bytes()
	d.Destroy()
	r.add(fmt.Sprintf("DEK %s/%s/%d", tenantName, d.Type(), d.Version()), key, nil)
	clear(key)
}

// collect unwraps, with the release's TWK, every stored tenant secret of a
// tenant into into, by "name/type/version".
func (r *leakRun) collect(name, id string, into map[string][]byte) {
	r.t.Helper()
	ks, err := r.st.Keys(r.ctx, id, "")
	if err != nil {
		r.t.Fatalf("Keys(%s) error = %v", name, err)
	}
	for _, k := range ks {
		if k.State == tenant.StateDestroyed || k.Wrapped == nil {
			continue
		}
		s, err := tenant.Unwrap(r.rel.TWK, k.Ref(), k.Wrapped)
		if err != nil {
			r.t.Fatalf("tenant.Unwrap(%s/%s/%d) error = %v", name, k.Type, k.Version, err)
		}
		into[fmt.Sprintf("%s/%s/%d", name, k.Type, k.Version)] = bytes.Clone(s.Bytes())
		s.Destroy()
	}
}

// checkControls runs search on the controls and wants each found in every
// place it names.
func (r *leakRun) checkControls(search func([]leakSecret) []string) {
	r.t.Helper()
	var ss []leakSecret
	for _, c := range r.controls {
		ss = append(ss, c.leakSecret)
	}
	found := search(ss)
	for _, c := range r.controls {
		for _, w := range c.where {
			ok := false
			for _, f := range found {
				ok = ok || strings.HasPrefix(f, c.name+" (sha256 ") && strings.Contains(f, " in "+w)
			}
			if !ok {
				r.t.Errorf("the search did not find the control %q in %q: it does not read what it should (found: %q)", c.name, w, found)
			}
		}
	}
}

// openDevRelease opens the installed release with a handle of its own on the
// dev regional soft HSM, as setupDev's hsmFlags do.
func openDevRelease(ctx context.Context, t *testing.T, e *env, cfg *config.Config) *release.Release {
	t.Helper()
	p, err := readParsed(cfg.Primary, enroll.ParsePrimary)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rels, err := st.Releases(ctx)
	st.Close()
	if err != nil || len(rels) != 1 {
		t.Fatalf("Releases() = %d releases, %v; want 1", len(rels), err)
	}
	hf := hsmFlags{uri: cfg.HSM.URI, passphraseFile: cfg.HSM.PassphraseFile}
	h, err := hf.open(ctx, e, false)
	if err != nil {
		t.Fatalf("opening the regional HSM: %v", err)
	}
	defer h.Close()
	r, err := release.Open(ctx, h, rels[0].Bundle, release.Trust{Primary: p, Region: cfg.Region})
	if err != nil {
		t.Fatalf("release.Open() error = %v", err)
	}
	for name, k := range map[string]secret.Key{"seed": r.Seed, "salt": r.Salt, "TWK": r.TWK} {
		if k.IsZero() {
			t.Fatalf("the release has no %s", name)
		}
	}
	return r
}

// snapshotDir reads every regular file under dir, by path relative to dir.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil // a WAL or SHM file checkpointed away meanwhile
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel] = data
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return files
}

// searchDatabase reads every row of every table of the SQLite database at
// path, read-only, and searches each cell.
func searchDatabase(t *testing.T, path string, secrets []leakSecret, rows, cells *int) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	tr, err := db.Query(`SELECT name FROM sqlite_master WHERE type='table'`)
	if err != nil {
		t.Fatalf("listing the tables: %v", err)
	}
	for tr.Next() {
		var n string
		if err := tr.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	tr.Close()
	if len(tables) == 0 {
		t.Fatalf("the database %s has no tables", path)
	}
	var leaks []string
	for _, table := range tables {
		r, err := db.Query(`SELECT * FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`)
		if err != nil {
			t.Fatalf("reading table %s: %v", table, err)
		}
		cols, _ := r.Columns()
		n := 0
		for r.Next() {
			n++
			*rows++
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatalf("reading table %s: %v", table, err)
			}
			for i, v := range vals {
				*cells++
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				case nil:
					continue
				default:
					b = []byte(fmt.Sprint(v))
				}
				leaks = append(leaks, findLeaks(secrets, fmt.Sprintf("database table %s row %d column %s", table, n, cols[i]), "", b)...)
			}
		}
		if err := r.Err(); err != nil {
			t.Fatalf("reading table %s: %v", table, err)
		}
		r.Close()
	}
	return leaks
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
