package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrivateMode(t *testing.T) {
	for _, c := range []struct {
		perm      fs.FileMode
		rootOwned bool
		ok        bool
	}{
		{0o600, false, true},
		{0o400, false, true},
		{0o640, false, false},
		{0o440, false, false},
		{0o604, false, false},
		{0o700, false, false},
		{0o640, true, true},
		{0o440, true, true},
		{0o600, true, true},
		{0o660, true, false},
		{0o644, true, false},
		{0o650, true, false},
	} {
		if got := privateMode(c.perm, c.rootOwned); got != c.ok {
			t.Errorf("privateMode(%04o, root-owned %v) = %v, want %v", c.perm, c.rootOwned, got, c.ok)
		}
	}
}

func TestCheckPrivateFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "key")
	if err := os.WriteFile(f, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkPrivateFile(f, "TLS key"); err != nil {
		t.Errorf("mode 0600: %v", err)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	err := checkPrivateFile(f, "TLS key")
	if err == nil || !strings.Contains(err.Error(), "accessible to group or others (mode 0644); restrict it with 'chmod 600 ") {
		t.Errorf("mode 0644: %v", err)
	}
	// Group-readable passes only for a file root owns (the files a test
	// creates are its user's).
	if err := os.Chmod(f, 0o640); err != nil {
		t.Fatal(err)
	}
	err = checkPrivateFile(f, "TLS key")
	if root := os.Geteuid() == 0; (err == nil) != root {
		t.Errorf("mode 0640 owned by uid %d: %v", os.Geteuid(), err)
	}
	if err := checkPrivateFile(filepath.Join(dir, "missing"), "TLS key"); err == nil {
		t.Error("a missing file passed")
	}
}
