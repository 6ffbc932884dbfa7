package httpapi

import "net/http"

// RoutesOf is the route table of a handler made by NewHandler.
func RoutesOf(h http.Handler) []Route { return h.(*site).api.routes }

// Mux is the mux of a handler made by NewHandler.
func Mux(h http.Handler) *http.ServeMux { return h.(*site).api.mux }

// Check is Route.check, for the table test.
func (rt *Route) Check() error { return rt.check() }
