package resync_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
	"github.com/strongroom-kms/strongroom/internal/resync"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

var ctx = context.Background()

// world is a real node, an app client of tenant acme, and the user's
// database with a table of ciphertexts.
type world struct {
	t       testing.TB
	srv     *apitest.Server
	app, op *client.Client
	db      *sql.DB
	dsn     string
	plain   map[int64]string // row id → the plaintext of its ssn
}

// userDB is the user's own database on each engine.
func userDBs(testing.TB) map[string]func(t testing.TB) string {
	return map[string]func(t testing.TB) string{
		"sqlite": func(t testing.TB) string {
			p := filepath.Join(t.TempDir(), "app.db")
			db, err := sql.Open("sqlite", p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("CREATE TABLE users (id INTEGER PRIMARY KEY, ssn BLOB, email TEXT, note TEXT)"); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return "sqlite:" + p
		},
		"postgres": func(t testing.TB) string {
			dsn := storetest.Postgres(t)
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE users (id bigint PRIMARY KEY, ssn bytea, email text, note text)"); err != nil {
				t.Fatal(err)
			}
			return dsn
		},
	}
}

func newWorld(t testing.TB, dsn string, rows int) *world {
	t.Helper()
	srv := apitest.NewServer(t, apitest.Options{})
	srv.Tenant(t, "acme")
	ts := httptest.NewServer(srv.Handler)
	t.Cleanup(ts.Close)
	mk := func(token string) *client.Client {
		c, err := client.New(ts.URL, token)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	w := &world{t: t, srv: srv, app: mk(srv.Token(t, api.RoleApp, "acme")), op: mk(srv.Operator), dsn: dsn, plain: map[int64]string{}}
	driver, name := "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	if strings.HasPrefix(dsn, "postgres") {
		driver, name = "pgx", dsn
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.db = db
	w.generate()
	w.insert(1, int64(rows))
	return w
}

func (w *world) generate() {
	w.t.Helper()
	if _, err := w.op.GenerateKey(ctx, "acme", "data"); err != nil {
		w.t.Fatal(err)
	}
}

// rotate makes a new active data key.
func (w *world) rotate() {
	w.t.Helper()
	w.srv.Clock.Add(25 * time.Hour)
	w.generate()
}

func rowCtx(id int64) map[string]string {
	return map[string]string{"table": "users", "row": strconv.FormatInt(id, 10)}
}

// insert adds rows from..to under the active key: ssn as a blob bound to
// the row, email as base64 text bound to the column, note plain text.
func (w *world) insert(from, to int64) {
	w.t.Helper()
	for id := from; id <= to; id++ {
		pt := fmt.Sprintf("ssn of %d", id)
		res, err := w.app.Encrypt(ctx, "acme", "data",
			api.EncryptItem{Plaintext: []byte(pt), Context: rowCtx(id)},
			api.EncryptItem{Plaintext: []byte(fmt.Sprintf("user%d@example.com", id)), Context: map[string]string{"table": "users", "col": "email"}})
		if err != nil || res[0].Error != nil || res[1].Error != nil {
			w.t.Fatalf("encrypt: %v %+v", err, res)
		}
		var email any = base64.StdEncoding.EncodeToString(res[1].Ciphertext)
		if id%7 == 0 {
			email = nil
		}
		if _, err := w.db.Exec("INSERT INTO users (id, ssn, email, note) VALUES ($1, $2, $3, $4)", id, res[0].Ciphertext, email, "n"); err != nil {
			w.t.Fatal(err)
		}
		w.plain[id] = pt
	}
}

// job is a sync of users.ssn, bound to the row through the id column.
func (w *world) job(cp string) *resync.Job {
	return &resync.Job{Tenant: "acme", DSN: w.dsn, Table: "users", Key: "id", Columns: []string{"ssn"},
		Context: map[string]string{"table": "users"}, ContextColumns: map[string]string{"row": "id"},
		Batch: 16, Checkpoint: cp, Rewrap: w.app}
}

// versions reads every ssn, checks that it decrypts (through the server)
// to its row's plaintext, once wrapped only, and counts them by version.
func (w *world) versions() map[uint32]int {
	w.t.Helper()
	rs, err := w.db.Query("SELECT id, ssn FROM users ORDER BY id")
	if err != nil {
		w.t.Fatal(err)
	}
	defer rs.Close()
	out := map[uint32]int{}
	n := 0
	for rs.Next() {
		var id int64
		var ct []byte
		if err := rs.Scan(&id, &ct); err != nil {
			w.t.Fatal(err)
		}
		n++
		h, err := envelope.ParseHeader(ct)
		if err != nil {
			w.t.Fatalf("row %d: %v", id, err)
		}
		out[h.Version]++
		res, err := w.app.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: ct, Context: rowCtx(id)})
		if err != nil || res[0].Error != nil || string(res[0].Plaintext) != w.plain[id] {
			w.t.Fatalf("row %d does not decrypt to its plaintext: %v %+v", id, err, res)
		}
	}
	if n != len(w.plain) {
		w.t.Fatalf("%d rows, want %d", n, len(w.plain))
	}
	return out
}

