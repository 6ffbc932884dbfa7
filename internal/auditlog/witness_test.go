package auditlog_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/postgres"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

// database is a store's database as these tests reach it: stores opened on
// it (one per node, or per restart), and a handle of its own for what
// someone with write access to the database alone does.
type database struct {
	open func(t *testing.T) *store.Store
	raw  *sql.DB
}

// onEngines runs test on each engine, with a fresh database.
func onEngines(t *testing.T, test func(t *testing.T, db database)) {
	for name, engine := range engines {
		t.Run(name, func(t *testing.T) { test(t, engine(t)) })
	}
}

// engines are the two: a SQLite file, and PostgreSQL (storetest.Postgres:
// skipped loudly without one, required under CI=true).
var engines = map[string]func(t *testing.T) database{
	"sqlite": func(t *testing.T) database {
		path := filepath.Join(t.TempDir(), "kms.db")
		return database{open: func(t *testing.T) *store.Store { return openOn(t, sqlite.OpenPath, path) }, raw: rawDB(t, "sqlite", path)}
	},
	"postgres": func(t *testing.T) database {
		dsn := storetest.Postgres(t)
		return database{open: func(t *testing.T) *store.Store { return openOn(t, postgres.Open, dsn) }, raw: rawDB(t, "pgx", dsn)}
	},
}

