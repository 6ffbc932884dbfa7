package docs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestKAT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.md")
	doc := "# X\n\n<!-- kat: other -->\n```\nname \"no\"\n```\n\n<!-- kat: x -->\n```\n" +
		"key   00 01   # a comment\n      0203\nname  \"a # b\"   # not part of it\n\ncount 100 000\n```\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ex := KAT(t, path, "x")
	if got := ex.Hex("key"); !bytes.Equal(got, []byte{0, 1, 2, 3}) {
		t.Errorf("Hex(key) = %x, want 00010203", got)
	}
	if got := ex.Text("name"); got != "a # b" {
		t.Errorf("Text(name) = %q, want %q", got, "a # b")
	}
	if got := ex.Uint("count"); got != 100000 {
		t.Errorf("Uint(count) = %d, want 100000", got)
	}
}

// recorder is a testing.TB that records Errorf and defers Cleanup until run.
type recorder struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (r *recorder) Errorf(format string, args ...any) { r.errors = append(r.errors, format) }
func (r *recorder) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }

func (r *recorder) end() {
	for _, f := range r.cleanups {
		f()
	}
}

func TestUnreadFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(path, []byte("<!-- kat: x -->\n```\na 00\nb 01\n```\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kat := &recorder{TB: t}
	KAT(kat, path, "x").Hex("a")
	kat.end()
	if len(kat.errors) != 1 {
		t.Errorf("KAT with field b unread: %d errors, want 1", len(kat.errors))
	}
	peek := &recorder{TB: t}
	Peek(peek, path, "x").Hex("a")
	peek.end()
	if len(peek.errors) != 0 {
		t.Errorf("Peek with field b unread: %d errors, want 0", len(peek.errors))
	}
}
