package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// The conformance tests of bring-your-own-key: tenant settings, export keys
// and upload certificates. Restoration and the destruction watch are in
// restore.go.

func testDerivationOptOut(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	if !tn.DerivationOptOut {
		t.Fatal("NewTenant's default DerivationOptOut is false, want true")
	}
	for _, allowed := range []bool{false, false, true} {
		got, err := s.SetDerivationOptOut(ctx, tn.ID, allowed, rec)
		want := tn
		want.DerivationOptOut = allowed
		if err != nil || !equalTenant(got, want) {
			t.Fatalf("SetDerivationOptOut(%v) = %+v, %v, want %+v", allowed, got, err, want)
		}
		if got, err := s.TenantByID(ctx, tn.ID); err != nil || !equalTenant(got, want) {
			t.Errorf("TenantByID() after SetDerivationOptOut(%v) = %+v, %v, want %+v", allowed, got, err, want)
		}
	}
	if _, err := s.SetDerivationOptOut(ctx, tn.ID, false, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TenantByID(ctx, other.ID); !equalTenant(got, other) {
		t.Errorf("SetDerivationOptOut changed another tenant: %+v, want %+v", got, other)
	}
	_, err := s.SetDerivationOptOut(ctx, tenant.NewID(), true, rec)
	wantErr(t, "SetDerivationOptOut(unknown tenant)", err, store.ErrNotFound)
	_, err = s.SetDerivationOptOut(ctx, "acme", true, rec)
	wantErr(t, "SetDerivationOptOut(invalid ID)", err, store.ErrInvalid)
}

func equalExportKey(a, b tenant.ExportKey) bool {
	return a.Tenant == b.Tenant && a.Release == b.Release && bytes.Equal(a.Wrapped, b.Wrapped) && a.Created.Equal(b.Created)
}

func fmtExportKey(k tenant.ExportKey) string {
	return fmt.Sprintf("{%s rel=%s wrapped=%d bytes (sha256 %x…) created=%s}", k.Tenant, k.Release, len(k.Wrapped),
		sha256.Sum256(k.Wrapped), k.Created.Format(time.RFC3339Nano))
}

func testExportKey(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	mustRelease(t, s, "r1")
	mustRelease(t, s, "r2")

	_, err := s.ExportKey(ctx, tn.ID)
	wantErr(t, "ExportKey(none yet)", err, store.ErrNotFound)
	_, err = s.ExportKey(ctx, tenant.NewID())
	wantErr(t, "ExportKey(unknown tenant)", err, store.ErrNotFound)
	_, err = s.ExportKey(ctx, "acme")
	wantErr(t, "ExportKey(invalid tenant ID)", err, store.ErrInvalid)

	zone := time.FixedZone("UTC-3", -3*3600)
	first := tenant.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: []byte("wrapped export key one"),
		Created: time.Date(2026, 3, 1, 6, 30, 0, 123456789, zone)}
	want := first
	want.Created = first.Created.UTC().Truncate(time.Microsecond)
	got, err := s.PutExportKey(ctx, first, rec)
	if err != nil || !equalExportKey(got, want) || got.Created.Location() != time.UTC {
		t.Fatalf("PutExportKey() = %s, %v, want %s", fmtExportKey(got), err, fmtExportKey(want))
	}
	if got, err := s.ExportKey(ctx, tn.ID); err != nil || !equalExportKey(got, want) || got.Created.Location() != time.UTC {
		t.Errorf("ExportKey() = %s, %v, want %s", fmtExportKey(got), err, fmtExportKey(want))
	}

	// First writer wins: a second key (another node, say) gets the first back.
	second := tenant.ExportKey{Tenant: tn.ID, Release: "r2", Wrapped: []byte("wrapped export key two"), Created: t0.Add(day)}
	if got, err := s.PutExportKey(ctx, second, rec); err != nil || !equalExportKey(got, want) {
		t.Errorf("PutExportKey(second key) = %s, %v, want the first %s", fmtExportKey(got), err, fmtExportKey(want))
	}
	if got, err := s.ExportKey(ctx, tn.ID); err != nil || !equalExportKey(got, want) {
		t.Errorf("ExportKey() after a second put = %s, %v, want the first %s", fmtExportKey(got), err, fmtExportKey(want))
	}
	_, err = s.ExportKey(ctx, other.ID)
	wantErr(t, "ExportKey(other tenant, none)", err, store.ErrNotFound)

	_, err = s.PutExportKey(ctx, tenant.ExportKey{Tenant: tenant.NewID(), Release: "r1", Wrapped: []byte("w"), Created: t0}, rec)
	wantErr(t, "PutExportKey(unknown tenant)", err, store.ErrNotFound)
	_, err = s.PutExportKey(ctx, tenant.ExportKey{Tenant: other.ID, Release: "r9", Wrapped: []byte("w"), Created: t0}, rec)
	wantErr(t, "PutExportKey(release not installed)", err, store.ErrNotFound)

	ok := tenant.ExportKey{Tenant: other.ID, Release: "r1", Wrapped: []byte("w"), Created: t0}
	for name, mod := range map[string]func(*tenant.ExportKey){
		"invalid tenant":  func(k *tenant.ExportKey) { k.Tenant = "other" },
		"invalid release": func(k *tenant.ExportKey) { k.Release = "" },
		"no wrapped":      func(k *tenant.ExportKey) { k.Wrapped = nil },
		"huge wrapped":    func(k *tenant.ExportKey) { k.Wrapped = make([]byte, store.MaxWrapped+1) },
		"zero Created":    func(k *tenant.ExportKey) { k.Created = time.Time{} },
	} {
		bad := ok
		mod(&bad)
		_, err := s.PutExportKey(ctx, bad, rec)
		wantErr(t, "PutExportKey("+name+")", err, store.ErrInvalid)
	}
	_, err = s.ExportKey(ctx, other.ID)
	wantErr(t, "ExportKey(after refused puts)", err, store.ErrNotFound)

	// The largest wrapped key fits; returned slices are copies.
	big := ok
	big.Wrapped = bytes.Repeat([]byte{0xa5}, store.MaxWrapped)
	got, err = s.PutExportKey(ctx, big, rec)
	if err != nil || !bytes.Equal(got.Wrapped, big.Wrapped) {
		t.Fatalf("PutExportKey(MaxWrapped bytes) = %d bytes, %v", len(got.Wrapped), err)
	}
	got.Wrapped[0] ^= 0xff
	big.Wrapped[1] ^= 0xff
	if again, _ := s.ExportKey(ctx, other.ID); again.Wrapped[0] != 0xa5 || again.Wrapped[1] != 0xa5 {
		t.Error("changing a returned or given export key's Wrapped changed the stored key")
	}
}

