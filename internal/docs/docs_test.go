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
