package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

// auditRows is the size of the tampered log (acceptance: at least 200).
const auditRows = 200

// auditColumns are the columns of audit_log that tampering rotates through.
var auditColumns = []string{"time", "actor", "role", "tenant", "action", "key", "outcome", "reason", "remote",
	"request", "detail", "count", "prev", "hash"}

// TestAuditVerifyTamper builds a log of auditRows entries with checkpoints
// signed by the region's HSM audit key, and then, for every row in turn:
// deletes it, alters one of its columns (rotating through all of them), and
// swaps it with the next. Each time, verification — what 'strongroom audit
// verify' runs — must fail and name that row; the intact log verifies. The
// command itself is run on the intact log and on one tampered log.
func TestAuditVerifyTamper(t *testing.T) {
	t.Parallel() // independent of the other tests, and long under -race
	ctx := context.Background()
	r := copyRegion(t, "")
	cfgPath := r.config(t, "audit", "127.0.0.1:0")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{getenv: func(string) string { return "" }, now: time.Now}
	var trusted []*ecdsa.PublicKey
	err = withNode(ctx, e, cfgPath, func(h hsm.HSM, st *store.Store, cfg *config.Config) error {
		key, err := auditlog.SigningKey(ctx, h)
		if err != nil {
			return err
		}
		trusted = append(trusted, key.ECDSAPublicKey())
		cp := auditlog.NewCheckpointer(auditlog.New(st, cfg.Region), key, cfg.Audit.WitnessFile, nil, nil)
		t0 := time.Now().UTC()
		for i := range auditRows {
			a := audit.Entry{Time: t0.Add(time.Duration(i) * time.Millisecond), Actor: fmt.Sprintf("%032x", i%7), Role: "tenant-admin",
				Tenant: fmt.Sprintf("%032x", 100+i%3), Action: audit.ActionGenerate, Key: fmt.Sprintf("data/%d", i+1),
				Outcome: audit.OutcomeOK, Remote: "127.0.0.1", Request: fmt.Sprintf("%016x", i), Detail: "POST /v1/tenants/{tenant}/keys"}
			if i%5 == 4 {
				a.Outcome, a.Reason, a.Action, a.Count = audit.OutcomeRefused, "rate_limited", audit.ActionEncrypt, uint64(i)
			}
			if _, err := st.AppendAudit(ctx, a); err != nil {
				return err
			}
			if (i+1)%40 == 0 || i+1 == auditRows {
				if err := cp.Checkpoint(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	st, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := sql.Open("sqlite", filepath.Join(r.dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec1 := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	witness, err := auditlog.New(st, cfg.Region).ReadWitness(cfg.Audit.WitnessFile, trusted[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auditlog.New(st, cfg.Region).Verify(ctx, trusted, witness); err != nil {
		t.Fatalf("the intact log does not verify: %v", err)
	}
	// What verifyAudit does, with the checkpoints' signatures checked once
	// (hundreds of runs follow): a copy of one Verifier per run.
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v0, err := audit.NewVerifier(auditlog.Origin(cfg.Region), trusted, cps)
	if err != nil {
		t.Fatal(err)
	}
	verify := func() error {
		v := *v0
		for e, err := range auditlog.New(st, cfg.Region).All(ctx) {
			if err != nil {
				return err
			}
			if err := v.Add(e); err != nil {
				return err
			}
		}
		_, err := v.Finish()
		return err
	}
	wantBad := func(what string, seq int) {
		t.Helper()
		err := verify()
		var bad *audit.BadEntryError
		switch {
		case err == nil:
			t.Errorf("%s: the log still verifies", what)
		case !errors.As(err, &bad):
			t.Errorf("%s: %v, want a bad entry", what, err)
		case bad.Seq != uint64(seq):
			t.Errorf("%s: names entry %d (%v), want %d", what, bad.Seq, err, seq)
		}
	}
	// Each tampering is undone from a copy of the table before the next.
	exec1(`CREATE TABLE audit_saved AS SELECT * FROM audit_log`)
	restore := func(seqs ...int) {
		t.Helper()
		for _, seq := range seqs {
			exec1(`DELETE FROM audit_log WHERE seq = ?`, seq)
			exec1(`INSERT INTO audit_log SELECT * FROM audit_saved WHERE seq = ?`, seq)
		}
	}
	for seq := 1; seq <= auditRows; seq++ {
		exec1(`DELETE FROM audit_log WHERE seq = ?`, seq)
		wantBad(fmt.Sprintf("row %d deleted", seq), seq)
		restore(seq)

		col := auditColumns[seq%len(auditColumns)]
		exec1(`UPDATE audit_log SET `+col+` = `+alteration(col)+` WHERE seq = ?`, seq)
		wantBad(fmt.Sprintf("row %d's %s altered", seq, col), seq)
		restore(seq)

		if seq < auditRows {
			// Swap the contents of rows seq and seq+1 (their seq stay).
			exec1(`UPDATE audit_log SET seq = 1000000 WHERE seq = ?`, seq)
			exec1(`UPDATE audit_log SET seq = ? WHERE seq = ?`, seq, seq+1)
			exec1(`UPDATE audit_log SET seq = ? WHERE seq = 1000000`, seq+1)
			wantBad(fmt.Sprintf("rows %d and %d swapped", seq, seq+1), seq)
			restore(seq, seq+1)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if _, err := auditlog.New(st, cfg.Region).Verify(ctx, trusted, witness); err != nil {
		t.Fatalf("the restored log does not verify: %v", err)
	}

	// The command: verified, then refused naming the altered entry.
	st.Close()
	out, err := exec.Command(strongroomBin(t), "audit", "verify", "--config", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("audit log verified: %d entries, %d signed checkpoints", auditRows, auditRows/40)) {
		t.Fatalf("audit verify on the intact log: %v\n%s", err, out)
	}
	exec1(`UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 123`)
	out, err = exec.Command(strongroomBin(t), "audit", "verify", "--config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the audit log does NOT verify: ") || !strings.Contains(string(out), ": entry 123 (position 122) ") {
		t.Fatalf("audit verify on an altered log: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// alteration is an SQL expression that changes a column's value and keeps
// it within the column's constraints.
func alteration(col string) string {
	switch col {
	case "time", "count":
		return col + " + 1"
	case "outcome":
		return `CASE outcome WHEN 'ok' THEN 'error' ELSE 'ok' END`
	case "prev", "hash":
		return `CAST(CASE WHEN substr(` + col + `, 1, 1) = X'00' THEN X'01' ELSE X'00' END || substr(` + col + `, 2) AS BLOB)`
	}
	return col + ` || 'x'`
}

// TestAuditVerifyWitness, on SQLite and on PostgreSQL: 'audit verify'
// checks the node's witness (missing: it fails, unless --no-witness;
// --witness points elsewhere; damaged: refused, and the server refuses to
// start). Then the attack: with database access alone, an entry is
// rewritten, every later hash and the state recomputed and the checkpoints
// deleted. verifyAudit and the command fail, naming the witness; the
// checkpointer refuses, and so does a running server, logging an error
// every interval and signing nothing.
func TestAuditVerifyWitness(t *testing.T) {
	t.Parallel()
	for name, dsn := range map[string]func(testing.TB) string{
		"sqlite":   func(testing.TB) string { return "" },
		"postgres": storetest.Postgres,
	} {
		t.Run(name, func(t *testing.T) { testAuditVerifyWitness(t, dsn(t)) })
	}
}

func testAuditVerifyWitness(t *testing.T, dsn string) {
	ctx := context.Background()
	r := copyRegion(t, dsn)
	r.extra = "audit:\n  checkpoint_interval: 1s\n"
	cfgPath := r.config(t, "verify", "127.0.0.1:0")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	witness := cfg.Audit.WitnessFile
	if witness != filepath.Join(r.dir, "audit-witness") {
		t.Fatalf("audit.witness_file = %s, want audit-witness next to the configuration", witness)
	}
	e := &env{getenv: func(string) string { return "" }, now: time.Now}
	// checkpointer runs a node's checkpointer once, on a log grown by n
	// entries, and returns the number of stored checkpoints.
	checkpointer := func(n int) (cps int, err error) {
		err = withNode(ctx, e, cfgPath, func(h hsm.HSM, st *store.Store, cfg *config.Config) error {
			key, err := auditlog.SigningKey(ctx, h)
			if err != nil {
				return err
			}
			for i := range n {
				e := cliEntry(time.Now(), audit.ActionGenerate, fmt.Sprintf("entry %d of a round", i))
				e.Outcome = audit.OutcomeOK
				if _, err := st.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
			err = auditlog.NewCheckpointer(auditlog.New(st, cfg.Region), key, cfg.Audit.WitnessFile, nil, nil).Checkpoint(ctx)
			all, cerr := st.Checkpoints(ctx)
			cps = len(all)
			return errors.Join(err, cerr)
		})
		return cps, err
	}
	for _, n := range []int{20, 10} {
		if _, err := checkpointer(n); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(o verifyOptions) (string, error) {
		var out bytes.Buffer
		ve := *e
		ve.stdout = &out
		o.config = cfgPath
		err := verifyAudit(ctx, &ve, o)
		return out.String(), err
	}
	command := func(args ...string) (string, error) {
		out, err := exec.Command(strongroomBin(t), append([]string{"audit", "verify", "--config", cfgPath}, args...)...).CombinedOutput()
		return string(out), err
	}
	want := func(what string, out string, err error, fail bool, says ...string) {
		t.Helper()
		if fail != (err != nil) {
			t.Errorf("%s: error = %v, want failure %v\n%s", what, err, fail, out)
		}
		if err != nil {
			out += err.Error()
		}
		for _, s := range says {
			if !strings.Contains(out, s) {
				t.Errorf("%s: the output does not say %q:\n%s", what, s, out)
			}
		}
	}

	// The honest log, with the witness where the configuration says.
	verified := "audit log verified: 30 entries, 2 signed checkpoints"
	extends := "the log extends this node's witness " + witness + " (its checkpoint of entries 1 to 30"
	out, err := verify(verifyOptions{})
	want("verifyAudit", out, err, false, verified, extends)
	out, err = command()
	want("audit verify", out, err, false, verified, extends)

	// Missing, elsewhere, not checked, damaged.
	elsewhere := filepath.Join(t.TempDir(), "kept-witness")
	if err := os.Rename(witness, elsewhere); err != nil {
		t.Fatal(err)
	}
	out, err = command()
	want("audit verify without the witness", out, err, true, "NOT verified: there is no witness at "+witness, "--no-witness")
	out, err = command("--witness", elsewhere)
	want("audit verify --witness", out, err, false, verified, "the log extends this node's witness "+elsewhere)
	out, err = command("--no-witness")
	want("audit verify --no-witness", out, err, false, verified, "witness was NOT checked (--no-witness)")
	good, err := os.ReadFile(elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(witness, good[:len(good)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = command()
	want("audit verify, witness truncated", out, err, true, "the witness "+witness+" is damaged, altered or not this node's")
	start, cancel := context.WithTimeout(ctx, time.Minute)
	served, err := exec.CommandContext(start, strongroomBin(t), "server", "--config", cfgPath).CombinedOutput()
	cancel()
	want("server, witness truncated", string(served), err, true, "refusing to start: the witness "+witness+" is damaged")
	if err := os.WriteFile(witness, good, 0o600); err != nil {
		t.Fatal(err)
	}

	// The attack.
	st, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	driver, source := "pgx", dsn
	if dsn == "" {
		driver, source = "sqlite", filepath.Join(r.dir, "kms.db")
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	storetest.ForgeAudit(t, st, db, 7, "nothing happened")
	db.Close()
	st.Close()

	mismatch := "does not match this node's witness " + witness + " (its checkpoint of entries 1 to 30"
	out, err = verify(verifyOptions{})
	var we *auditlog.WitnessError
	if !errors.As(err, &we) {
		t.Errorf("verifyAudit(forged) error = %v, want a *auditlog.WitnessError", err)
	}
	want("verifyAudit, forged", out, err, true, "the audit log does NOT verify: auditlog: the log "+mismatch,
		"audit: entry 30 (position 29) does not match the checkpoint of size 30")
	out, err = command()
	want("audit verify, forged", out, err, true, "the audit log does NOT verify: the log "+mismatch)
	out, err = command("--no-witness") // what the witness is for
	want("audit verify --no-witness, forged", out, err, false, "audit log verified: 30 entries, 0 signed checkpoints")

	cps, err := checkpointer(0)
	var refused *auditlog.RefusedError
	if !errors.As(err, &refused) || cps != 0 {
		t.Fatalf("the checkpointer on the forged log: %d checkpoints, %v; want none and a *auditlog.RefusedError", cps, err)
	}
	cps, err = checkpointer(2)
	if !errors.As(err, &refused) || cps != 0 || !strings.Contains(err.Error(), "entry 31 (position 30) does not link to entry 30") {
		t.Fatalf("the checkpointer on the forged log grown: %d checkpoints, %v; want none and a *auditlog.RefusedError", cps, err)
	}

	// A server on the forged log refuses at start and every interval.
	n := r.startNode(t, "forged")
	refusal := "level=ERROR msg=\"audit: the audit log in the database is not the one this node signed"
	for deadline := time.Now().Add(60 * time.Second); bytes.Count(n.log.Bytes(), []byte(refusal)) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server on the forged log did not log its refusal twice within 60 s:\n%s", n.log.Bytes())
		}
	}
	n.kill()
	if !bytes.Contains(n.log.Bytes(), []byte("refusing to sign a checkpoint: the entries after this node's witness "+witness)) {
		t.Errorf("the server's refusal does not name the witness:\n%s", n.log.Bytes())
	}
	out, err = command()
	want("audit verify, forged, after the server", out, err, true, mismatch)
}
