package ceremony_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/ceremony"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/transcript"
	"github.com/strongroom-kms/strongroom/internal/world"
)

func fileNames(out *ceremony.Output) []string {
	var n []string
	for k := range out.Files {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func TestQuorumRequired(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	pl := makePlan(t, w, plan.Release, "quorum-1", "eu1", "us1")
	otherPlan := makePlan(t, w, plan.Release, "quorum-other", "eu1")

	cases := []struct {
		name      string
		approvals []plan.NamedApproval
		want      []string
	}{
		{"one approval", approve(t, w, pl, "alice"), []string{"quorum not met", "1 of 2"}},
		{"none", nil, []string{"quorum not met", "0 of 2"}},
		{"outsider", append(approve(t, w, pl, "alice"), approve(t, w, pl, "mallory")...),
			[]string{"quorum not met", "mallory.approval: signed by a key that is not an officer of this plan"}},
		{"other plan", append(approve(t, w, pl, "alice"), approve(t, w, otherPlan, "bob")...),
			[]string{"quorum not met", "bob.approval", "different plan"}},
		{"same officer twice", append(approve(t, w, pl, "alice"), approve(t, w, pl, "alice")...),
			[]string{"quorum not met", "duplicate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := ceremony.Run(ctx, w.Primary.HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: c.approvals}, clock())
			if err == nil || out != nil {
				t.Fatalf("Run() = %v, %v; want a refusal", out, err)
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Run() error = %q, want it to contain %q", err, s)
				}
			}
		})
	}
	// The refusals recorded nothing: the same release id runs with quorum.
	out, err := ceremony.Run(ctx, w.Primary.HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approve(t, w, pl, "alice", "bob")}, clock())
	if err != nil {
		t.Fatalf("Run(quorum) error = %v", err)
	}
	want := []string{"quorum-1.eu1.bundle", "quorum-1.primary", "quorum-1.transcript", "quorum-1.us1.bundle"}
	if got := fileNames(out); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Run() files = %v, want %v", got, want)
	}
}

func TestReleaseIDNeverIssuedTwice(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	pl := makePlan(t, w, plan.Release, "once", "eu1")
	in := ceremony.Inputs{Plan: pl.Marshal(), Approvals: approve(t, w, pl, "bob", "carol")}
	dir := t.TempDir()
	out, err := ceremony.Run(ctx, w.Primary.HSM, in, clock())
	if err != nil {
		t.Fatal(err)
	}
	if err := ceremony.Write(dir, out); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir) // even without the output, the ledger remembers
	if _, err := ceremony.Run(ctx, w.Primary.HSM, in, clock()); !errors.Is(err, ceremony.ErrIssued) {
		t.Errorf("second Run(same release id) error = %v, want ErrIssued", err)
	}
	// A new plan (another digest) with the same id is refused too.
	pl2 := makePlan(t, w, plan.Release, "once", "eu1", "us1")
	if _, err := ceremony.Run(ctx, w.Primary.HSM, ceremony.Inputs{Plan: pl2.Marshal(), Approvals: approve(t, w, pl2, "alice", "bob")}, clock()); !errors.Is(err, ceremony.ErrIssued) {
		t.Errorf("Run(new plan, same id) error = %v, want ErrIssued", err)
	}
}

// runRelease runs a ceremony for the regions, approved by alice and carol,
// and returns its output.
func runRelease(t *testing.T, w *world.World, id string, regions ...string) *ceremony.Output {
	t.Helper()
	r, err := w.Release(context.Background(), id, world.Spec{Regions: regions, Officers: planOfficers, Approvers: []string{"alice", "carol"}})
	if err != nil {
		t.Fatalf("Run(%s) error = %v", id, err)
	}
	return r.Output
}

