package audit

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// katEntries are the example entries of docs/audit.md.
func katEntries() []Entry {
	return []Entry{{
		Time: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), Actor: "0123456789abcdef0123456789abcdef", Role: "tenant-admin",
		Tenant: "fedcba9876543210fedcba9876543210", Action: ActionRotate, Key: "data/3", Outcome: OutcomeOK,
		Remote: "192.0.2.10:50412", Request: "req-000001", Detail: "scheduled rotation",
	}, {
		Time: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC), Actor: ActorAnonymous, Action: ActionTokenUse,
		Outcome: OutcomeRefused, Reason: "unauthenticated", Remote: "[2001:db8::7]:443", Request: "req-000002",
	}, {
		Time: time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC), Actor: "0123456789abcdef0123456789abcdef", Role: "app",
		Tenant: "fedcba9876543210fedcba9876543210", Action: ActionEncrypt, Key: "data/3", Outcome: OutcomeOK, Count: 1500,
	}}
}

// TestKnownAnswers pins the encodings and hashes to the values in
// docs/audit.md, which an independent implementation (a few lines of
// Python) reproduced.
func TestKnownAnswers(t *testing.T) {
	want := []struct{ enc, leaf, hash string }{
		{
			"7374726f6e67726f6f6d20617564697420656e7472792076310001000000000000000100064bf535b0f2402030313233343536373839616263646566303132333435363738396162636465660c74656e616e742d61646d696e2066656463626139383736353433323130666564636261393837363534333231300a6b65792e726f7461746506646174612f33026f6b00103139322e302e322e31303a35303431320a7265712d30303030303100127363686564756c656420726f746174696f6e0000000000000000",
			"f80ad4b7d7df21e4bcb9ce6fefd24590ddd4e071170233669395d78275f97ef6",
			"18e309a02e542ba164a7f466b9ae6fea8291405c09f41576ce8a119ef5196485",
		},
		{
			"7374726f6e67726f6f6d20617564697420656e7472792076310001000000000000000200064bf535be524009616e6f6e796d6f7573000009746f6b656e2e7573650007726566757365640f756e61757468656e74696361746564115b323030313a6462383a3a375d3a3434330a7265712d30303030303200000000000000000000",
			"e7586aeaa5bbf40474abdbc66ab38cbc198a4637e30c03995fafac36ae0aa66c",
			"71e1b3314c8d34d188eda5e9992c2893243b3c4f270364437c4d3d53b2c80122",
		},
		{
			"7374726f6e67726f6f6d20617564697420656e7472792076310001000000000000000300064bf539429700203031323334353637383961626364656630313233343536373839616263646566036170702066656463626139383736353433323130666564636261393837363534333231300b6b65792e656e637279707406646174612f33026f6b000000000000000000000005dc",
			"cdaca8c4999ad8471591917f589d1703581c22d932384419d9d7fc302af8286c",
			"c0d5ff8efe9cb4b1b21f16c75961eaba60e2055b79d213ec28cfd5ef788c8748",
		},
	}
	var s State
	for i, e := range katEntries() {
		c, err := s.Append(e)
		if err != nil {
			t.Fatalf("Append(entry %d) error = %v", i+1, err)
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := LeafHash(c)
		if got := hex.EncodeToString(enc); got != want[i].enc {
			t.Errorf("Encode(entry %d) = %s, want %s", i+1, got, want[i].enc)
		}
		if got := hex.EncodeToString(leaf[:]); got != want[i].leaf {
			t.Errorf("LeafHash(entry %d) = %s, want %s", i+1, got, want[i].leaf)
		}
		if got := hex.EncodeToString(c.Hash[:]); got != want[i].hash {
			t.Errorf("entry %d Hash = %s, want %s", i+1, got, want[i].hash)
		}
		back, err := ParseEntry(enc)
		c.Prev, c.Hash = [32]byte{}, [32]byte{}
		if err != nil || back != c {
			t.Errorf("ParseEntry(Encode(entry %d)) = %+v, %v, want %+v", i+1, back, err, c)
		}
	}
	if got, want := s.Root(), "7f1ac20788398e997ab0fbd72269dffebb7a216eace0901bb93492d13cbd3e6a"; hex.EncodeToString(got[:]) != want {
		t.Errorf("Root() of the three entries = %x, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	good := katEntries()[0]
	good.Seq = 1
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) error = %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(e *Entry)
		ok   bool
	}{
		{"seq 0", func(e *Entry) { e.Seq = 0 }, false},
		{"zero time", func(e *Entry) { e.Time = time.Time{} }, false},
		{"epoch", func(e *Entry) { e.Time = time.Unix(0, 0) }, false},
		{"nanoseconds", func(e *Entry) { e.Time = e.Time.Add(1) }, false},
		{"year 10000", func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"local time", func(e *Entry) { e.Time = e.Time.In(time.FixedZone("X", -7200)) }, true},
		{"no actor", func(e *Entry) { e.Actor = "" }, false},
		{"long actor", func(e *Entry) { e.Actor = strings.Repeat("a", 129) }, false},
		{"max actor", func(e *Entry) { e.Actor = strings.Repeat("a", 128) }, true},
		{"actor with newline", func(e *Entry) { e.Actor = "a\nb" }, false},
		{"actor with space", func(e *Entry) { e.Actor = "CN=ops team" }, true},
		{"invalid UTF-8", func(e *Entry) { e.Tenant = "\xff" }, false},
		{"bidi override", func(e *Entry) { e.Detail = "a\u202eb" }, false},
		{"NUL", func(e *Entry) { e.Request = "a\x00" }, false},
		{"tab", func(e *Entry) { e.Detail = "a\tb" }, false},
		{"unicode detail", func(e *Entry) { e.Detail = "clé tournée ✓" }, true},
		{"max detail", func(e *Entry) { e.Detail = strings.Repeat("d", 1024) }, true},
		{"long detail", func(e *Entry) { e.Detail = strings.Repeat("d", 1025) }, false},
		{"long tenant", func(e *Entry) { e.Tenant = strings.Repeat("t", 65) }, false},
		{"long key", func(e *Entry) { e.Key = strings.Repeat("k", 129) }, false},
		{"long remote", func(e *Entry) { e.Remote = strings.Repeat("r", 129) }, false},
		{"long request", func(e *Entry) { e.Request = strings.Repeat("q", 129) }, false},
		{"no action", func(e *Entry) { e.Action = "" }, false},
		{"one-word action", func(e *Entry) { e.Action = "rotate" }, false},
		{"upper-case action", func(e *Entry) { e.Action = "key.Rotate" }, false},
		{"empty action word", func(e *Entry) { e.Action = "key..rotate" }, false},
		{"trailing dot", func(e *Entry) { e.Action = "key.rotate." }, false},
		{"underscore action", func(e *Entry) { e.Action = "key.bulk_rotate" }, false},
		{"new action", func(e *Entry) { e.Action = "tenant.create" }, true},
		{"three-word action", func(e *Entry) { e.Action = "key.backup.restore-2" }, true},
		{"long action", func(e *Entry) { e.Action = Action("a." + strings.Repeat("b", 63)) }, false},
		{"no role", func(e *Entry) { e.Role = "" }, true},
		{"bad role", func(e *Entry) { e.Role = "Operator" }, false},
		{"long role", func(e *Entry) { e.Role = strings.Repeat("r", 33) }, false},
		{"unknown outcome", func(e *Entry) { e.Outcome = "maybe" }, false},
		{"no outcome", func(e *Entry) { e.Outcome = "" }, false},
		{"ok with reason", func(e *Entry) { e.Reason = "forbidden" }, false},
		{"refused without reason", func(e *Entry) { e.Outcome = OutcomeRefused }, false},
		{"refused", func(e *Entry) { e.Outcome, e.Reason = OutcomeRefused, "rate_limited" }, true},
		{"error", func(e *Entry) { e.Outcome, e.Reason = OutcomeError, "hsm.unavailable" }, true},
		{"bad reason", func(e *Entry) { e.Outcome, e.Reason = OutcomeRefused, "Forbidden!" }, false},
		{"long reason", func(e *Entry) { e.Outcome, e.Reason = OutcomeRefused, strings.Repeat("r", 65) }, false},
		{"count", func(e *Entry) { e.Count = ^uint64(0) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			tc.edit(&e)
			err := e.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tc.ok)
			}
			if _, err2 := e.Encode(); (err2 == nil) != tc.ok {
				t.Errorf("Encode() error = %v, want ok %v", err2, tc.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "audit: ") {
				t.Errorf("Validate() error %q, want the audit: prefix", err)
			}
		})
	}
}

