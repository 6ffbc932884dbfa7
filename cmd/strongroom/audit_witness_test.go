package main

import (
	"bytes"
	"context"
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
	want("server, witness truncated", string(served), err, true, "refusing to start: auditlog: the witness "+witness+" is damaged")
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
	want("audit verify, forged", out, err, true, "the audit log does NOT verify: auditlog: the log "+mismatch)
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