// testConcurrentExportKey: nodes making a tenant's export key at once all get
// the same one back.
func testConcurrentExportKey(t *testing.T, s *store.Store) {
	concurrentExportKey(t, s, s)
}

func concurrentExportKey(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	mustRelease(t, a, "r1")
	const n = 10
	got := make([]tenant.ExportKey, n)
	errs := atOnce(n, a, b, func(s *store.Store, i int) error {
		var err error
		got[i], err = s.PutExportKey(ctx, tenant.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: []byte(fmt.Sprint("key ", i)), Created: t0}, rec)
		return err
	})
	stored, err := a.ExportKey(ctx, tn.ID)
	if err != nil {
		t.Fatalf("ExportKey() error = %v", err)
	}
	for i := range n {
		if errs[i] != nil || !equalExportKey(got[i], stored) {
			t.Errorf("PutExportKey #%d = %s, %v, want the stored %s", i, fmtExportKey(got[i]), errs[i], fmtExportKey(stored))
		}
	}
}

func equalCert(a, b uploadcert.Cert) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && a.KeyLabel == b.KeyLabel && a.State == b.State &&
		bytes.Equal(a.CSR, b.CSR) && (a.CSR == nil) == (b.CSR == nil) &&
		bytes.Equal(a.Certificate, b.Certificate) && (a.Certificate == nil) == (b.Certificate == nil) &&
		a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter) && a.Created.Equal(b.Created) && a.Retired.Equal(b.Retired)
}

