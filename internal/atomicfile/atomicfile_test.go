package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	for _, data := range []string{"first", "second, longer than the first", ""} {
		if err := atomicfile.Write(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != data {
			t.Fatalf("after Write(%q): %q, %v", data, got, err)
		}
		if info, _ := os.Stat(p); info.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", info.Mode().Perm())
		}
	}
	// No temporary file is left behind, and a failed write leaves the old
	// file as it was.
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want 1", len(entries))
	}
	if err := atomicfile.Write(filepath.Join(dir, "missing", "x"), []byte("y")); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}
