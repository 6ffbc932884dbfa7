package directory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/directory"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var ctx = context.Background()

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s error = %v, want %v", what, err, want)
	}
}

func TestDirectory(t *testing.T) {
	st, err := sqlite.OpenPath(ctx, sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	d := directory.New(st, func() time.Time { return now })
	rec := &audit.Entry{Time: now, Actor: "test", Action: "tenant.create"}
	acme, err := d.Create(ctx, rec, "acme", tenant.EnvProduction)
	if err != nil {
		t.Fatal(err)
	}
	if !tenant.ValidID(acme.ID) || acme.Name != "acme" || !acme.Created.Equal(now) || !acme.DerivationOptOut || rec.Tenant != acme.ID {
		t.Errorf("Create() = %+v, entry tenant %q: want a fresh ID, now, the default settings, the entry naming it", acme, rec.Tenant)
	}
	var es []audit.Entry
	st.AuditEntries(ctx, store.AuditFilter{}, func(e audit.Entry) error { es = append(es, e); return nil })
	if len(es) != 1 || es[0].Tenant != acme.ID || es[0].Action != "tenant.create" {
		t.Errorf("the log = %+v, want the creation naming the tenant", es)
	}
	_, err = d.Create(ctx, &audit.Entry{Time: now, Actor: "test", Action: "tenant.create"}, "acme", tenant.EnvSandbox)
	wantErr(t, "Create(same name)", err, store.ErrExists)
	_, err = d.Create(ctx, &audit.Entry{Time: now, Actor: "test", Action: "tenant.create"}, "ACME", tenant.EnvSandbox)
	wantErr(t, "Create(invalid name)", err, store.ErrInvalid)

	if got, err := d.ByName(ctx, "acme"); err != nil || got.ID != acme.ID {
		t.Errorf("ByName(acme) = %+v, %v", got, err)
	}
	_, err = d.ByName(ctx, "no such name!")
	wantErr(t, "ByName(a name no tenant can have)", err, store.ErrNotFound)
	_, err = d.ByName(ctx, "beta")
	wantErr(t, "ByName(beta)", err, store.ErrNotFound)

	off, err := d.SetDerivationOptOut(ctx, &audit.Entry{Time: now, Actor: "test", Action: "tenant.settings"}, acme.ID, false)
	if err != nil || off.DerivationOptOut {
		t.Errorf("SetDerivationOptOut(false) = %+v, %v", off, err)
	}
	if got, _ := d.ByID(ctx, acme.ID); got.DerivationOptOut {
		t.Error("the setting was not stored")
	}
	if ts, err := d.List(ctx); err != nil || len(ts) != 1 {
		t.Errorf("List() = %+v, %v, want acme only", ts, err)
	}
}