func fmtCert(c uploadcert.Cert) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{%s tenant=%s label=%q %s csr=%d bytes cert=%d bytes valid=%s..%s created=%s retired=%s}",
		c.ID, c.Tenant, c.KeyLabel, c.State, len(c.CSR), len(c.Certificate), f(c.NotBefore), f(c.NotAfter), f(c.Created), f(c.Retired))
}

func checkCert(t *testing.T, what string, got uploadcert.Cert, err error, want uploadcert.Cert) {
	t.Helper()
	if err != nil {
		t.Errorf("%s error = %v", what, err)
	} else if !equalCert(got, want) {
		t.Errorf("%s = %s, want %s", what, fmtCert(got), fmtCert(want))
	}
}

// Stand-ins for DER blobs: the store does not parse them.
var (
	csrDER  = []byte("\x30\x82csr")
	certDER = []byte("\x30\x82certificate")
)

func pendingCert(tenantID, label string, created time.Time) uploadcert.Cert {
	return uploadcert.Cert{Tenant: tenantID, KeyLabel: label, State: uploadcert.StatePending, CSR: csrDER, Created: created}
}

func activeCert(tenantID, label string, created time.Time) uploadcert.Cert {
	return uploadcert.Cert{Tenant: tenantID, KeyLabel: label, State: uploadcert.StateActive, Certificate: certDER,
		NotBefore: created, NotAfter: created.Add(365 * day), Created: created}
}

// maxCerts is the limit of live upload certificates in the tests that are
// not about it.
const maxCerts = 100

func mustCert(t *testing.T, s *store.Store, c uploadcert.Cert) uploadcert.Cert {
	t.Helper()
	got, err := s.CreateUploadCert(ctx, c, maxCerts, rec)
	if err != nil {
		t.Fatalf("CreateUploadCert(%q) error = %v", c.KeyLabel, err)
	}
	return got
}