func TestChain(t *testing.T) {
	e := katEntries()[0]
	e.Seq, e.Prev, e.Hash = 77, [32]byte{1}, [32]byte{2} // ignored
	e.Time = time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))
	c, err := Chain(Head{}, e)
	if err != nil {
		t.Fatal(err)
	}
	if c.Seq != 1 || c.Prev != ([32]byte{}) || c.Time != time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC) {
		t.Errorf("Chain(empty, e) = seq %d, prev %x, time %v, want 1, zeros, 12:00:00.123456 UTC", c.Seq, c.Prev, c.Time)
	}
	leaf, _ := LeafHash(c)
	if c.Hash != ChainHash([32]byte{}, leaf) {
		t.Errorf("Chain(empty, e).Hash = %x, want ChainHash(zeros, LeafHash)", c.Hash)
	}
	d, err := Chain(c.Head(), katEntries()[1])
	if err != nil || d.Seq != 2 || d.Prev != c.Hash {
		t.Errorf("Chain(head 1, e) = seq %d, prev %x, %v, want 2, %x", d.Seq, d.Prev, err, c.Hash)
	}
	bad := katEntries()[1]
	bad.Actor = ""
	if _, err := Chain(c.Head(), bad); err == nil {
		t.Error("Chain(invalid entry) error = nil, want error")
	}
	if _, err := Chain(Head{Seq: ^uint64(0)}, katEntries()[1]); err == nil {
		t.Error("Chain(after seq 2^64-1) error = nil, want error")
	}
}