func TestVerifyAndTamper(t *testing.T) {
	w := getWorld(t)
	out := runRelease(t, w, "tamper", "eu1", "us1")
	if n := ceremony.VerifyFiles(io.Discard, w.Primary.Public, out.Files, false); n != 0 {
		var buf bytes.Buffer
		ceremony.VerifyFiles(&buf, w.Primary.Public, out.Files, false)
		t.Fatalf("VerifyFiles(intact output) = %d failures:\n%s", n, buf.String())
	}
	if n := ceremony.VerifyFiles(io.Discard, otherPrimary(t).Public, out.Files, false); n != len(out.Files) {
		t.Errorf("VerifyFiles(another primary) = %d failures, want %d", n, len(out.Files))
	}
	for _, name := range []string{"tamper.eu1.bundle", "tamper.transcript"} {
		file := out.Files[name]
		block, _ := pem.Decode(file)
		der := block.Bytes
		// Every position of small files; 512 spread over larger ones.
		step := max(1, len(der)/512)
		tested := 0
		for i := 0; i < len(der); i += step {
			bad := bytes.Clone(der)
			bad[i] ^= 0x01
			files := map[string][]byte{name: pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: bad})}
			if ceremony.VerifyFiles(io.Discard, w.Primary.Public, files, false) != 1 {
				t.Fatalf("%s with DER byte %d altered verified", name, i)
			}
			tested++
		}
		if tested < 256 {
			t.Errorf("%s: only %d positions tested", name, tested)
		}
		t.Logf("%s: %d of %d byte positions altered, each refused", name, tested, len(der))
	}
	// Even signed by the primary, a release bundle cannot claim another
	// issue time than its plan's (it would reorder the releases).
	b, _, err := release.Verify(out.Files["tamper.eu1.bundle"], w.Primary.Public)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := w.Primary.HSM.SigningKey(context.Background(), enroll.LabelPrimarySigning)
	if err != nil {
		t.Fatal(err)
	}
	b.Issued = b.Issued.Add(365 * 24 * time.Hour)
	der, err := b.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := release.Verify(release.Encode(der), w.Primary.Public); err == nil || !strings.Contains(err.Error(), "which its plan (created 2026-11-27T10:00:00Z) contradicts") {
		t.Errorf("Verify(bundle re-signed with a later issue time) error = %v", err)
	}
	// A bundle paired with a transcript of another ceremony of the same
	// release id cannot exist (ids are unique), but a bundle whose transcript
	// is given must be recorded in it.
	other := runRelease(t, w, "tamper2", "eu1")
	mixed := map[string][]byte{"tamper.eu1.bundle": out.Files["tamper.eu1.bundle"], "x.transcript": other.Files["tamper2.transcript"]}
	if n := ceremony.VerifyFiles(io.Discard, w.Primary.Public, mixed, false); n != 0 {
		t.Errorf("VerifyFiles(bundle + transcript of another release) = %d failures, want 0 (not cross-checked)", n)
	}
}

func TestOpenBundles(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	out := runRelease(t, w, "open", "eu1", "us1")
	eu1, us1 := out.Files["open.eu1.bundle"], out.Files["open.us1.bundle"]

	r1, err := release.Open(ctx, w.Regions["eu1"].HSM, eu1, release.Trust{Primary: w.Primary.Public, Region: "eu1"})
	if err != nil {
		t.Fatalf("eu1 Open(eu1 bundle) error = %v", err)
	}
	for name, k := range map[string]secret.Key{release.SecretKDFSeed: r1.Seed, release.SecretKDFSalt: r1.Salt, release.SecretTWK: r1.TWK} {
		if c := release.Commit("open", "eu1", name, k); c != r1.Commitments[name] {
			t.Errorf("%s does not match its commitment", name)
		}
	}
	if r1.Iterations != plan.MinIterations || r1.ID != "open" {
		t.Errorf("release = %s with %d iterations", r1.ID, r1.Iterations)
	}
	r2, err := release.Open(ctx, w.Regions["us1"].HSM, us1, release.Trust{Primary: w.Primary.Public, Region: "us1"})
	if err != nil {
		t.Fatalf("us1 Open(us1 bundle) error = %v", err)
	}
	checkIsolated(t, r1, r2)

	// us1 cannot open eu1's bundle: not as us1, and not by claiming eu1.
	if _, err := release.Open(ctx, w.Regions["us1"].HSM, eu1, release.Trust{Primary: w.Primary.Public, Region: "us1"}); err == nil {
		t.Error("us1 Open(eu1 bundle) as us1 succeeded")
	}
	if _, err := release.Open(ctx, w.Regions["us1"].HSM, eu1, release.Trust{Primary: w.Primary.Public, Region: "eu1"}); err == nil || !strings.Contains(err.Error(), "this HSM's key is") {
		t.Errorf("us1 HSM Open(eu1 bundle) claiming eu1 error = %v, want a key mismatch", err)
	}
	// A bundle signed by another primary is refused.
	if _, err := release.Open(ctx, w.Regions["eu1"].HSM, eu1, release.Trust{Primary: otherPrimary(t).Public, Region: "eu1"}); err == nil {
		t.Error("Open with another pinned primary succeeded")
	}
	checkPrimaryCopySealed(t, w, out.Files["open.primary"])
}