func testUploadCerts(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	if cs, err := s.UploadCerts(ctx, tn.ID); err != nil || len(cs) != 0 {
		t.Fatalf("UploadCerts() on a fresh tenant = %v, %v, want none", cs, err)
	}

	// Pending (CA-signed flow), with a generated ID.
	p := pendingCert(tn.ID, "strongroom/acme/upload-1", time.Date(2026, 3, 1, 9, 30, 0, 999, time.UTC))
	pc, err := s.CreateUploadCert(ctx, p, maxCerts, rec)
	wantP := p
	wantP.ID, wantP.Created = pc.ID, time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC) // 999 ns truncated
	if err != nil || store.ValidID("upload certificate", pc.ID) != nil {
		t.Fatalf("CreateUploadCert(pending) = %s, %v, want a generated ID", fmtCert(pc), err)
	}
	checkCert(t, "CreateUploadCert(pending)", pc, nil, wantP)
	got, err := s.UploadCert(ctx, tn.ID, pc.ID)
	checkCert(t, "UploadCert(pending)", got, err, wantP)

	// Active (self-signed flow), with a given UUID, created later.
	a := activeCert(tn.ID, "strongroom/acme/upload-2", t0.Add(day))
	a.ID = "0b7a3c2e-5f1d-4a8b-9c6d-1e2f3a4b5c6d"
	ac, err := s.CreateUploadCert(ctx, a, maxCerts, rec)
	checkCert(t, "CreateUploadCert(active)", ac, err, a)
	// Another at the same time: newest first, then by ID.
	b := activeCert(tn.ID, "strongroom/acme/upload-3", t0.Add(day))
	b.ID = "00000000000000000000000000000001"
	bc := mustCert(t, s, b)
	oc := mustCert(t, s, pendingCert(other.ID, "strongroom/other/upload-1", t0.Add(2*day)))

	cs, err := s.UploadCerts(ctx, tn.ID)
	if err != nil || len(cs) != 3 {
		t.Fatalf("UploadCerts() = %d certificates, %v, want 3", len(cs), err)
	}
	for i, want := range []uploadcert.Cert{bc, ac, pc} {
		checkCert(t, fmt.Sprintf("UploadCerts()[%d]", i), cs[i], nil, want)
	}

	// Another tenant's certificate is not found through this tenant.
	_, err = s.UploadCert(ctx, tn.ID, oc.ID)
	wantErr(t, "UploadCert(other tenant's)", err, store.ErrNotFound)
	_, err = s.UploadCert(ctx, tn.ID, tenant.NewID())
	wantErr(t, "UploadCert(missing)", err, store.ErrNotFound)
	_, err = s.UploadCerts(ctx, tenant.NewID())
	wantErr(t, "UploadCerts(unknown tenant)", err, store.ErrNotFound)
	_, err = s.ActivateUploadCert(ctx, tn.ID, oc.ID, certDER, t0, t0.Add(day), rec)
	wantErr(t, "ActivateUploadCert(other tenant's)", err, store.ErrNotFound)
	_, err = s.RetireUploadCert(ctx, tn.ID, oc.ID, t0, rec)
	wantErr(t, "RetireUploadCert(other tenant's)", err, store.ErrNotFound)
	if got, _ := s.UploadCert(ctx, other.ID, oc.ID); got.State != uploadcert.StatePending {
		t.Errorf("refused calls through another tenant changed its certificate: %s", fmtCert(got))
	}

	// Activate the pending one.
	nb, na := t0.Add(time.Hour).Add(500*time.Nanosecond), t0.Add(400*day)
	act, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, certDER, nb, na, rec)
	wantA := wantP
	wantA.State, wantA.Certificate, wantA.NotBefore, wantA.NotAfter = uploadcert.StateActive, certDER, t0.Add(time.Hour), na
	checkCert(t, "ActivateUploadCert(pending)", act, err, wantA)
	got, err = s.UploadCert(ctx, tn.ID, pc.ID)
	checkCert(t, "UploadCert(activated)", got, err, wantA)
	_, err = s.ActivateUploadCert(ctx, tn.ID, pc.ID, certDER, nb, na, rec)
	wantErr(t, "ActivateUploadCert(active)", err, store.ErrConflict)
	_, err = s.ActivateUploadCert(ctx, tn.ID, ac.ID, certDER, nb, na, rec)
	wantErr(t, "ActivateUploadCert(created active)", err, store.ErrConflict)

	// Retire: active, and pending.
	ret, err := s.RetireUploadCert(ctx, tn.ID, ac.ID, t0.Add(3*day), rec)
	wantR := ac
	wantR.State, wantR.Retired = uploadcert.StateRetired, t0.Add(3*day)
	checkCert(t, "RetireUploadCert(active)", ret, err, wantR)
	got, err = s.UploadCert(ctx, tn.ID, ac.ID)
	checkCert(t, "UploadCert(retired)", got, err, wantR)
	_, err = s.RetireUploadCert(ctx, tn.ID, ac.ID, t0.Add(4*day), rec)
	wantErr(t, "RetireUploadCert(retired)", err, store.ErrConflict)
	if got, _ := s.UploadCert(ctx, tn.ID, ac.ID); !got.Retired.Equal(t0.Add(3 * day)) {
		t.Errorf("a second RetireUploadCert changed Retired to %s", got.Retired)
	}
	_, err = s.ActivateUploadCert(ctx, tn.ID, ac.ID, certDER, nb, na, rec)
	wantErr(t, "ActivateUploadCert(retired)", err, store.ErrConflict)
	ro, err := s.RetireUploadCert(ctx, other.ID, oc.ID, t0.Add(3*day), rec)
	wantO := oc
	wantO.State, wantO.Retired = uploadcert.StateRetired, t0.Add(3*day)
	checkCert(t, "RetireUploadCert(pending)", ro, err, wantO)
	_, err = s.ActivateUploadCert(ctx, other.ID, oc.ID, certDER, nb, na, rec)
	wantErr(t, "ActivateUploadCert(retired pending)", err, store.ErrConflict)
	_, err = s.RetireUploadCert(ctx, tn.ID, tenant.NewID(), t0, rec)
	wantErr(t, "RetireUploadCert(missing)", err, store.ErrNotFound)
	_, err = s.ActivateUploadCert(ctx, tn.ID, tenant.NewID(), certDER, nb, na, rec)
	wantErr(t, "ActivateUploadCert(missing)", err, store.ErrNotFound)

	// Key labels are unique across tenants, in any state; so are IDs.
	_, err = s.CreateUploadCert(ctx, pendingCert(other.ID, ac.KeyLabel, t0), maxCerts, rec)
	wantErr(t, "CreateUploadCert(same key label, retired, other tenant)", err, store.ErrExists)
	_, err = s.CreateUploadCert(ctx, activeCert(tn.ID, bc.KeyLabel, t0), maxCerts, rec)
	wantErr(t, "CreateUploadCert(same key label)", err, store.ErrExists)
	dupID := pendingCert(tn.ID, "fresh label", t0)
	dupID.ID = bc.ID
	_, err = s.CreateUploadCert(ctx, dupID, maxCerts, rec)
	wantErr(t, "CreateUploadCert(same ID)", err, store.ErrExists)
	_, err = s.CreateUploadCert(ctx, pendingCert(tenant.NewID(), "orphan", t0), maxCerts, rec)
	wantErr(t, "CreateUploadCert(unknown tenant)", err, store.ErrNotFound)
	if cs, _ := s.UploadCerts(ctx, tn.ID); len(cs) != 3 {
		t.Errorf("after refused certificates, %d certificates, want 3", len(cs))
	}

	// The largest blobs and labels fit; returned slices are copies.
	big := pendingCert(tn.ID, strings.Repeat("~", store.MaxKeyLabel), t0)
	big.CSR = bytes.Repeat([]byte{0x30}, store.MaxCertDER)
	bg := mustCert(t, s, big)
	bg.CSR[0] = 0
	if got, err := s.UploadCert(ctx, tn.ID, bg.ID); err != nil || got.CSR[0] != 0x30 || len(got.CSR) != store.MaxCertDER {
		t.Errorf("UploadCert(big) = %d-byte CSR, %v: want it unchanged by changes to a returned copy", len(got.CSR), err)
	}
	bigCert := bytes.Repeat([]byte{0x31}, store.MaxCertDER)
	if got, err := s.ActivateUploadCert(ctx, tn.ID, bg.ID, bigCert, t0, t0.Add(day), rec); err != nil || !bytes.Equal(got.Certificate, bigCert) {
		t.Errorf("ActivateUploadCert(MaxCertDER bytes) error = %v", err)
	}
}

