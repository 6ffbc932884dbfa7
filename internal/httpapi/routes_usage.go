package httpapi

import (
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// ---- key usage ----

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func keyUsageOf(t tenant.Tenant, r keyusage.Report) api.KeyUsage {
	u := r.Usage
	out := api.KeyUsage{Tenant: t.Name, Type: r.Key.Type, Version: r.Key.Version, State: string(r.Key.State),
		Encryptions: u.Encryptions, Decryptions: u.Decryptions, Deliveries: u.Deliveries, Sealed: u.Sealed, Nonces: r.Nonces,
		LastEncrypt: optTime(u.LastEncrypt), LastDecrypt: optTime(u.LastDecrypt), LastDelivery: optTime(u.LastDelivery),
		Reported: optTime(u.Reported), SafeToDestroy: r.SafeToDestroy, Hint: r.Hint}
	if !u.Reported.IsZero() {
		n := u.RowsLeft
		out.RowsLeft = &n
	}
	return out
}

func (s *server) keyUsage(c *Call) (any, error) {
	typ := c.Request.URL.Query().Get("type")
	if typ != "" && !tenant.ValidKeyType(typ) {
		return nil, badRequestf("key type %q: use one of %q", typ, tenant.KeyTypes())
	}
	rs, err := s.Usage.Report(c.Context(), c.Tenant.ID, typ)
	if err != nil {
		return nil, err
	}
	out := api.KeyUsageList{Usage: []api.KeyUsage{}}
	for _, r := range rs {
		out.Usage = append(out.Usage, keyUsageOf(c.Tenant, r))
	}
	return out, nil
}