// checkIsolated checks that two regions' openings of a release share no
// secret, that no secret equals another, and that a tenant secret wrapped
// under the first region's TWK does not unwrap under the second's.
func checkIsolated(t *testing.T, a, b *release.Release) {
	t.Helper()
	keys := map[string]secret.Key{
		a.Region + " seed": a.Seed, a.Region + " salt": a.Salt, a.Region + " twk": a.TWK,
		b.Region + " seed": b.Seed, b.Region + " salt": b.Salt, b.Region + " twk": b.TWK,
	}
	seen := map[string]string{}
	for name, k := range keys {
		if other, ok := seen[string(k.Bytes())]; ok {
			t.Errorf("%s equals %s", name, other)
		}
		seen[string(k.Bytes())] = name
	}
	for name, c := range a.Commitments {
		if b.Commitments[name] == c {
			t.Errorf("%s and %s commit to the same %s", a.Region, b.Region, name)
		}
	}
	ref := tenant.Ref{Tenant: "acme", Type: "data", Version: 1, Release: a.ID, Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2}
	s, _ := secret.New(bytes.Repeat([]byte{0x5a}, secret.Size))
	wrapped, err := tenant.Wrap(a.TWK, ref, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tenant.Unwrap(a.TWK, ref, wrapped); err != nil || !got.Equal(s) {
		t.Fatalf("%s: Unwrap(own TWK) = %v", a.Region, err)
	}
	if _, err := tenant.Unwrap(b.TWK, ref, wrapped); !errors.Is(err, tenant.ErrUnwrap) {
		t.Errorf("a tenant secret wrapped in %s unwrapped in %s: error = %v, want ErrUnwrap", a.Region, b.Region, err)
	}
}

// checkReexport exports release want.ID from its primary copy to the region
// that opened want, and checks that the region gets the very secrets (and
// commitments) it had: the derivation is the same at the ceremony and at an
// export, whichever the primary HSM's backend.
func checkReexport(t *testing.T, w *world.World, primaryCopy []byte, want *release.Release) {
	t.Helper()
	ctx := context.Background()
	again, err := w.Export(ctx, want.ID, primaryCopy, world.Spec{Regions: []string{want.Region}, Officers: planOfficers, Quorum: 2})
	if err != nil {
		t.Fatalf("Export(%s to %s) error = %v", want.ID, want.Region, err)
	}
	got, err := release.Open(ctx, w.Regions[want.Region].HSM, again.Bundles[want.Region], w.Trust(want.Region))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range release.SecretNames {
		if got.Commitments[name] != want.Commitments[name] {
			t.Errorf("%s's %s from the export differs from the release ceremony's", want.Region, name)
		}
	}
	if !got.Seed.Equal(want.Seed) || !got.Salt.Equal(want.Salt) || !got.TWK.Equal(want.TWK) {
		t.Errorf("%s's secrets from the export differ from the release ceremony's", want.Region)
	}
}

// checkPrimaryCopySealed checks that the primary's copy of a release opens
// nowhere, not even in the primary HSM: Open refuses it, the primary's key
// refuses to decrypt its RWK, and refuses to unwrap it into an exportable
// key.
func checkPrimaryCopySealed(t *testing.T, w *world.World, copy []byte) {
	t.Helper()
	ctx := context.Background()
	trust := release.Trust{Primary: w.Primary.Public, Region: release.PrimaryCopy}
	if _, err := release.Open(ctx, w.Primary.HSM, copy, trust); err == nil || !strings.Contains(err.Error(), "never opened outside the primary HSM") {
		t.Errorf("primary Open(primary copy) error = %v, want a refusal", err)
	}
	b, _, err := release.Verify(copy, w.Primary.Public)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := w.Primary.HSM.EncryptionKey(ctx, enroll.LabelPrimaryEncryption)
	if err != nil {
		t.Fatal(err)
	}
	if ek.Use() != hsm.UseUnwrapOnly {
		t.Errorf("the primary encryption key's use = %v, want unwrap-only", ek.Use())
	}
	if _, err := ek.Decrypt(nil, b.RWK, b.OAEPHash.Options()); !errors.Is(err, hsm.ErrNotPermitted) {
		t.Errorf("primary key Decrypt(RWK of the primary copy) error = %v, want ErrNotPermitted", err)
	}
	if _, err := ek.Unwrap(ctx, b.RWK, b.OAEPHash, hsm.KeySpec{Ephemeral: true, Exportable: true}); !errors.Is(err, hsm.ErrNotPermitted) {
		t.Errorf("primary key Unwrap(RWK, exportable) error = %v, want ErrNotPermitted", err)
	}
	// Unwrapped as the export ceremony does, the RWK cannot be digested
	// or exported either: it is not exportable.
	rwk, err := ek.Unwrap(ctx, b.RWK, b.OAEPHash, hsm.KeySpec{Ephemeral: true, Derivable: true})
	if err != nil {
		t.Fatalf("primary key Unwrap(RWK, derivable) error = %v", err)
	}
	defer rwk.Destroy(ctx)
	if _, err := rwk.Digest(ctx, nil); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("Digest(unwrapped RWK) error = %v, want ErrNotExportable", err)
	}
	if _, err := rwk.WrapRSA(ctx, w.Primary.Public.Encryption, w.Primary.HSM.Info().OAEPHashes[0]); !errors.Is(err, hsm.ErrNotExportable) {
		t.Errorf("WrapRSA(unwrapped RWK) error = %v, want ErrNotExportable", err)
	}
}