func testUploadCertValidation(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	never := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		active bool // else pending
		mod    func(*uploadcert.Cert)
	}{
		"invalid ID":                          {false, func(c *uploadcert.Cert) { c.ID = "cert-1" }},
		"invalid tenant":                      {false, func(c *uploadcert.Cert) { c.Tenant = "acme" }},
		"empty key label":                     {false, func(c *uploadcert.Cert) { c.KeyLabel = "" }},
		"key label too long":                  {false, func(c *uploadcert.Cert) { c.KeyLabel = strings.Repeat("l", store.MaxKeyLabel+1) }},
		"key label with newline":              {false, func(c *uploadcert.Cert) { c.KeyLabel = "upload\n" }},
		"key label with NUL":                  {false, func(c *uploadcert.Cert) { c.KeyLabel = "up\x00load" }},
		"key label not ASCII":                 {false, func(c *uploadcert.Cert) { c.KeyLabel = "clé" }},
		"key label with DEL":                  {false, func(c *uploadcert.Cert) { c.KeyLabel = "up\x7fload" }},
		"unknown state":                       {false, func(c *uploadcert.Cert) { c.State = "revoked" }},
		"empty state":                         {false, func(c *uploadcert.Cert) { c.State = "" }},
		"retired":                             {true, func(c *uploadcert.Cert) { c.State, c.Retired = uploadcert.StateRetired, t0 }},
		"active with Retired":                 {true, func(c *uploadcert.Cert) { c.Retired = t0 }},
		"pending without CSR":                 {false, func(c *uploadcert.Cert) { c.CSR = nil }},
		"pending with certificate":            {false, func(c *uploadcert.Cert) { c.Certificate = certDER }},
		"pending with validity":               {false, func(c *uploadcert.Cert) { c.NotBefore, c.NotAfter = t0, t0.Add(day) }},
		"CSR too big":                         {false, func(c *uploadcert.Cert) { c.CSR = make([]byte, store.MaxCertDER+1) }},
		"active without certificate":          {true, func(c *uploadcert.Cert) { c.Certificate = nil }},
		"certificate too big":                 {true, func(c *uploadcert.Cert) { c.Certificate = make([]byte, store.MaxCertDER+1) }},
		"active without NotAfter":             {true, func(c *uploadcert.Cert) { c.NotAfter = time.Time{} }},
		"active without NotBefore":            {true, func(c *uploadcert.Cert) { c.NotBefore = time.Time{} }},
		"NotAfter before NotBefore":           {true, func(c *uploadcert.Cert) { c.NotAfter = t0.Add(-time.Second) }},
		"NotAfter equals NotBefore":           {true, func(c *uploadcert.Cert) { c.NotAfter = c.NotBefore }},
		"NotAfter = NotBefore once truncated": {true, func(c *uploadcert.Cert) { c.NotBefore, c.NotAfter = t0.Add(1), t0.Add(2) }},
		"NotAfter out of range":               {true, func(c *uploadcert.Cert) { c.NotAfter = never }},
		"zero Created":                        {false, func(c *uploadcert.Cert) { c.Created = time.Time{} }},
		"Created year 10000":                  {false, func(c *uploadcert.Cert) { c.Created = never }},
	} {
		c := pendingCert(tn.ID, "l", t0)
		if tc.active {
			c = activeCert(tn.ID, "l", t0)
		}
		tc.mod(&c)
		_, err := s.CreateUploadCert(ctx, c, maxCerts, rec)
		wantErr(t, "CreateUploadCert("+name+")", err, store.ErrInvalid)
	}
	if cs, err := s.UploadCerts(ctx, tn.ID); err != nil || len(cs) != 0 {
		t.Errorf("refused certificates were stored: %d, %v", len(cs), err)
	}

	pc := mustCert(t, s, pendingCert(tn.ID, "pending", t0))
	for name, fn := range map[string]func() error{
		"UploadCert(invalid tenant)":  func() error { _, err := s.UploadCert(ctx, "acme", pc.ID); return err },
		"UploadCert(invalid ID)":      func() error { _, err := s.UploadCert(ctx, tn.ID, "x"); return err },
		"UploadCerts(invalid tenant)": func() error { _, err := s.UploadCerts(ctx, ""); return err },
		"Activate(invalid ID)": func() error {
			_, err := s.ActivateUploadCert(ctx, tn.ID, "x", certDER, t0, t0.Add(day), rec)
			return err
		},
		"Activate(no certificate)": func() error { _, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, nil, t0, t0.Add(day), rec); return err },
		"Activate(huge certificate)": func() error {
			_, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, make([]byte, store.MaxCertDER+1), t0, t0.Add(day), rec)
			return err
		},
		"Activate(zero NotBefore)": func() error {
			_, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, certDER, time.Time{}, t0, rec)
			return err
		},
		"Activate(zero NotAfter)": func() error {
			_, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, certDER, t0, time.Time{}, rec)
			return err
		},
		"Activate(NotAfter = before)": func() error { _, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, certDER, t0, t0, rec); return err },
		"Retire(invalid tenant)":      func() error { _, err := s.RetireUploadCert(ctx, "x", pc.ID, t0, rec); return err },
		"Retire(zero time)":           func() error { _, err := s.RetireUploadCert(ctx, tn.ID, pc.ID, time.Time{}, rec); return err },
	} {
		wantErr(t, name, fn(), store.ErrInvalid)
	}
	if got, err := s.UploadCert(ctx, tn.ID, pc.ID); err != nil || !equalCert(got, pc) {
		t.Errorf("refused calls changed the certificate: %s, %v, want %s", fmtCert(got), err, fmtCert(pc))
	}
}

