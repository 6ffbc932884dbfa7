package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	mrand "math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

// crashKills is how many times each crash test kills the server, and
// crashAcksPerRun how many acknowledged operations each run does at least
// before the kill comes, at a random moment after them.
const (
	crashKills      = 20
	crashAcksPerRun = 8
)

// TestCrashRecovery runs the server as a child process, drives rotations,
// uploads, destroys and encryptions against it from several clients, and
// kills it with SIGKILL at random moments, crashKills times, restarting it
// each time. After every restart it checks what S19 promises:
//
//   - every acknowledged change is there: every key version whose creation
//     was acknowledged exists, and every acknowledged destroy holds;
//   - no tenant and type has two active keys;
//   - every ciphertext acknowledged before a kill decrypts, unless its key
//     was destroyed (acknowledged, or attempted and cut off by the kill);
//
// and at the end that every acknowledged change and DEK delivery has its
// audit entry, and that the audit log verifies ('strongroom audit verify').
// On SQLite and on PostgreSQL.
func TestCrashRecovery(t *testing.T) {
	t.Parallel() // mostly waits for its server processes or the database
	runAtOnce(t, []string{"sqlite", "postgres"}, func(t *testing.T, backend string) {
		dsn := ""
		if backend == "postgres" {
			dsn = storetest.Postgres(t)
		}
		crashRecovery(t, dsn)
	})
}

// runAtOnce runs f for each name as a subtest, all at once, and returns
// when they are done. Unlike subtests that call t.Parallel, they start as
// soon as their parent runs, not after every test already waiting for a
// -parallel slot: the long tests that use it (SIGKILL loops) would
// otherwise start last and end the package's run alone.
func runAtOnce(t *testing.T, names []string, f func(t *testing.T, name string)) {
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() { t.Run(name, func(t *testing.T) { f(t, name) }) })
	}
	wg.Wait()
}

// ledger is what the clients were told (acknowledged) and what they tried.
type ledger struct {
	mu         sync.Mutex
	versions   map[string]bool // "type/version" whose creation was acknowledged
	destroyed  map[string]bool // "type/version" whose destroy was acknowledged
	tried      map[string]bool // "type/version" whose destroy was sent (acknowledged or not)
	ciphertext []ackedCiphertext
	delivered  map[string]int // DEK deliveries acknowledged, by "type/version"
	checked    int            // ciphertexts checked after an earlier kill
	nacks      int            // acknowledgements so far
}

// ack counts an acknowledgement; the caller holds mu.
func (l *ledger) ack() { l.nacks++ }

func (l *ledger) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nacks
}

// waitAcks waits until n operations were acknowledged in all, or for d.
func (l *ledger) waitAcks(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for l.acks() < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

type ackedCiphertext struct {
	ct, pt []byte
	key    string
	field  string // of a deterministic key's ciphertext
}

func keyName(typ string, v uint32) string { return typ + "/" + strconv.FormatUint(uint64(v), 10) }

func crashRecovery(t *testing.T, dsn string) {
	ctx := context.Background()
	r := copyRegion(t, dsn)
	// No rotation limit: the test rotates as fast as it can.
	r.extra = "rotation:\n  sandbox: {data: 0s, deterministic: 0s}\n  max_keys: 1000\naudit:\n  checkpoint_interval: 1s\n"
	op := r.initStore(t)
	n := r.startNode(t, "crash")
	opc := n.client(t, r, op)
	n.installRelease(t, r, opc)
	if _, err := opc.CreateTenant(ctx, "acme", "sandbox"); err != nil {
		t.Fatal(err)
	}
	admin := mustToken(t, opc, "tenant-admin")
	app := mustToken(t, opc, "app")
	uc, err := n.client(t, r, admin).CreateUploadCert(ctx, "acme", api.CreateUploadCertRequest{})
	if err != nil {
		t.Fatal(err)
	}
	certKey := certPublicKey(t, uc.Certificate)

	l := &ledger{versions: map[string]bool{}, destroyed: map[string]bool{}, tried: map[string]bool{}, delivered: map[string]int{}}
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var acked int
	for kill := 1; kill <= crashKills; kill++ {
		clients := struct{ op, admin, app *client.Client }{n.client(t, r, op), n.client(t, r, admin), n.client(t, r, app)}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				wr := mrand.New(mrand.NewPCG(uint64(kill), uint64(w)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					crashStep(ctx, wr, l, clients.op, clients.admin, clients.app, certKey)
				}
			}(w)
		}
		// Kill at a random moment once this run has done some work (a
		// slow machine must not turn the test into kills of idle servers).
		l.waitAcks(l.acks()+crashAcksPerRun, time.Minute)
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		n.kill()
		close(stop)
		wg.Wait()
		n.start(t)
		acked += checkCrashInvariants(t, ctx, kill, kill == crashKills, l, n.client(t, r, op), n.client(t, r, app))
		if t.Failed() {
			t.Fatalf("after kill %d; server log:\n%s", kill, n.log.Bytes())
		}
	}
	l.mu.Lock()
	t.Logf("%d starts took %v on average", n.starts, n.startTime/time.Duration(max(n.starts, 1)))
	t.Logf("%d kills; %d key versions and %d destroys acknowledged; %d ciphertext checks", crashKills, len(l.versions), len(l.destroyed), acked)
	l.mu.Unlock()
	if len(l.versions) < crashKills || len(l.ciphertext) < crashKills {
		t.Errorf("the workload did too little to prove anything: %d versions, %d ciphertexts", len(l.versions), len(l.ciphertext))
	}

	// Every change has its audit entry and every entry its change: they
	// were written in one transaction.
	checkCrashAudit(t, ctx, l, n.client(t, r, op))

	// The audit log verifies after all the kills.
	n.kill()
	out, err := exec.Command(strongroomBin(t), "audit", "verify", "--config", n.config).CombinedOutput()
	if err != nil {
		t.Fatalf("strongroom audit verify after %d kills: %v\n%s", crashKills, err, out)
	}
	t.Logf("%s", out)
}