func TestSync(t *testing.T) {
	for engine, mk := range userDBs(t) {
		t.Run(engine, func(t *testing.T) {
			w := newWorld(t, mk(t), 90)
			w.rotate()
			w.insert(91, 100) // already under v2
			cp := filepath.Join(t.TempDir(), "users.checkpoint")

			// A dry run counts and changes nothing.
			dry := w.job(cp)
			dry.DryRun = true
			rep, err := dry.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Versions["data/1"].Values != 90 || rep.Versions["data/2"].Values != 10 || rep.Moved != 0 {
				t.Errorf("dry run = %+v", rep)
			}
			if v := w.versions(); v[1] != 90 || v[2] != 10 {
				t.Errorf("after the dry run: %v", v)
			}
			if _, err := os.Stat(cp); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a dry run wrote a checkpoint: %v", err)
			}

			rep, err = w.job(cp).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Moved != 90 || rep.Rows != 100 || rep.Versions["data/1"].Moved != 90 || rep.Remaining["data/1"] != 0 || rep.Remaining["data/2"] != 100 || rep.Active["data"] != 2 {
				t.Errorf("sync = %+v (data/1 %+v)", rep, rep.Versions["data/1"])
			}
			if v := w.versions(); v[2] != 100 {
				t.Errorf("after the sync: %v", v)
			}
			lines := strings.Join(rep.Lines("users", []string{"ssn"}), "\n")
			if !strings.Contains(lines, "data/1: 0 values left in users(ssn): safe to destroy for this table (90 moved)") ||
				!strings.Contains(lines, "data/2: active: 100 values under it (90 moved to it)") {
				t.Errorf("report:\n%s", lines)
			}
			if _, err := os.Stat(cp); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a finished sync left its checkpoint: %v", err)
			}

			// Again: nothing to move.
			rep, err = w.job(cp).Run(ctx)
			if err != nil || rep.Moved != 0 || rep.Versions["data/2"].Values != 100 {
				t.Errorf("second sync = %+v, %v", rep, err)
			}
		})
	}
}

// failing is a rewrap that fails after some calls, as a network or a kill
// would cut a run short.
type failing struct {
	resync.Rewrapper
	calls, after int
}

func (f *failing) Rewrap(ctx context.Context, tenant string, items ...api.RewrapItem) ([]api.RewrapResult, error) {
	if f.calls++; f.calls > f.after {
		return nil, errors.New("the server went away")
	}
	return f.Rewrapper.Rewrap(ctx, tenant, items...)
}

// A run cut short resumes from its checkpoint: no row lost, none moved
// twice, every one decrypts; a checkpoint of another job is refused.
func TestSyncResumes(t *testing.T) {
	for engine, mk := range userDBs(t) {
		t.Run(engine, func(t *testing.T) {
			w := newWorld(t, mk(t), 100)
			w.rotate()
			cp := filepath.Join(t.TempDir(), "users.checkpoint")
			j := w.job(cp)
			j.Rewrap = &failing{Rewrapper: w.app, after: 3}
			if _, err := j.Run(ctx); err == nil || !strings.Contains(err.Error(), "went away") {
				t.Fatalf("the cut-short run: %v", err)
			}
			if v := w.versions(); v[2] != 48 || v[1] != 52 {
				t.Errorf("after 3 batches of 16: %v, want 48 moved", v)
			}
			other := w.job(cp)
			other.Columns = []string{"email"}
			if _, err := other.Run(ctx); err == nil || !strings.Contains(err.Error(), "checkpoint of another sync") {
				t.Errorf("another job on the checkpoint: %v", err)
			}
			rep, err := w.job(cp).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Resumed || rep.Rows != 100 || rep.Moved != 100 || rep.Versions["data/1"].Moved != 100 {
				t.Errorf("resumed sync = %+v (data/1 %+v)", rep, rep.Versions["data/1"])
			}
			if v := w.versions(); v[2] != 100 {
				t.Errorf("after resuming: %v", v)
			}
		})
	}
}

