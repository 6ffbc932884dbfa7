package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
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
// is not a file.
func findLeaks(secrets []leakSecret, where, file string, data []byte) []string {
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
	other := make([]byte, 32)
	rand.Read(other)
	clean := []byte(hex.EncodeToString(other) + base64.StdEncoding.EncodeToString(other) + string(other))
	if got := findLeaks(s, "buffer", "", clean); len(got) != 0 {
		t.Errorf("findLeaks() on a clean buffer = %q, want nothing", got)
	}
}

// TestNoKeyMaterialLeaks runs a full lifecycle with debug logging, then looks
// for every secret that existed (release seed, salt and TWK, tenant secrets,
// delivered DEKs, token secrets, plaintexts) in the logs, stdout, every row
// of the database and every file of the dev directory.
func TestNoKeyMaterialLeaks(t *testing.T) {
	t.Run("search self-check", TestLeakSearchFindsPlanted)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "dev")
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	e := &env{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }, now: time.Now}
	if err := setupDev(ctx, e, dir); err != nil {
		t.Fatalf("setupDev() error = %v", err)
	}
	cfg, err := config.Load(filepath.Join(dir, "strongroom.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.Level = "debug"
	cfg.Log.Format = "json"
	// Let the test rotate the data key twice in a row.
	cfg.Rotation.Production = map[string]config.Duration{"data": config.Duration(time.Nanosecond)}

	tokenFiles := map[string]bool{"operator.token": true, "env": true}
	var secrets []leakSecret
	addSecret := func(name string, raw []byte, allowed map[string]bool) {
		if len(raw) == 0 {
			t.Fatalf("secret %s is empty", name)
		}
		secrets = append(secrets, leakSecret{name: name, raw: bytes.Clone(raw), allowed: allowed})
	}
	addToken := func(name, tok string) {
		rest, ok := strings.CutPrefix(tok, auth.Prefix)
		if !ok {
			t.Fatalf("%s does not start with %s", name, auth.Prefix)
		}
		addSecret(name+" (string)", []byte(tok), tokenFiles)
		raw, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		addSecret(name+" (random bytes)", raw, tokenFiles)
	}

	// The release's secrets: open the installed bundle with a handle of our
	// own on the regional soft HSM, before the server holds it.
	rel := openDevRelease(ctx, t, e, cfg)
	defer rel.Destroy()
	addSecret("release KDF seed", rel.Seed.Bytes(), nil)
	addSecret("release KDF salt", rel.Salt.Bytes(), nil)
	addSecret("release TWK", rel.TWK.Bytes(), nil)

	opTok, err := os.ReadFile(filepath.Join(dir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	operatorToken := strings.TrimSpace(string(opTok))
	addToken("operator token", operatorToken)

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

	base := "https://" + addr
	caFile := filepath.Join(dir, "ca.pem")
	newClient := func(tok string) *client.Client {
		c, err := client.New(base, tok, client.WithCAFile(caFile))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	op := newClient(operatorToken)

	// A second store handle, to read the wrapped tenant secrets.
	st, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tenantSecrets := map[string][]byte{} // "tenant/type/version" → secret
	collectTenantSecrets := func(name, id string) {
		t.Helper()
		ks, err := st.Keys(ctx, id, "")
		if err != nil {
			t.Fatalf("Keys(%s) error = %v", name, err)
		}
		for _, k := range ks {
			if k.State == store.StateDestroyed || k.Wrapped == nil {
				continue
			}
			ref := tenant.Ref{Tenant: k.Tenant, Type: k.Type, Version: k.Version, Release: k.Release}
			switch k.Source {
			case store.SourceHSM:
				ref.Source = tenant.SourceHSM
			case store.SourceUploaded:
				ref.Source = tenant.SourceUploaded
			}
			switch k.Derivation {
			case store.DerivationPBKDF2:
				ref.Derivation = tenant.DerivePBKDF2
			case store.DerivationNone:
				ref.Derivation = tenant.DeriveNone
			}
			s, err := tenant.Unwrap(rel.TWK, ref, k.Wrapped)
			if err != nil {
				t.Fatalf("tenant.Unwrap(%s/%s/%d) error = %v", name, k.Type, k.Version, err)
			}
			tenantSecrets[fmt.Sprintf("%s/%s/%d", name, k.Type, k.Version)] = bytes.Clone(s.Bytes())
			s.Destroy()
		}
	}

	// Tenant acme: two data key versions, an app token, encrypt and decrypt
	// under both, the DEKs of both.
	acme, err := op.CreateTenant(ctx, "acme", "production")
	if err != nil {
		t.Fatalf("CreateTenant(acme) error = %v", err)
	}
	if _, err := op.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatalf("GenerateKey(acme, data) #1 error = %v", err)
	}
	appTok, err := op.CreateToken(ctx, api.CreateTokenRequest{Role: "app", Tenant: "acme", Name: "leak-test app"})
	if err != nil {
		t.Fatalf("CreateToken(app) error = %v", err)
	}
	addToken("acme app token", appTok.Secret)
	app := newClient(appTok.Secret)

	encryptSome := func(from, n int) ([]api.DecryptItem, []api.EncryptItem) {
		t.Helper()
		var items []api.EncryptItem
		for i := from; i < from+n; i++ {
			p := make([]byte, 24)
			rand.Read(p)
			addSecret(fmt.Sprintf("plaintext %d", i), p, nil)
			items = append(items, api.EncryptItem{Plaintext: p, Context: map[string]string{"field": fmt.Sprintf("card-%d", i), "table": "payments"}})
		}
		res, err := app.Encrypt(ctx, "acme", "data", items...)
		if err != nil {
			t.Fatalf("Encrypt() error = %v", err)
		}
		var dec []api.DecryptItem
		for i, r := range res {
			if r.Error != nil {
				t.Fatalf("Encrypt() item %d error = %+v", i, r.Error)
			}
			dec = append(dec, api.DecryptItem{Ciphertext: r.Ciphertext, Context: items[i].Context})
		}
		return dec, items
	}
	decryptAll := func(dec []api.DecryptItem, items []api.EncryptItem) {
		t.Helper()
		res, err := app.Decrypt(ctx, "acme", dec...)
		if err != nil {
			t.Fatalf("Decrypt() error = %v", err)
		}
		for i, r := range res {
			if r.Error != nil || !bytes.Equal(r.Plaintext, items[i].Plaintext) {
				t.Fatalf("Decrypt() item %d = %+v, want the plaintext back", i, r)
			}
		}
	}
	getDEK := func(c *client.Client, tenantName string, version uint32) {
		t.Helper()
		d, err := c.DEK(ctx, tenantName, "data", version, 0)
		if err != nil {
			t.Fatalf("DEK(%s, data, %d) error = %v", tenantName, version, err)
		}
		addSecret(fmt.Sprintf("DEK %s/data/%d", tenantName, d.Version), d.Key.Bytes(), nil)
		d.Key.Destroy()
	}

	dec1, items1 := encryptSome(1, 4)
	decryptAll(dec1, items1)
	getDEK(app, "acme", 1)

	if _, err := op.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatalf("GenerateKey(acme, data) #2 error = %v", err)
	}
	dec2, items2 := encryptSome(5, 3)
	decryptAll(append(dec1[:len(dec1):len(dec1)], dec2...), append(items1[:len(items1):len(items1)], items2...))
	getDEK(app, "acme", 2)
	getDEK(app, "acme", 0)

	// Tenant globex: a key of its own, and its DEK through its own app token.
	globex, err := op.CreateTenant(ctx, "globex", "production")
	if err != nil {
		t.Fatalf("CreateTenant(globex) error = %v", err)
	}
	if _, err := op.GenerateKey(ctx, "globex", "data"); err != nil {
		t.Fatalf("GenerateKey(globex, data) error = %v", err)
	}
	gTok, err := op.CreateToken(ctx, api.CreateTokenRequest{Role: "app", Tenant: "globex"})
	if err != nil {
		t.Fatalf("CreateToken(globex app) error = %v", err)
	}
	addToken("globex app token", gTok.Secret)
	getDEK(newClient(gTok.Secret), "globex", 0)

	// Keep every tenant secret, the one about to be destroyed included.
	collectTenantSecrets("acme", acme.ID)
	collectTenantSecrets("globex", globex.ID)
	if _, ok := tenantSecrets["acme/data/1"]; !ok {
		t.Fatalf("no secret collected for acme/data/1 (have %d)", len(tenantSecrets))
	}

	// Destroy acme's data v1 (archived); its data is then key_destroyed.
	if _, err := op.DestroyKey(ctx, "acme", "data", 1, "acme/data/1"); err != nil {
		t.Fatalf("DestroyKey(acme/data/1) error = %v", err)
	}
	res, err := app.Decrypt(ctx, "acme", dec1[0])
	if err != nil {
		t.Fatalf("Decrypt() after destroy error = %v", err)
	}
	if res[0].Error == nil || res[0].Error.Code != api.CodeKeyDestroyed {
		t.Fatalf("Decrypt() under a destroyed key = %+v, want %s", res[0], api.CodeKeyDestroyed)
	}
	if _, err := app.DEK(ctx, "acme", "data", 1, 0); err == nil {
		t.Errorf("DEK(acme/data/1) after destroy succeeded, want an error")
	}
	decryptAll(dec2, items2)
	collectTenantSecrets("acme", acme.ID)
	collectTenantSecrets("globex", globex.ID)
	for _, name := range sortedKeys(tenantSecrets) {
		addSecret("tenant secret "+name, tenantSecrets[name], nil)
	}
	st.Close()

	// The dev directory while the server runs (the WAL and SHM files are
	// there now), then again after it stopped.
	running := snapshotDir(t, dir)
	stop()
	after := snapshotDir(t, dir)

	var leaks []string
	leaks = append(leaks, findLeaks(secrets, "the server's log (stderr)", "", stderr.Bytes())...)
	leaks = append(leaks, findLeaks(secrets, "stdout", "", stdout.Bytes())...)
	for _, snap := range []struct {
		when  string
		files map[string][]byte
	}{{"while running", running}, {"after shutdown", after}} {
		for _, name := range sortedKeys(snap.files) {
			leaks = append(leaks, findLeaks(secrets, "file "+name+" ("+snap.when+")", filepath.Base(name), snap.files[name])...)
		}
	}
	rows, cells := 0, 0
	leaks = append(leaks, searchDatabase(t, filepath.Join(dir, "kms.db"), secrets, &rows, &cells)...)

	logLines := bytes.Count(stderr.Bytes(), []byte("\n"))
	t.Logf("searched %d secrets in %d log lines, %d bytes of stdout, %d+%d dev-directory files, %d database rows (%d cells)",
		len(secrets), logLines, len(stdout.Bytes()), len(running), len(after), rows, cells)
	// The server logs at debug level here (nothing of it logs at DEBUG yet);
	// it must at least have logged its requests.
	if logLines == 0 || !bytes.Contains(stderr.Bytes(), []byte("/encrypt")) {
		t.Errorf("the server logged %d lines, none of an encrypt request: the log search covers too little", logLines)
	}
	if rows == 0 {
		t.Errorf("no database rows were searched")
	}
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
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