func TestLateRegionExport(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	out := runRelease(t, w, "late", "eu1")
	ap1 := enrollRegion(t, w, "ap1")

	pl := makePlan(t, w, plan.Export, "late", "ap1")
	in := ceremony.Inputs{Plan: pl.Marshal(), Approvals: approve(t, w, pl, "alice"), PrimaryCopy: out.Files["late.primary"]}
	if _, err := ceremony.Export(ctx, w.Primary.HSM, in, clock()); err == nil || !strings.Contains(err.Error(), "quorum not met") {
		t.Fatalf("Export(one approval) error = %v, want quorum not met", err)
	}
	in.Approvals = approve(t, w, pl, "bob", "carol")
	exp, err := ceremony.Export(ctx, w.Primary.HSM, in, clock())
	if err != nil {
		t.Fatalf("Export() error = %v", err)
	}
	bundle := exp.Files["late.ap1.bundle"]
	if bundle == nil {
		t.Fatalf("Export() files = %v", fileNames(exp))
	}
	r, err := release.Open(ctx, ap1.HSM, bundle, release.Trust{Primary: w.Primary.Public, Region: "ap1"})
	if err != nil {
		t.Fatalf("ap1 Open(exported bundle) error = %v", err)
	}
	orig, err := release.Open(ctx, w.Regions["eu1"].HSM, out.Files["late.eu1.bundle"], release.Trust{Primary: w.Primary.Public, Region: "eu1"})
	if err != nil {
		t.Fatal(err)
	}
	checkIsolated(t, orig, r)
	if r.Kind != release.KindExport || !r.Issued.Equal(orig.Issued) {
		t.Errorf("export: kind %d issued %s; the release was issued %s", r.Kind, r.Issued, orig.Issued)
	}
	// The export plan ran once: the ledger refuses it again.
	if _, err := ceremony.Export(ctx, w.Primary.HSM, in, clock()); !errors.Is(err, ceremony.ErrIssued) || !strings.Contains(err.Error(), "export plan") {
		t.Errorf("Export(same plan again) error = %v, want ErrIssued", err)
	}
	// Derivation is deterministic: exporting the release to eu1, which had
	// it from the ceremony (a region re-installing it), gives eu1 the same
	// secrets the ceremony gave it.
	checkReexport(t, w, out.Files["late.primary"], orig)
	all := map[string][]byte{}
	for n, f := range out.Files {
		all[n] = f
	}
	for n, f := range exp.Files {
		all[n] = f
	}
	var buf bytes.Buffer
	if n := ceremony.VerifyFiles(&buf, w.Primary.Public, all, false); n != 0 {
		t.Errorf("VerifyFiles(release + export) = %d failures:\n%s", n, buf.String())
	}
	// Exports need an issued release and its real primary copy.
	never := makePlan(t, w, plan.Export, "never-issued", "ap1")
	if _, err := ceremony.Export(ctx, w.Primary.HSM, ceremony.Inputs{Plan: never.Marshal(), Approvals: approve(t, w, never, "alice", "bob"), PrimaryCopy: out.Files["late.primary"]}, clock()); err == nil {
		t.Error("Export(never issued release) succeeded")
	}
	pl2 := makePlan(t, w, plan.Export, "late", "us1")
	bad := ceremony.Inputs{Plan: pl2.Marshal(), Approvals: approve(t, w, pl2, "alice", "bob"), PrimaryCopy: out.Files["late.eu1.bundle"]}
	if _, err := ceremony.Export(ctx, w.Primary.HSM, bad, clock()); err == nil || !strings.Contains(err.Error(), "not the primary copy") {
		t.Errorf("Export with a region bundle as the primary copy error = %v", err)
	}
}

