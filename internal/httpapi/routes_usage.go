package httpapi

import (
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store"
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

func (s *server) dataReport(c *Call) (any, error) {
	req := c.Body.(*api.DataReportRequest)
	typ, err := keyType(req.Type)
	if err != nil {
		return nil, err
	}
	if !datasetName(req.Dataset) {
		return nil, badRequestf("dataset: 1 to %d printable ASCII characters naming the table and columns counted, e.g. users(ssn)", store.MaxDataset)
	}
	rows := map[uint32]uint64{}
	for _, v := range req.Versions {
		if _, dup := rows[v.Version]; dup || v.Version == 0 {
			return nil, badRequestf("version %d: each version once, from 1", v.Version)
		}
		rows[v.Version] = v.Values
	}
	// The counts of the last minutes first: a version the report calls
	// quiet must not have been used a moment ago (strongroom sync's
	// rewraps decrypt under the versions it empties).
	if err := s.Aggregate.Flush(c.Context(), s.Audit); err != nil {
		return nil, err
	}
	c.Audit.Key = typ
	c.Audit.Detail = "dataset " + req.Dataset
	rs, err := s.Usage.ReportDataAtRest(c.Context(), c.Audit, c.Tenant.ID, typ, req.Dataset, rows)
	if err != nil {
		return nil, err
	}
	return usageList(c.Tenant, rs), nil
}

// datasetName reports whether name may name a dataset: 1 to
// store.MaxDataset printable ASCII characters (it is shown in the audit
// log).
func datasetName(name string) bool {
	if name == "" || len(name) > store.MaxDataset {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return false
		}
	}
	return true
}

// usageList is the answer listing a tenant's key usage reports.
func usageList(t tenant.Tenant, rs []keyusage.Report) api.KeyUsageList {
	out := api.KeyUsageList{Usage: []api.KeyUsage{}}
	for _, r := range rs {
		out.Usage = append(out.Usage, keyUsageOf(t, r))
	}
	return out
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
	return usageList(c.Tenant, rs), nil
}
