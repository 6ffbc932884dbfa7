package main

import (
	"regexp"
	"strings"
)

// Errors inside Strongroom carry their packages' prefixes ("ceremony:
// plan: quorum not met ...") for the server's log, where they say where an
// error came from. A person at the command line needs only what went wrong
// and what to do: userMessage drops the prefixes, keeping the words.
// (The API's own messages never carry them: internal/reason.)

// errPrefixes are the names of Strongroom's packages, as their errors begin;
// TestErrPrefixesComplete keeps the list in step with internal/.
var errPrefixes = []string{
	"armor", "atomicfile", "audit", "auditlog", "auth", "backup", "byok", "cacheonly", "ceremony", "client", "config", "dataplane",
	"derive", "directory", "engine", "enroll", "envelope", "escrow", "exportkey", "hsm", "hsmuri",
	"console", "httpapi", "httpbody", "k8splugin", "keycache", "keyservice", "keyusage", "keywrap", "lifecycle", "loadgen", "metrics", "node", "officer",
	"pkcs11", "plan", "postgres", "primitive", "reason", "release", "resync", "rowcache", "secret", "sign", "siv", "soft", "sqlite", "store",
	"tenant", "transcript",
	"uploadcert", "world",
}

var prefixRE = regexp.MustCompile(`(^|: )(?:` + strings.Join(errPrefixes, "|") + `): `)

// userMessage is err's text without package prefixes.
func userMessage(err error) string {
	s := err.Error()
	for {
		t := prefixRE.ReplaceAllString(s, "$1")
		if t == s {
			return s
		}
		s = t
	}
}
