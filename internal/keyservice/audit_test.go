package keyservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func auditPath(d *Dir) string { return filepath.Join(d.path, auditFileName) }

func readEntries(t *testing.T, d *Dir) []Entry {
	t.Helper()
	data, err := os.ReadFile(auditPath(d))
	if err != nil {
		t.Fatal(err)
	}
	var out []Entry
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var e Entry
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// fiveEntries makes a directory whose audit log has five entries.
func fiveEntries(t *testing.T) (*Dir, []byte) {
	t.Helper()
	d, c := newTestDir(t)
	if _, err := d.Create("k", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	if err := d.Append(Entry{Action: ActionFetch, Kid: "k", Outcome: OutcomeOK, Remote: "192.0.2.1:4000", Client: "bearer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Revoke("k"); err != nil {
		t.Fatal(err)
	}
	if err := d.Append(Entry{Action: ActionFetch, Kid: "k", Outcome: OutcomeRevoked, Reason: "revoked", Remote: "192.0.2.1:4001", Client: "bearer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Restore("k"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(auditPath(d))
	if err != nil {
		t.Fatal(err)
	}
	return d, data
}

func TestAuditChain(t *testing.T) {
	d, data := fiveEntries(t)
	n, head, err := d.VerifyAudit()
	if err != nil || n != 5 {
		t.Fatalf("VerifyAudit = %d, %v; want 5 entries", n, err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if head != lineHash(lines[4]) {
		t.Errorf("VerifyAudit head = %s, want the SHA-256 of line 5", head)
	}
	es := readEntries(t, d)
	var actions []string
	for i, e := range es {
		actions = append(actions, e.Action+"/"+e.Outcome)
		if e.Seq != uint64(i+1) {
			t.Errorf("entry %d: seq %d", i+1, e.Seq)
		}
	}
	if got, want := strings.Join(actions, " "), "key.create/ok fetch/ok key.revoke/ok fetch/revoked key.restore/ok"; got != want {
		t.Errorf("audit actions = %s, want %s", got, want)
	}
	if es[0].Prev != zeroHash || es[1].Prev != lineHash(lines[0]) {
		t.Errorf("prev of lines 1 and 2 = %s, %s; want zeros and line 1's hash", es[0].Prev, es[1].Prev)
	}
	if !es[1].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("entry 2 time %v, want %v", es[1].Time, t0.Add(time.Minute))
	}

	// Another passphrase, another audit key: the MACs do not verify.
	other, _ := initDir(filepath.Join(t.TempDir(), "o"), []byte("other"), testKDF, Options{})
	defer other.Close()
	os.WriteFile(auditPath(other), data, 0o600)
	if _, _, err := other.VerifyAudit(); !isLine(err, 1) {
		t.Errorf("VerifyAudit under another passphrase = %v, want line 1", err)
	}
}

func isLine(err error, n int) bool {
	var ae *AuditError
	return errors.As(err, &ae) && ae.Line == n
}

func TestAuditTamper(t *testing.T) {
	d, data := fiveEntries(t)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	join := func(ls ...[]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }
	// remac rewrites line i (0-based) with change applied and a MAC
	// recomputed with the right key: what an attacker holding the
	// passphrase, or a buggy writer, would make.
	remac := func(i int, change func(*Entry)) []byte {
		var e Entry
		json.Unmarshal(lines[i], &e)
		change(&e)
		e.MAC = d.mac(e)
		b, _ := json.Marshal(e)
		return b
	}
	for _, tc := range []struct {
		name string
		log  []byte
		line int
		want string
	}{
		{"changed line", join(lines[0], bytes.Replace(lines[1], []byte(`"bearer"`), []byte(`"sha256:00"`), 1), lines[2], lines[3], lines[4]), 2, "MAC does not verify"},
		{"changed last line", join(lines[0], lines[1], lines[2], lines[3], bytes.Replace(lines[4], []byte("restore"), []byte("revoke"), 1)), 5, "MAC does not verify"},
		{"dropped line", join(lines[0], lines[2], lines[3], lines[4]), 2, "sequence number 3, want 2"},
		{"dropped first line", join(lines[1], lines[2], lines[3], lines[4]), 1, "sequence number 2, want 1"},
		{"reordered lines", join(lines[0], lines[2], lines[1], lines[3], lines[4]), 2, "sequence number 3, want 2"},
		{"duplicated line", join(lines[0], lines[1], lines[1], lines[2], lines[3], lines[4]), 3, "sequence number 2, want 3"},
		{"changed line, MAC recomputed", join(lines[0], remac(1, func(e *Entry) { e.Kid = "other" }), lines[2], lines[3], lines[4]), 3, "does not chain"},
		{"line replaced, seq and MAC recomputed", join(lines[0], lines[1], remac(2, func(e *Entry) { e.Prev = zeroHash }), lines[3], lines[4]), 3, "does not chain"},
		{"extra field", join(lines[0], bytes.Replace(lines[1], []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1), lines[2], lines[3], lines[4]), 2, "not a well-formed entry"},
		{"not canonical", join(lines[0], bytes.Replace(lines[1], []byte(`,"action"`), []byte(` ,"action"`), 1), lines[2], lines[3], lines[4]), 2, "not in the canonical encoding"},
		{"not JSON", join(lines[0], []byte("hello"), lines[2], lines[3], lines[4]), 2, "not a well-formed entry"},
		{"torn last line", append(join(lines[0], lines[1], lines[2], lines[3]), lines[4][:20]...), 5, "incomplete"},
		{"blank line", join(lines[0], lines[1], nil, lines[2], lines[3], lines[4]), 3, "not a well-formed entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(auditPath(d), tc.log, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := d.VerifyAudit()
			var ae *AuditError
			if !errors.As(err, &ae) || ae.Line != tc.line || !strings.Contains(ae.Reason, tc.want) {
				t.Errorf("VerifyAudit = %v, want line %d: %q", err, tc.line, tc.want)
			}
		})
	}

	// Nothing is appended after a bad last line.
	os.WriteFile(auditPath(d), join(lines[0], bytes.Replace(lines[1], []byte(`"bearer"`), []byte(`"other"`), 1)), 0o600)
	if err := d.Append(Entry{Action: ActionFetch}); err == nil || !strings.Contains(err.Error(), "last line is bad") {
		t.Errorf("Append after a changed last line = %v, want a refusal", err)
	}
	os.WriteFile(auditPath(d), append(join(lines[0]), lines[1][:10]...), 0o600)
	if _, err := d.Revoke("k"); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("Revoke after a torn last line = %v, want a refusal", err)
	}
	if info, _ := d.Key("k"); info.State != Active {
		t.Errorf("a revocation that could not be recorded changed the key: %s", info.State)
	}

	// An absent log has no entries.
	os.Remove(auditPath(d))
	if n, _, err := d.VerifyAudit(); n != 0 || err != nil {
		t.Errorf("VerifyAudit of no log = %d, %v; want 0, nil", n, err)
	}
}