func openOn(t *testing.T, open func(ctx context.Context, dsn string) (*store.Store, error), dsn string) *store.Store {
	t.Helper()
	s, err := open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawDB(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// node is a regional node's audit log: its store, its HSM audit key, its
// witness file and its checkpointer, logging to logs.
type node struct {
	db      database
	st      *store.Store
	log     *auditlog.Log
	key     hsm.SigningKey
	witness string
	cp      *auditlog.Checkpointer
	logs    bytes.Buffer
	appends int
}

func newNode(t *testing.T, db database, name string) *node {
	t.Helper()
	dir := t.TempDir()
	h, err := soft.Open(ctx, filepath.Join(dir, name+".hsm"), []byte("pass"), soft.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	key, err := auditlog.SigningKey(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{db: db, key: key, witness: filepath.Join(dir, "audit-witness")}
	n.restart(t)
	return n
}

// restart opens the node's store again and makes a new checkpointer,
// which starts from the witness file, as a restarted server does.
func (n *node) restart(t *testing.T) {
	t.Helper()
	n.st = n.db.open(t)
	n.log = auditlog.New(n.st, "eu1")
	n.cp = auditlog.NewCheckpointer(n.log, n.key, n.witness, nil, slog.New(slog.NewTextHandler(&n.logs, nil)))
}

func (n *node) append(t *testing.T, k int) {
	t.Helper()
	for range k {
		n.appends++
		if err := n.log.Append(ctx, request(fmt.Sprintf("%032x", n.appends), t0)); err != nil {
			t.Fatal(err)
		}
	}
}

func (n *node) checkpoint(t *testing.T) {
	t.Helper()
	if err := n.cp.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint() error = %v", err)
	}
}

func (n *node) pub() *ecdsa.PublicKey { return n.key.ECDSAPublicKey() }

// verify runs what 'strongroom audit verify' does on the node: its witness
// file read and checked, the log verified against it and the trusted keys
// (the node's own, and others).
func (n *node) verify(t *testing.T, others ...*ecdsa.PublicKey) (audit.Report, error) {
	t.Helper()
	w, err := n.log.ReadWitness(n.witness, n.pub())
	if err != nil {
		t.Fatalf("ReadWitness() error = %v", err)
	}
	return n.log.Verify(ctx, append(others, n.pub()), w)
}

func (n *node) checkpoints(t *testing.T) int {
	t.Helper()
	cps, err := n.st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(cps)
}

func (n *node) witnessSize(t *testing.T) uint64 {
	t.Helper()
	w, err := n.log.ReadWitness(n.witness, n.pub())
	if err != nil {
		t.Fatalf("ReadWitness() error = %v", err)
	}
	return w.Checkpoint.Size
}

// wantRefused checks that Checkpoint refuses with a message holding every
// one of want, and that no checkpoint is added.
func (n *node) wantRefused(t *testing.T, what string, want ...string) {
	t.Helper()
	before := n.checkpoints(t)
	err := n.cp.Checkpoint(ctx)
	var r *auditlog.RefusedError
	if !errors.As(err, &r) {
		t.Fatalf("%s: Checkpoint() error = %v, want a *RefusedError", what, err)
	}
	t.Logf("%s: %v", what, err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: Checkpoint() error = %v, want it to say %q", what, err, w)
		}
	}
	if got := n.checkpoints(t); got != before {
		t.Errorf("%s: a refused Checkpoint() stored a checkpoint (%d, then %d)", what, before, got)
	}
}

// wantWitnessMismatch checks that the node's verification fails with a
// *WitnessError whose first bad entry is seq.
func (n *node) wantWitnessMismatch(t *testing.T, what string, seq uint64, others ...*ecdsa.PublicKey) {
	t.Helper()
	_, err := n.verify(t, others...)
	var we *auditlog.WitnessError
	var bad *audit.BadEntryError
	if !errors.As(err, &we) || !errors.As(err, &bad) || bad.Seq != seq {
		t.Fatalf("%s: Verify(with the witness) error = %v, want a *WitnessError naming entry %d", what, err, seq)
	}
	t.Logf("%s: %v", what, err)
	if !strings.Contains(err.Error(), "does not match this node's witness "+n.witness) {
		t.Errorf("%s: Verify() error = %v, want the witness file named", what, err)
	}
}

// TestWitnessForgery is the attack: with write access to the database
// alone, entry 7 is rewritten, every later hash and the state recomputed,
// and the checkpoints deleted. The log's chain and state agree, so
// verification without the witness passes; but the checkpointer refuses
// to sign (now, after a restart, and after more entries are appended to
// the forgery), logging an error each time, and verification against the
// witness fails.
func TestWitnessForgery(t *testing.T) {
	onEngines(t, func(t *testing.T, db database) {
		n := newNode(t, db, "eu1")
		n.append(t, 30)
		n.checkpoint(t)
		n.append(t, 5)
		n.checkpoint(t)
		if got := n.witnessSize(t); got != 35 {
			t.Fatalf("the witness is of %d entries, want 35", got)
		}
		if r, err := n.verify(t); err != nil || r.Checkpoints != 2 {
			t.Fatalf("Verify(the honest log) = %+v, %v, want 2 checkpoints", r, err)
		}

		storetest.ForgeAudit(t, n.st, n.db.raw, 7, "nothing happened")
		if r, err := n.log.Verify(ctx, []*ecdsa.PublicKey{n.pub()}, nil); err != nil || r.Entries != 35 {
			t.Fatalf("Verify(the forged log, no witness) = %+v, %v: want it to pass, or the forgery is not the attack", r, err)
		}
		n.wantRefused(t, "forged", "is not that of the log of this node's witness "+n.witness, "root ", "head ")
		n.wantWitnessMismatch(t, "forged", 35)

		n.logs.Reset()
		n.cp.Once(ctx)
		if logs := n.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "refusing to sign a checkpoint") {
			t.Errorf("Once() on the forged log logged %q, want an error", logs)
		}

		n.restart(t)
		n.wantRefused(t, "forged, after a restart", "is not that of the log of this node's witness")
		n.append(t, 3) // chained onto the forged head
		n.wantRefused(t, "forged, then appended to", "the entries after this node's witness", "do not extend it",
			"entry 36 (position 35) does not link to entry 35")
		n.wantWitnessMismatch(t, "forged, then appended to", 35)
	})
}

// TestWitnessTruncated: the log's tail deleted with the state rewound and
// the checkpoints deleted is refused, and named by verification.
func TestWitnessTruncated(t *testing.T) {
	onEngines(t, func(t *testing.T, db database) {
		n := newNode(t, db, "eu1")
		n.append(t, 20)
		n.checkpoint(t)
		var st audit.State
		if err := n.st.AuditEntries(ctx, store.AuditFilter{Limit: 12}, st.Extend); err != nil {
			t.Fatal(err)
		}
		state, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`DELETE FROM audit_log WHERE seq > 12`, `DELETE FROM audit_checkpoints`} {
			if _, err := n.db.raw.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := n.db.raw.ExecContext(ctx, `UPDATE audit_state SET state = $1 WHERE id = 1`, state); err != nil {
			t.Fatal(err)
		}
		n.wantRefused(t, "truncated", "the database's log has 12 entries, fewer than this node's witness", "entries were deleted")
		n.wantWitnessMismatch(t, "truncated", 13)
	})
}

// TestWitnessRestarts: the honest path across restarts. Each restarted
// checkpointer reads the witness its predecessor wrote and extends it; a
// log that did not grow is not signed again; the witness is mode 0600 and
// the log verifies against it.
func TestWitnessRestarts(t *testing.T) {
	onEngines(t, func(t *testing.T, db database) {
		n := newNode(t, db, "eu1")
		for round := 1; round <= 3; round++ {
			n.append(t, 4*round)
			n.checkpoint(t)
			n.checkpoint(t)
			if got, want := n.witnessSize(t), uint64(2*round*(round+1)); got != want {
				t.Fatalf("round %d: the witness is of %d entries, want %d", round, got, want)
			}
			if got := n.checkpoints(t); got != round {
				t.Fatalf("round %d: %d checkpoints, want %d", round, got, round)
			}
			n.restart(t)
		}
		fi, err := os.Stat(n.witness)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the witness file: %v, %v, want mode 0600", fi.Mode(), err)
		}
		if r, err := n.verify(t); err != nil || r.Entries != 24 || r.Checkpoints != 3 || r.Unchecked != 0 {
			t.Errorf("Verify() = %+v, %v, want 24 entries, 3 checkpoints", r, err)
		}
		if strings.Contains(n.logs.String(), "level=ERROR") {
			t.Errorf("the honest path logged errors:\n%s", n.logs.String())
		}
	})
}