// TestApprovalsExpire: a ceremony runs a plan made within
// ceremony.ApprovalMaxAge before its clock (and ApprovalMaxSkew after), and
// counts only approvals signed in that window and after the plan was made.
// (plan.TestCheckQuorumAt tests the window's bounds.)
func TestApprovalsExpire(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	pl := makePlan(t, w, plan.Release, "stale", "eu1") // made at t0
	sign := func(at time.Time, names ...string) []plan.NamedApproval {
		var out []plan.NamedApproval
		for _, n := range names {
			out = append(out, plan.NamedApproval{Source: n + ".approval", Data: plan.Approve(w.Officers[n].Signer, pl, at)})
		}
		return out
	}
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	ceremonyAt := t0.Add(3 * 24 * time.Hour)
	for name, c := range map[string]struct {
		approvals []plan.NamedApproval
		clock     time.Time
		want      string
	}{
		"before the plan":      {sign(t0.Add(-time.Hour), "alice", "bob"), ceremonyAt, "alice.approval: the approval is too old, or from the future: signed 2026-11-27T09:00:00Z, before the plan was made"},
		"future":               {sign(ceremonyAt.Add(ceremony.ApprovalMaxSkew+time.Second), "alice", "bob"), ceremonyAt, "after the ceremony's clock"},
		"stale plan":           {sign(t0.Add(8*24*time.Hour), "alice", "bob"), t0.Add(8 * 24 * time.Hour), "the plan was made 2026-11-27T10:00:00Z, not within 168h0m0s before this ceremony's clock"},
		"plan from the future": {sign(t0, "alice", "bob"), t0.Add(-ceremony.ApprovalMaxSkew - time.Second), "the plan was made 2026-11-27T10:00:00Z"},
	} {
		_, err := ceremony.Run(ctx, w.Primary.HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: c.approvals}, at(c.clock))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Run() error = %v, want %q", name, err, c.want)
		}
	}
	// Within the window (the officers' clocks a little ahead) they count,
	// and the refusals above burned nothing.
	fresh := sign(ceremonyAt.Add(ceremony.ApprovalMaxSkew), "alice", "bob")
	if _, err := ceremony.Run(ctx, w.Primary.HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: fresh}, at(ceremonyAt)); err != nil {
		t.Errorf("Run(fresh approvals) error = %v", err)
	}
}

func TestWriteAllOrNothing(t *testing.T) {
	w := getWorld(t)
	out := runRelease(t, w, "write", "eu1")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "write.primary"), []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ceremony.Write(dir, out); err == nil {
		t.Fatal("Write over an existing file succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("a refused Write left %d entries, want only the one in the way", len(entries))
	}
	os.Remove(filepath.Join(dir, "write.primary"))
	if err := ceremony.Write(dir, out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "write.transcript"))
	block, _ := pem.Decode(data)
	l, err := transcript.Parse(block.Bytes, w.Primary.Public.Signing)
	if err != nil {
		t.Fatalf("transcript.Parse(written) error = %v", err)
	}
	var events []string
	for _, e := range l.Entries {
		events = append(events, e.Event)
	}
	want := "plan.checked region.verified approval.accepted approval.accepted quorum.met ledger.recorded secret.generated secret.generated secret.generated secret.derived secret.derived secret.derived rwk.generated bundle.sealed rwk.generated bundle.sealed transcript.signed"
	if strings.Join(events, " ") != want {
		t.Errorf("transcript events = %s\nwant %s", strings.Join(events, " "), want)
	}
	var buf bytes.Buffer
	l.Print(&buf)
	if strings.Contains(buf.String(), "BEGIN") || !strings.Contains(buf.String(), "commitment=") {
		t.Errorf("transcript print:\n%s", buf.String())
	}
}

