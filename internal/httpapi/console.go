package httpapi

import (
	"net/http"
	"strings"

	"github.com/strongroom-kms/strongroom/internal/console"
)

// The web console (internal/console, docs/console.md) is served next to
// the API, not through the route table: it is three static files with no
// access rule of their own, because they hold nothing. Everything the
// console shows or changes it asks of the routes under /v1 with the
// signed-in token, so the route table stays the one place where access is
// decided.

// site is what a node serves: the console under /ui, the API elsewhere.
type site struct {
	api     *server
	console http.Handler
}

func newSite(api *server) *site { return &site{api: api, console: console.Handler()} }

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == strings.TrimSuffix(console.Prefix, "/"):
		http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
	case strings.HasPrefix(p, console.Prefix):
		s.console.ServeHTTP(w, r)
	default:
		s.api.ServeHTTP(w, r)
	}
}
