// Package console is Strongroom's web console: a small single-page
// application for tenant administrators, operators and auditors, served by
// every regional node under /ui (docs/console.md).
//
// The console has no server side of its own. Handler serves three static
// files embedded in the binary (static/: index.html, console.js,
// console.css) and nothing else; everything the page shows or changes it
// asks of the JSON API under /v1 with the signed-in token, so it passes
// through the same route table, policies, rate limits and audit log as the
// CLI. There is no CDN, no build step and no framework: the script is
// plain ES2020 that builds the page with DOM calls only (never innerHTML),
// which is what lets the Content-Security-Policy forbid inline script and
// style and require Trusted Types.
//
// The token lives in one JavaScript variable: never in a cookie, a URL,
// localStorage or sessionStorage. Reloading the page signs out. With no
// cookie there is no ambient authority for a cross-site request to ride on
// (CSRF): a forged request carries no token, and the API's CORS-free
// answers cannot be read by another origin.
//
// Written by hand: the console is three small files and a file server, and
// no web framework would remove code from it, only add a build.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is where the console is served.
const Prefix = "/ui/"

// Policy is the Content-Security-Policy of every console answer: scripts,
// styles and fetches from this origin only, nothing inline, no frames, no
// plugins, no forms posted anywhere (the script handles every form), and
// Trusted Types required with no policy allowed, so no string can become
// HTML or script.
const Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// files are the console's files by their name under Prefix ("" is the
// page), with their content types.
var files = map[string]string{
	"":            "text/html; charset=utf-8",
	"console.js":  "text/javascript; charset=utf-8",
	"console.css": "text/css; charset=utf-8",
}

// Handler serves the console at Prefix: GET or HEAD of the page and its
// two assets, with the security headers; any other path under Prefix is
// 404, any other method 405.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("console: " + err.Error())
	}
	content := map[string][]byte{}
	for name := range files {
		file := name
		if file == "" {
			file = "index.html"
		}
		b, err := fs.ReadFile(sub, file)
		if err != nil {
			panic("console: the embedded " + file + " is missing")
		}
		content[name] = b
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		setHeaders(h)
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		body, known := content[name]
		if !ok || !known {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read-only: use GET", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", files[name])
		if name == "" {
			// The page is never kept: not in the HTTP cache, and so not in
			// the back/forward cache with a signed-in state either.
			h.Set("Cache-Control", "no-store")
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	})
}

// setHeaders sets the headers of every console answer, errors included.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", Policy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), clipboard-read=(), payment=(), usb=()")
	// The files are embedded in the binary: a new binary may bring new
	// ones, so revalidate every time (they are a few kilobytes).
	h.Set("Cache-Control", "no-cache")
}