func TestNotAPrimary(t *testing.T) {
	w := getWorld(t)
	pl := makePlan(t, w, plan.Release, "wrong-hsm", "eu1")
	if _, err := ceremony.Run(context.Background(), w.Regions["eu1"].HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approve(t, w, pl, "alice", "bob")}, clock()); err == nil || !strings.Contains(err.Error(), "not an initialized primary") {
		t.Errorf("Run on a regional HSM error = %v", err)
	}
	if _, err := ceremony.Run(context.Background(), otherPrimary(t).HSM, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approve(t, w, pl, "alice", "bob")}, clock()); err == nil || !strings.Contains(err.Error(), "is for primary signing key") {
		t.Errorf("Run on another primary error = %v", err)
	}
	// A primary whose encryption key may decrypt (made by hand, or by an
	// older release) would let its PIN holder read the primary copies.
	ctx := context.Background()
	h, err := soft.Open(ctx, filepath.Join(t.TempDir(), "decrypting-primary"), []byte("ceremony test"), soft.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.GenerateEncryptionKey(ctx, enroll.LabelPrimaryEncryption, hsm.UseDecrypt); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GenerateSigningKey(ctx, enroll.LabelPrimarySigning); err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.Run(ctx, h, ceremony.Inputs{Plan: pl.Marshal(), Approvals: approve(t, w, pl, "alice", "bob")}, clock()); err == nil || !strings.Contains(err.Error(), "the primary encryption key may decrypt") {
		t.Errorf("Run on a primary whose key may decrypt error = %v", err)
	}
}

// TestWriteNewDirectory: into a directory that does not exist yet, the
// files appear at once (a renamed temporary directory), leaving nothing else.
func TestWriteNewDirectory(t *testing.T) {
	w := getWorld(t)
	out := runRelease(t, w, "write-new", "eu1")
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	if err := ceremony.Write(dir, out); err != nil {
		t.Fatalf("Write(new dir) error = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(out.Files) {
		t.Errorf("Write(new dir) made %d files, want %d", len(entries), len(out.Files))
	}
	for n, data := range out.Files {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %v, or other content", n, err)
		}
	}
	if left, _ := os.ReadDir(parent); len(left) != 1 {
		t.Errorf("the parent holds %d entries, want only the output directory", len(left))
	}
	if err := ceremony.Write(dir, out); err == nil {
		t.Error("a second Write of the same files succeeded")
	}
}

// TestWriteTrailingSlash: "out/" names the directory out, new or existing,
// as a shell user types it.
func TestWriteTrailingSlash(t *testing.T) {
	w := getWorld(t)
	out := runRelease(t, w, "write-slash", "eu1")
	parent := t.TempDir()
	dir := filepath.Join(parent, "out") + "/"
	if err := ceremony.CheckOutput(dir); err != nil {
		t.Fatalf("CheckOutput(%q) = %v", dir, err)
	}
	if err := ceremony.Write(dir, out); err != nil {
		t.Fatalf("Write(%q) = %v", dir, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(parent, "out")); len(entries) != len(out.Files) {
		t.Errorf("Write(%q) made %d files, want %d", dir, len(entries), len(out.Files))
	}
	if left, _ := os.ReadDir(parent); len(left) != 1 {
		t.Errorf("the parent holds %d entries, want only the output directory", len(left))
	}
}

// TestCheckOutput: what Write could not write is refused before a ceremony.
func TestCheckOutput(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ceremony.CheckOutput(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("CheckOutput(a file) = %v, want it refused", err)
	}
	if err := ceremony.CheckOutput(filepath.Join(file, "out")); err == nil {
		t.Error("CheckOutput(under a file) = nil, want it refused")
	}
	if err := ceremony.CheckOutput(parent); err != nil {
		t.Errorf("CheckOutput(an existing directory) = %v", err)
	}
	if left, _ := os.ReadDir(parent); len(left) != 1 {
		t.Errorf("CheckOutput left %d entries, want none of its own", len(left))
	}
}
