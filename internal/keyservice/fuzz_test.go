package keyservice

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParsePayload fuzzes a key file's payload, the part behind AES-GCM
// that a fuzzer could not reach through a whole file: what it accepts must
// encode back to the same bytes.
func FuzzParsePayload(f *testing.F) {
	_, pemData := recipient()
	_, der, err := ParseRecipient(pemData)
	if err != nil {
		f.Fatal(err)
	}
	d, _ := newTestDirF(f)
	if _, err := d.Create("k", pemData, testMaterial(3)); err != nil {
		f.Fatal(err)
	}
	k, err := d.open("k")
	if err != nil {
		f.Fatal(err)
	}
	valid, _ := k.marshalPayload()
	f.Add(valid)
	k.State, k.Revoked = Revoked, t0
	revoked, _ := k.marshalPayload()
	f.Add(revoked)
	f.Add(append(bytes.Repeat([]byte{1}, 49), der[:10]...))
	f.Fuzz(func(t *testing.T, payload []byte) {
		k, err := parsePayload("k", payload)
		if err != nil {
			return
		}
		again, err := k.marshalPayload()
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("parsePayload accepted a payload that does not round-trip")
		}
	})
}

// FuzzAuditLine fuzzes the audit line check: a line it accepts is the
// canonical encoding of its entry, under a MAC of the directory's key.
func FuzzAuditLine(f *testing.F) {
	d, _ := newTestDirF(f)
	e := Entry{Seq: 1, Time: t0, Action: ActionFetch, Kid: "k", Outcome: OutcomeOK, Remote: "192.0.2.1:1", Client: "bearer", Prev: zeroHash}
	e.MAC = d.mac(e)
	line, _ := json.Marshal(e)
	f.Add(line)
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, bad := d.check(line)
		if bad != "" {
			return
		}
		again, _ := json.Marshal(e)
		if !bytes.Equal(again, line) || e.MAC != d.mac(e) {
			t.Fatalf("check accepted a line that is not canonical or not MACed: %q", line)
		}
	})
}

// newTestDirF is newTestDir for a fuzz test.
func newTestDirF(f *testing.F) (*Dir, *clock) {
	c := &clock{t: t0}
	d, err := initDir(f.TempDir()+"/ks", testPass, testKDF, Options{Now: c.now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(d.Close)
	return d, c
}