// TestWitnessFileRefused: a damaged, truncated, emptied or replaced
// witness file is refused with an error that names it, by the
// checkpointer (nothing is signed) and by ReadWitness.
func TestWitnessFileRefused(t *testing.T) {
	db := engines["sqlite"](t)
	n := newNode(t, db, "eu1")
	other := newNode(t, db, "eu2")
	n.append(t, 9)
	n.checkpoint(t)
	other.checkpoint(t)
	good, err := os.ReadFile(n.witness)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.ReadFile(other.witness)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-5] ^= 1 // in the state's subtree roots
	n.append(t, 2)
	for what, data := range map[string][]byte{
		"truncated":            good[:len(good)/2],
		"a byte altered":       flipped,
		"empty":                {},
		"another node's":       theirs,
		"longer than any":      bytes.Repeat(good, 10),
		"not a witness at all": []byte("version: 1\n"),
	} {
		if err := os.WriteFile(n.witness, data, 0o600); err != nil {
			t.Fatal(err)
		}
		n.restart(t)
		n.wantRefused(t, what, "the witness "+n.witness+" is damaged, altered or not this node's")
		if _, err := n.log.ReadWitness(n.witness, n.pub()); err == nil {
			t.Errorf("%s: ReadWitness() error = nil", what)
		}
	}
	if err := os.WriteFile(n.witness, good, 0o600); err != nil {
		t.Fatal(err)
	}
	n.restart(t)
	n.checkpoint(t)
	if got := n.witnessSize(t); got != 11 {
		t.Errorf("with the witness put back, it is of %d entries after a checkpoint, want 11", got)
	}
}

// TestWitnessFirst: a node without a witness signs only a log that verifies
// from entry 1, against the checkpoints in the database that it signed
// itself (a lost witness); other nodes' checkpoints, which it cannot check,
// do not stop it.
func TestWitnessFirst(t *testing.T) {
	onEngines(t, func(t *testing.T, db database) {
		n := newNode(t, db, "eu1")
		if err := n.cp.Checkpoint(ctx); err != nil || n.checkpoints(t) != 0 {
			t.Fatalf("Checkpoint(empty log) = %v, %d checkpoints, want none", err, n.checkpoints(t))
		}
		if _, err := os.Stat(n.witness); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the empty log's witness: %v, want none written", err)
		}
		other := newNode(t, db, "eu2")
		other.append(t, 10)
		other.checkpoint(t)
		n.checkpoint(t) // trusting only itself, and no witness yet
		if got := n.witnessSize(t); got != 10 {
			t.Fatalf("the first witness is of %d entries, want 10", got)
		}

		// The witness lost, and the log forged with this node's
		// checkpoint put back: caught by it.
		cps, err := n.st.Checkpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		storetest.ForgeAudit(t, n.st, db.raw, 3, "nothing happened")
		for _, cp := range cps {
			if err := n.st.AddCheckpoint(ctx, 10, cp); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Remove(n.witness); err != nil {
			t.Fatal(err)
		}
		n.restart(t)
		n.wantRefused(t, "forged, witness lost", "no witness at "+n.witness+" yet, so the log must verify from entry 1",
			"entry 10 (position 9) does not match the checkpoint of size 10")

		// A broken chain, with no checkpoint at all.
		if _, err := db.raw.ExecContext(ctx, `DELETE FROM audit_checkpoints`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.raw.ExecContext(ctx, `UPDATE audit_log SET detail = 'x' WHERE seq = 5`); err != nil {
			t.Fatal(err)
		}
		n.wantRefused(t, "altered, no witness", "entry 5 (position 4) does not match its hash")
	})
}

// TestWitnessCheckpointsDeleted: the database's checkpoints deleted, the
// entries intact: verification against the witness says that they were
// deleted.
func TestWitnessCheckpointsDeleted(t *testing.T) {
	n := newNode(t, engines["sqlite"](t), "eu1")
	n.append(t, 6)
	n.checkpoint(t)
	if _, err := n.db.raw.ExecContext(ctx, `DELETE FROM audit_checkpoints`); err != nil {
		t.Fatal(err)
	}
	_, err := n.verify(t)
	var we *auditlog.WitnessError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "checkpoints were deleted from the database") {
		t.Errorf("Verify(checkpoints deleted) error = %v, want a *WitnessError saying so", err)
	}
}

