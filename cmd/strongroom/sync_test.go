package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

// syncRows is how many rows the kill test syncs.
const syncRows = 300

// TestSyncSurvivesSIGKILL runs `strongroom sync` as a process against a
// real server and kills it with SIGKILL three times at moments when it has
// written some batches, then lets a last run finish. After every kill and
// at the end: no row is lost, every row decrypts to its own plaintext (so
// none was wrapped twice, or written to another row), and at the end every
// row is under the active version and the report says the old one is safe
// to destroy for the table. With the user's table on SQLite and on
// PostgreSQL.
func TestSyncSurvivesSIGKILL(t *testing.T) {
	t.Parallel() // mostly waits for its processes
	runAtOnce(t, []string{"sqlite", "postgres"}, syncSurvivesKill)
}

func syncSurvivesKill(t *testing.T, engine string) {
	ctx := context.Background()
	r := copyRegion(t, "")
	r.extra = "rotation:\n  sandbox: {data: 0s}\n"
	op := r.initStore(t)
	n := r.startNode(t, "a")
	opc := n.client(t, r, op)
	n.installRelease(t, r, opc)
	if _, err := opc.CreateTenant(ctx, "acme", "sandbox"); err != nil {
		t.Fatal(err)
	}
	if _, err := opc.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatal(err)
	}
	tok, err := opc.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	app := n.client(t, r, tok.Secret)

	// The user's table, on its own database.
	var dsn string
	var db *sql.DB
	if engine == "sqlite" {
		p := filepath.Join(t.TempDir(), "app.db")
		dsn = "sqlite:" + p
		// A reader that waits for the sync's writes (SQLite locks the file).
		db, err = sql.Open("sqlite", "file:"+p+"?_pragma=busy_timeout(30000)")
	} else {
		dsn = storetest.Postgres(t)
		db, err = sql.Open("pgx", dsn)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE users (id bigint PRIMARY KEY, ssn " + map[string]string{"sqlite": "BLOB", "postgres": "bytea"}[engine] + ")"); err != nil {
		t.Fatal(err)
	}
	rowCtx := func(id int) map[string]string { return map[string]string{"table": "users", "row": strconv.Itoa(id)} }
	for from := 1; from <= syncRows; from += 100 {
		items := make([]api.EncryptItem, 100)
		for i := range items {
			items[i] = api.EncryptItem{Plaintext: []byte(fmt.Sprintf("ssn %d", from+i)), Context: rowCtx(from + i)}
		}
		res, err := app.Encrypt(ctx, "acme", "data", items...)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if _, err := db.Exec("INSERT INTO users (id, ssn) VALUES ($1, $2)", from+i, r.Ciphertext); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := opc.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatal(err)
	}

	// check reads every row, decrypts it with its own context, and counts
	// the rows by version.
	check := func(when string) map[uint32]int {
		t.Helper()
		rs, err := db.Query("SELECT id, ssn FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		byVersion := map[uint32]int{}
		var ids []int
		var items []api.DecryptItem
		for rs.Next() {
			var id int
			var ct []byte
			if err := rs.Scan(&id, &ct); err != nil {
				t.Fatal(err)
			}
			h, err := envelope.ParseHeader(ct)
			if err != nil {
				t.Fatalf("%s: row %d is not a ciphertext: %v", when, id, err)
			}
			byVersion[h.Version]++
			ids = append(ids, id)
			items = append(items, api.DecryptItem{Ciphertext: ct, Context: rowCtx(id)})
		}
		if len(ids) != syncRows {
			t.Fatalf("%s: %d rows, want %d", when, len(ids), syncRows)
		}
		for from := 0; from < len(items); from += 100 {
			res, err := app.Decrypt(ctx, "acme", items[from:from+100]...)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if want := fmt.Sprintf("ssn %d", ids[from+i]); r.Error != nil || string(r.Plaintext) != want {
					t.Fatalf("%s: row %d decrypts to %q (%+v), want %q", when, ids[from+i], r.Plaintext, r.Error, want)
				}
			}
		}
		return byVersion
	}

	// versions counts the rows by version from their headers alone: cheap
	// enough to poll while a sync runs.
	versions := func() map[uint32]int {
		t.Helper()
		rs, err := db.Query("SELECT ssn FROM users")
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		out := map[uint32]int{}
		for rs.Next() {
			var ct []byte
			if err := rs.Scan(&ct); err != nil {
				t.Fatal(err)
			}
			h, _ := envelope.ParseHeader(ct)
			out[h.Version]++
		}
		return out
	}

	cp := filepath.Join(t.TempDir(), "users.checkpoint")
	args := []string{"sync", "--tenant", "acme", "--db", dsn, "--table", "users", "--column", "ssn",
		"--context", "table=users", "--context-column", "row=id", "--batch", "20", "--checkpoint", cp, "--progress", "lines"}
	environ := append(os.Environ(), "STRONGROOM_ADDR=https://"+n.addr, "STRONGROOM_TOKEN="+tok.Secret, "STRONGROOM_CA="+r.ca)
	moved := 0
	for kill := 1; kill <= 3; kill++ {
		cmd := exec.Command(strongroomBin(t), append(args, "--rate", "100")...)
		cmd.Env = environ
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once it has written a batch or more beyond the last run's,
		// at a moment that falls anywhere within a batch.
		deadline := time.Now().Add(60 * time.Second)
		for {
			if v := versions()[2]; v >= moved+30 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("sync made no progress:\n%s", out.Bytes())
			}
			time.Sleep(time.Duration(5+kill*7) * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		v := check(fmt.Sprintf("after kill %d", kill))
		if v[1]+v[2] != syncRows || v[2] <= moved {
			t.Fatalf("after kill %d: %v (before it, %d under v2)", kill, v, moved)
		}
		moved = v[2]
		if _, err := os.Stat(cp); err != nil {
			t.Fatalf("after kill %d: no checkpoint: %v\n%s", kill, err, out.Bytes())
		}
	}
	cmd := exec.Command(strongroomBin(t), args...)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the last sync: %v\n%s", err, out)
	}
	for _, want := range []string{"(resumed from the checkpoint)", "data/1: 0 values left in users(ssn): safe to destroy for this table",
		"data/2: active: 300 values under it"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the last sync's report lacks %q:\n%s", want, out)
		}
	}
	if v := check("at the end"); v[2] != syncRows {
		t.Errorf("at the end: %v", v)
	}
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Errorf("the finished sync left its checkpoint: %v", err)
	}
}