// racing is a rewrap during which the application writes a row.
type racing struct {
	resync.Rewrapper
	db   *sql.DB
	done bool
}

func (r *racing) Rewrap(ctx context.Context, tenant string, items ...api.RewrapItem) ([]api.RewrapResult, error) {
	if !r.done {
		r.done = true
		if _, err := r.db.Exec("UPDATE users SET ssn = $1 WHERE id = 3", []byte("the application's new value")); err != nil {
			return nil, err
		}
	}
	return r.Rewrapper.Rewrap(ctx, tenant, items...)
}

// Text columns, NULLs, values that are not ciphertexts, a value the
// application changes meanwhile (its write stands), a destroyed version,
// and names that are not identifiers.
func TestSyncEdges(t *testing.T) {
	dsn := userDBs(t)["sqlite"](t)
	w := newWorld(t, dsn, 30)
	if _, err := w.db.Exec("UPDATE users SET note = $1 WHERE id = 5", "not a ciphertext"); err != nil {
		t.Fatal(err)
	}
	w.rotate()

	emails := &resync.Job{Tenant: "acme", DSN: dsn, Table: "users", Columns: []string{"email", "note"},
		Context: map[string]string{"table": "users", "col": "email"}, Batch: 8, Rewrap: w.app}
	rep, err := emails.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 30 emails, 4 NULL (ids 7, 14, 21, 28); 30 notes: "n" (valid base64,
	// not a ciphertext) and one plain text.
	if rep.Moved != 26 || rep.Malformed != 30 || rep.Values != 56 {
		t.Errorf("emails = %+v", rep)
	}
	var email string
	if err := w.db.QueryRow("SELECT email FROM users WHERE id = 1").Scan(&email); err != nil {
		t.Fatal(err)
	}
	ct, err := base64.StdEncoding.DecodeString(email)
	if h, _ := envelope.ParseHeader(ct); err != nil || h.Version != 2 {
		t.Errorf("the email column after sync: version %d, %v", h.Version, err)
	}

	j := w.job("")
	j.Rewrap = &racing{Rewrapper: w.app, db: w.db}
	rep, err = j.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conflict != 1 || rep.Moved != 29 || rep.Remaining["data/1"] != 0 || rep.Unreadable != 1 {
		t.Errorf("with the application's write: %+v", rep)
	}
	var ssn []byte
	if err := w.db.QueryRow("SELECT ssn FROM users WHERE id = 3").Scan(&ssn); err != nil || string(ssn) != "the application's new value" {
		t.Errorf("the application's write was overwritten: %q, %v", ssn, err)
	}
	// The application's value is no ciphertext: data/1 is not verified.
	if l := strings.Join(rep.Lines("users", []string{"ssn"}), "\n"); !strings.Contains(l, "data/1: 0 readable values left in users(ssn), but 1 values could not be read: not verified") {
		t.Errorf("report:\n%s", l)
	}
	if _, err := w.db.Exec("UPDATE users SET ssn = NULL WHERE id = 3"); err != nil {
		t.Fatal(err)
	}

	// Data under a destroyed version cannot move, and says so.
	w.rotate()
	if _, err := w.op.DestroyKey(ctx, "acme", "data", 2, "acme/data/2"); err != nil {
		t.Fatal(err)
	}
	rep, err = w.job("").Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Versions["data/2"]; c == nil || rep.Remaining["data/2"] != 29 || c.Errors[api.CodeKeyDestroyed] != 29 {
		t.Errorf("under a destroyed version: %+v", rep)
	}
	if l := strings.Join(rep.Lines("users", []string{"ssn"}), "\n"); !strings.Contains(l, "data/2: destroyed: 29 values in users(ssn) can never be decrypted again") {
		t.Errorf("report:\n%s", l)
	}

	for _, bad := range []func(j *resync.Job){
		func(j *resync.Job) { j.Table = "users; DROP TABLE users" },
		func(j *resync.Job) { j.Key = `id"` },
		func(j *resync.Job) { j.Columns = []string{"ssn", "ssn"} },
		func(j *resync.Job) { j.Columns = []string{"id"} },
		func(j *resync.Job) { j.ContextColumns = map[string]string{"table": "id"} },
		func(j *resync.Job) { j.DSN = "sqlite:" + filepath.Join(t.TempDir(), "missing.db") },
		func(j *resync.Job) { j.DSN = "mysql://x" },
	} {
		j := w.job("")
		bad(j)
		if _, err := j.Run(ctx); err == nil {
			t.Errorf("job %+v ran", j)
		}
	}
	if n := w.count(); n != 30 {
		t.Errorf("the table has %d rows after the refused jobs", n)
	}
}

// rotating is a rewrap after whose first call the key rotates.
type rotating struct {
	resync.Rewrapper
	w     *world
	calls int
}

func (r *rotating) Rewrap(ctx context.Context, tenant string, items ...api.RewrapItem) ([]api.RewrapResult, error) {
	res, err := r.Rewrapper.Rewrap(ctx, tenant, items...)
	if r.calls++; r.calls == 1 {
		r.w.rotate()
	}
	return res, err
}

// A rotation during the run: the version active at its start keeps what
// the run moved to it, and the report says so instead of "safe".
func TestSyncRotationDuringRun(t *testing.T) {
	w := newWorld(t, userDBs(t)["sqlite"](t), 40)
	w.rotate()
	j := w.job("")
	j.Rewrap = &rotating{Rewrapper: w.app, w: w}
	rep, err := j.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Rotated || rep.Remaining["data/1"] != 0 || rep.Remaining["data/2"] != 16 || rep.Remaining["data/3"] != 24 {
		t.Errorf("report %+v", rep)
	}
	l := strings.Join(rep.Lines("users", []string{"ssn"}), "\n")
	for _, want := range []string{"data/1: 0 values left in users(ssn): safe to destroy", "data/2: 16 values left in users(ssn)",
		"not safe to destroy", "data/3: active: 24 values under it", "the active key changed during the run"} {
		if !strings.Contains(l, want) {
			t.Errorf("report lacks %q:\n%s", want, l)
		}
	}
	// Again: everything moves to data/3.
	rep, err = w.job("").Run(ctx)
	if err != nil || rep.Remaining["data/3"] != 40 || rep.Rotated {
		t.Errorf("the second run: %+v, %v", rep, err)
	}
}

// Names are checked against the catalog: a missing key column (SQLite
// would read a quoted unknown name as a string), a key that is not unique,
// a missing ciphertext column; a URL with a password is refused.
func TestSyncChecksSchema(t *testing.T) {
	for engine, mk := range userDBs(t) {
		t.Run(engine, func(t *testing.T) {
			w := newWorld(t, mk(t), 3)
			blob := map[string]string{"sqlite": "BLOB", "postgres": "bytea"}[engine]
			if _, err := w.db.Exec("CREATE TABLE accounts (user_id bigint PRIMARY KEY, name text NOT NULL, ssn " + blob + ")"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				edit func(j *resync.Job)
				want string
			}{
				{func(j *resync.Job) { j.Table = "accounts"; j.ContextColumns = nil }, "accounts has no column id (its columns: name, ssn, user_id)"},
				{func(j *resync.Job) { j.Table = "accounts"; j.Key = "name"; j.ContextColumns = nil }, "name is not the primary key of accounts"},
				{func(j *resync.Job) { j.Columns = []string{"snn"} }, "users has no column snn"},
				{func(j *resync.Job) { j.Table = "nope" }, "there is no table nope"},
			} {
				j := w.job("")
				c.edit(j)
				if _, err := j.Run(ctx); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%+v: %v, want %q", j, err, c.want)
				}
			}
			j := w.job("")
			j.DSN = "postgres://app:hunter2@127.0.0.1:1/db"
			if _, err := j.Run(ctx); err == nil || !strings.Contains(err.Error(), "holds a password") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a URL with a password: %v", err)
			}
		})
	}
}

func (w *world) count() int {
	var n int
	if err := w.db.QueryRow("SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}