// testUploadCertLimit: CreateUploadCert counts a tenant's pending and
// active certificates, not its retired ones nor another tenant's.
func testUploadCertLimit(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	p := mustCert(t, s, pendingCert(tn.ID, "l1", t0))
	mustCert(t, s, activeCert(tn.ID, "l2", t0))
	mustCert(t, s, activeCert(other.ID, "o1", t0))
	_, err := s.CreateUploadCert(ctx, pendingCert(tn.ID, "l3", t0), 2, rec)
	wantErr(t, "CreateUploadCert(a third, limit 2)", err, store.ErrTooManyCerts)
	if _, err := s.CreateUploadCert(ctx, pendingCert(tn.ID, "l3", t0), 3, rec); err != nil {
		t.Errorf("CreateUploadCert(a third, limit 3) error = %v", err)
	}
	if _, err := s.RetireUploadCert(ctx, tn.ID, p.ID, t0, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUploadCert(ctx, activeCert(tn.ID, "l4", t0), 3, rec); err != nil {
		t.Errorf("CreateUploadCert(limit 3, one of three retired) error = %v", err)
	}
	_, err = s.CreateUploadCert(ctx, activeCert(tn.ID, "l5", t0), 3, rec)
	wantErr(t, "CreateUploadCert(limit 3 reached again)", err, store.ErrTooManyCerts)
	_, err = s.CreateUploadCert(ctx, activeCert(tn.ID, "l5", t0), 0, rec)
	wantErr(t, "CreateUploadCert(limit 0)", err, store.ErrInvalid)
	if cs, err := s.UploadCerts(ctx, tn.ID); err != nil || len(cs) != 4 {
		t.Errorf("UploadCerts() = %d certificates, %v, want 4", len(cs), err)
	}
}

// testConcurrentUploadCertLimit is concurrentUploadCertLimit on one store.
func testConcurrentUploadCertLimit(t *testing.T, s *store.Store) { concurrentUploadCertLimit(t, s, s) }

// concurrentUploadCertLimit: 10 certificates created at once, on two
// nodes, with a limit of 5: exactly 5 are stored, the others refused.
func concurrentUploadCertLimit(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	concurrentLimit(t, a, b, store.ErrTooManyCerts, func(s *store.Store, i, limit int) error {
		_, err := s.CreateUploadCert(ctx, activeCert(tn.ID, fmt.Sprint("label-", i), t0), limit, rec)
		return err
	}, func() int {
		cs, err := a.UploadCerts(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	})
}

// concurrentLimit runs create(s, i, 5) for i in 0…9 at once, alternately
// on a and b, and checks that exactly 5 succeed, the others fail with
// refused, and stored() then counts 5.
func concurrentLimit(t *testing.T, a, b *store.Store, refused error, create func(s *store.Store, i, limit int) error, stored func() int) {
	t.Helper()
	const n, limit = 10, 5
	errs := atOnce(n, a, b, func(s *store.Store, i int) error { return create(s, i, limit) })
	made := Succeeded(t, "creation", errs, refused)
	if got := stored(); made != limit || got != limit {
		t.Errorf("%d concurrent creations with a limit of %d: %d succeeded, %d stored, want %d", n, limit, made, got, limit)
	}
}
