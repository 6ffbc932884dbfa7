package main

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUserMessage(t *testing.T) {
	for in, want := range map[string]string{
		"ceremony: refused, nothing was written: plan: quorum not met: 1 of 2": "refused, nothing was written: quorum not met: 1 of 2",
		"soft: wrong passphrase for h.hsm":                                     "wrong passphrase for h.hsm",
		"store: sqlite: the database is locked":                                "the database is locked",
		"open /tmp/soft: no such file":                                         "open /tmp/soft: no such file",
		"the audit: log":                                                       "the audit: log",
	} {
		if got := userMessage(errors.New(in)); got != want {
			t.Errorf("userMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestErrPrefixesComplete: every package under internal/ is in errPrefixes,
// so that none of their prefixes reaches a user.
func TestErrPrefixesComplete(t *testing.T) {
	err := filepath.WalkDir("../../internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if name == "testdata" || name == "schema" || name == "static" {
			return fs.SkipDir
		}
		if path == "../../internal" || strings.HasSuffix(name, "test") || name == "docs" || name == "fuzzcorpus" || name == "wycheproof" {
			return nil // test helpers: their errors never reach a user
		}
		if !slices.Contains(errPrefixes, name) {
			t.Errorf("package %s is not in errPrefixes", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
