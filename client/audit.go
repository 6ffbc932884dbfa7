package client

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/strongroom-kms/strongroom/api"
)

// AuditQuery filters audit entries; zero fields select everything.
type AuditQuery struct {
	Key          string // "data" or "data/3"
	Since, Until time.Time
	After        uint64 // entries after this sequence number (paging: AuditList.Next)
	Limit        int    // at most this many (server default 1000)
}

// Audit lists audit entries (GET /v1/audit, operators and auditors; or,
// with a tenant name, GET /v1/tenants/{tenant}/audit, which a tenant's
// administrators may call too).
func (c *Client) Audit(ctx context.Context, tenant string, q AuditQuery) (api.AuditList, error) {
	var out api.AuditList
	v := url.Values{}
	if q.Key != "" {
		v.Set("key", q.Key)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.After != 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/audit"
	if tenant != "" {
		if err := seg("tenant name", tenant); err != nil {
			return out, err
		}
		path = "/v1/tenants/" + tenant + "/audit"
	}
	err := c.do(ctx, "GET", path, v, nil, &out)
	return out, err
}