func mustToken(t *testing.T, c *client.Client, role string) string {
	t.Helper()
	tok, err := c.CreateToken(context.Background(), api.CreateTokenRequest{Role: role, Tenant: "acme", TTL: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Secret
}

func certPublicKey(t *testing.T, certPEM string) *rsa.PublicKey {
	t.Helper()
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.PublicKey.(*rsa.PublicKey)
}

// crashStep runs one random operation and records what was acknowledged.
// Errors are expected (the server dies under it; a destroyed active key has
// no successor yet); only acknowledgements count.
func crashStep(ctx context.Context, rng *mrand.Rand, l *ledger, op, admin, app *client.Client, certKey *rsa.PublicKey) {
	typ := []string{"data", "deterministic"}[rng.IntN(2)]
	switch p := rng.IntN(12); {
	case p < 2: // rotate
		if k, err := op.GenerateKey(ctx, "acme", typ); err == nil {
			l.mu.Lock()
			l.versions[keyName(k.Type, k.Version)] = true
			l.ack()
			l.mu.Unlock()
		}
	case p < 3: // upload
		value := make([]byte, 32)
		rand.Read(value)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, certKey, value, nil)
		if err != nil {
			return
		}
		sum := sha256.Sum256(value)
		mode := []string{"pbkdf2", "none"}[rng.IntN(2)]
		k, err := admin.UploadKey(ctx, "acme", typ, api.UploadKeyRequest{Wrapped: ct, SHA256: hex.EncodeToString(sum[:]), Derivation: mode})
		if err == nil {
			l.mu.Lock()
			l.versions[keyName(k.Type, k.Version)] = true
			l.ack()
			l.mu.Unlock()
		}
	case p < 4: // destroy an acknowledged version
		l.mu.Lock()
		var names []string
		for name := range l.versions {
			if !l.tried[name] {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			l.mu.Unlock()
			return
		}
		name := names[rng.IntN(len(names))]
		l.tried[name] = true
		l.mu.Unlock()
		ktyp, vs, _ := strings.Cut(name, "/")
		v, _ := strconv.ParseUint(vs, 10, 32)
		_, err := op.DestroyKey(ctx, "acme", ktyp, uint32(v), "acme/"+name)
		var ce *client.Error
		if err == nil || (errors.As(err, &ce) && ce.Code == api.CodeKeyDestroyed) {
			l.mu.Lock()
			l.destroyed[name] = true
			l.ack()
			l.mu.Unlock()
		}
	case p < 5: // a DEK delivery, whose audit entry is group-committed
		d, err := app.DEK(ctx, "acme", "data", 0, 0)
		if err == nil {
			l.mu.Lock()
			l.delivered[keyName(d.Type(), d.Version())]++
			l.ack()
			l.mu.Unlock()
			d.Destroy()
		}
	default: // encrypt
		pt := make([]byte, 16)
		rand.Read(pt)
		var field string // deterministic keys encrypt per field
		if typ == "deterministic" {
			field = "crash.f"
		}
		res, err := app.Encrypt(ctx, "acme", typ, api.EncryptItem{Plaintext: pt, Field: field})
		if err == nil && res[0].Error == nil {
			l.mu.Lock()
			l.ciphertext = append(l.ciphertext, ackedCiphertext{ct: res[0].Ciphertext, pt: pt, key: keyName(res[0].Type, res[0].Version), field: field})
			l.ack()
			l.mu.Unlock()
		}
	}
}

// checkCrashInvariants checks the restarted server against the ledger and
// returns the number of ciphertexts it decrypted.
func checkCrashInvariants(t *testing.T, ctx context.Context, kill int, all bool, l *ledger, op, app *client.Client) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	keys, err := op.Keys(ctx, "acme", "")
	if err != nil {
		t.Fatalf("kill %d: listing keys: %v", kill, err)
	}
	state := map[string]string{}
	active := map[string]int{}
	for _, k := range keys {
		state[keyName(k.Type, k.Version)] = k.State
		if k.State == "active" {
			active[k.Type]++
		}
	}
	for typ, n := range active {
		if n > 1 {
			t.Errorf("kill %d: %d active %s keys", kill, n, typ)
		}
	}
	for name := range l.versions {
		switch s, ok := state[name]; {
		case !ok:
			t.Errorf("kill %d: key %s was acknowledged and is gone", kill, name)
		case l.destroyed[name] && s != "destroyed":
			t.Errorf("kill %d: key %s's destroy was acknowledged, and it is %s", kill, name, s)
		case s == "destroyed" && !l.tried[name]:
			t.Errorf("kill %d: key %s is destroyed, and nobody asked", kill, name)
		}
	}
	// Every ciphertext acknowledged since the last check, and ten older
	// ones at random (all of them after the last kill): each restart
	// derives every DEK it needs again, which takes a while under -race.
	var todo []ackedCiphertext
	for i, c := range l.ciphertext {
		if all || i >= l.checked {
			todo = append(todo, c)
		}
	}
	for range min(10, l.checked) {
		todo = append(todo, l.ciphertext[mrand.IntN(l.checked)])
	}
	l.checked = len(l.ciphertext)
	checked := 0
	for start := 0; start < len(todo); start += 100 {
		batch := todo[start:min(start+100, len(todo))]
		items := make([]api.DecryptItem, len(batch))
		for i, c := range batch {
			items[i] = api.DecryptItem{Ciphertext: c.ct, Field: c.field}
		}
		res, err := app.Decrypt(ctx, "acme", items...)
		if err != nil {
			t.Fatalf("kill %d: decrypt: %v", kill, err)
		}
		for i, c := range batch {
			switch e := res[i].Error; {
			case e != nil && e.Code == api.CodeKeyDestroyed && l.tried[c.key]:
			case e != nil:
				t.Errorf("kill %d: a ciphertext under %s acknowledged before the kill: %s: %s", kill, c.key, e.Code, e.Message)
			case string(res[i].Plaintext) != string(c.pt):
				t.Errorf("kill %d: a ciphertext under %s decrypts to something else", kill, c.key)
			default:
				checked++
			}
		}
	}
	return checked
}

// checkCrashAudit matches the audit log with the keys: an ok key.generate or
// key.upload entry for every key version that exists (and none for one that
// does not), an ok key.destroy entry for every destroyed one, and one for
// every acknowledged destroy.
func checkCrashAudit(t *testing.T, ctx context.Context, l *ledger, op *client.Client) {
	t.Helper()
	keys, err := op.Keys(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	made, destroyed, delivered := map[string]int{}, map[string]int{}, map[string]int{}
	q := client.AuditQuery{Limit: 1000}
	for {
		page, err := op.Audit(ctx, "acme", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Entries {
			switch {
			case a.Outcome != "ok":
			case a.Action == "key.generate" || a.Action == "key.upload":
				made[a.Key]++
			case a.Action == "key.destroy":
				destroyed[a.Key]++
			case a.Action == "key.deliver":
				delivered[a.Key]++
			}
		}
		if page.Next == 0 {
			break
		}
		q.After = page.Next
	}
	exists := map[string]bool{}
	for _, k := range keys {
		name := keyName(k.Type, k.Version)
		exists[name] = true
		if made[name] != 1 {
			t.Errorf("key %s exists with %d creation entries in the audit log, want 1", name, made[name])
		}
		if (k.State == "destroyed") != (destroyed[name] == 1) {
			t.Errorf("key %s is %s with %d destroy entries in the audit log", name, k.State, destroyed[name])
		}
	}
	for name := range made {
		if !exists[name] {
			t.Errorf("the audit log records the creation of key %s, which does not exist", name)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name := range l.destroyed {
		if destroyed[name] != 1 {
			t.Errorf("key %s's destroy was acknowledged; the audit log has %d entries for it", name, destroyed[name])
		}
	}
	// Every DEK delivery answered was durable first: at least as many
	// entries as answers (more if a kill cut an answer off after its
	// commit).
	total := 0
	for name, n := range l.delivered {
		total += n
		if delivered[name] < n {
			t.Errorf("%d DEK deliveries of %s were answered; the audit log has %d entries for them", n, name, delivered[name])
		}
	}
	if total == 0 {
		t.Error("no DEK delivery was answered: the workload proves nothing of them")
	}
}