func TestStateRoundTrip(t *testing.T) {
	var s State
	var all []Entry
	for i := 1; i <= 70; i++ {
		blob, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		// A store reloads its state before every append.
		if s, err = ParseState(blob); err != nil {
			t.Fatalf("ParseState(state of size %d) error = %v", i-1, err)
		}
		before := s
		e, err := s.Append(sampleEntry(i))
		if err != nil {
			t.Fatal(err)
		}
		if before.Size() != uint64(i-1) {
			t.Fatalf("Append changed the copy it was made from: size %d", before.Size())
		}
		all = append(all, e)
	}
	r, err := Verify(testOrigin, nil, nil, entriesOf(all))
	if err != nil || r.Root != s.Root() || r.Head != s.Head() {
		t.Fatalf("Verify(entries appended through reloaded states) = %+v, %v, want root %x", r, err, s.Root())
	}
	// Failed appends change nothing.
	bad := sampleEntry(71)
	bad.Action = "bogus"
	if _, err := s.Append(bad); err == nil || s.Size() != 70 || s.Root() != r.Root {
		t.Errorf("Append(invalid) = %v, size %d, want an error and no change", err, s.Size())
	}

	blob, _ := s.MarshalBinary()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version 2", append([]byte{2}, blob[1:]...)},
		{"truncated", blob[:len(blob)-1]},
		{"trailing byte", append(blob, 0)},
		{"size of another shape", func() []byte { b := append([]byte(nil), blob...); b[8]++; return b }()},
		{"empty log with a head", append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 31)...)},
	} {
		if tc.name == "empty log with a head" {
			tc.data = append(tc.data, 1)
		}
		if _, err := ParseState(tc.data); err == nil {
			t.Errorf("ParseState(%s) error = nil, want error", tc.name)
		}
	}
}
