package httpapi

import (
	"errors"
	"net/http"

	"github.com/strongroom-kms/strongroom/internal/metrics"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// The API's part in the node's metrics (internal/metrics, docs/metrics.md):
// every request is counted and timed by its route pattern (never its path)
// and outcome, from the status and code the access log records; a new key
// refused by the rotation policy is counted by its route and reason; and
// GET /v1/metrics serves the scrape, through the route table like every
// other route (operators and auditors; refusals audited as node.metrics).

// observers are the request metrics of every route, made once, by the
// name the access log gives the route ("METHOD pattern").
func (s *server) observers() map[string]*metrics.Route {
	obs := map[string]*metrics.Route{"": s.Metrics.Route(metrics.Unmatched)}
	for _, rt := range s.routes {
		name := rt.Method + " " + rt.Pattern
		obs[name] = s.Metrics.Route(name)
	}
	return obs
}

// countRefusal counts a request of route refused by the rotation policy.
func (s *server) countRefusal(route string, err error) {
	switch {
	case err == nil:
	case errors.Is(err, store.ErrRateLimited):
		s.Metrics.RotationRefused(route, "rate_limited")
	case errors.Is(err, store.ErrTooManyKeys):
		s.Metrics.RotationRefused(route, "too_many_keys")
	}
}

// text is an answer that is not JSON: the route's handler returns it, and
// h writes it. Route.Response holds its zero value, which the OpenAPI
// document describes as text of contentType.
type text struct {
	contentType string
	h           http.Handler
}

// metricsText is GET /v1/metrics's Response.
var metricsText = text{contentType: "text/plain"}

func (s *server) metrics(c *Call) (any, error) {
	return text{contentType: metricsText.contentType, h: s.Metrics.Handler()}, nil
}