// TestWitnessTwoNodes: two nodes on one database, each with its own HSM
// audit key and witness, append and checkpoint in turn; each extends its
// own witness with the entries either appended, and the log verifies on
// each against both keys and its witness. The forgery is then refused by
// both.
func TestWitnessTwoNodes(t *testing.T) {
	onEngines(t, func(t *testing.T, db database) {
		a, b := newNode(t, db, "a"), newNode(t, db, "b")
		b.appends = 1000 // distinct requests
		for round := range 4 {
			a.append(t, round+1)
			a.checkpoint(t)
			b.append(t, 2)
			a.append(t, 1)
			b.checkpoint(t)
		}
		a.checkpoint(t)
		if sa, sb := a.witnessSize(t), b.witnessSize(t); sa != 22 || sb != 22 {
			t.Fatalf("the witnesses are of %d and %d entries, want 22 and 22", sa, sb)
		}
		for _, n := range []struct {
			node  *node
			other *ecdsa.PublicKey
		}{{a, b.pub()}, {b, a.pub()}} {
			if r, err := n.node.verify(t, n.other); err != nil || r.Entries != 22 || r.Checkpoints != 9 {
				t.Errorf("Verify() on a node = %+v, %v, want 22 entries and 9 checkpoints", r, err)
			}
		}
		storetest.ForgeAudit(t, a.st, db.raw, 2, "nothing happened")
		for _, n := range []struct {
			node  *node
			other *ecdsa.PublicKey
		}{{a, b.pub()}, {b, a.pub()}} {
			n.node.wantRefused(t, "forged", "is not that of the log of this node's witness")
			n.node.wantWitnessMismatch(t, "forged", 22, n.other)
		}
	})
}

// TestWitnessUnwritable: a witness file that cannot be written is refused
// before the first round (Load), and a write that fails later is retried
// every round, from the checkpoint this process signed: the log is not
// verified from entry 1 again, nor a checkpoint of the same size signed
// again, while the file cannot be written.
func TestWitnessUnwritable(t *testing.T) {
	db := engines["sqlite"](t)
	n := newNode(t, db, "eu1")
	missing := auditlog.NewCheckpointer(n.log, n.key, filepath.Join(t.TempDir(), "no-such-dir", "audit-witness"), nil, nil)
	if err := missing.Load(); err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Errorf("Load(witness in a missing directory) error = %v", err)
	}

	dir := filepath.Join(t.TempDir(), "witness")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n.witness = filepath.Join(dir, "audit-witness")
	n.restart(t)
	if err := n.cp.Load(); err != nil {
		t.Fatalf("Load(first start) error = %v", err)
	}
	n.append(t, 5)
	if err := os.Remove(dir); err != nil { // the volume went away
		t.Fatal(err)
	}
	for round := range 3 {
		if err := n.cp.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "tried again every interval") {
			t.Fatalf("round %d: Checkpoint(witness unwritable) error = %v", round, err)
		}
		if got := n.checkpoints(t); got != 1 {
			t.Fatalf("round %d: %d checkpoints stored, want 1", round, got)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n.checkpoint(t)
	if got := n.witnessSize(t); got != 5 {
		t.Errorf("the witness, written once it could be, is of %d entries, want 5", got)
	}
	n.append(t, 2)
	n.checkpoint(t)
	if got, w := n.checkpoints(t), n.witnessSize(t); got != 2 || w != 7 {
		t.Errorf("after two more entries: %d checkpoints, witness of %d entries; want 2 and 7", got, w)
	}
}
