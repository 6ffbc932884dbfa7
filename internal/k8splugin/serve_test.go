package k8splugin_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/k8splugin"
)

// TestListen: the socket is made with mode 0600; a stale socket is
// replaced; a live one, or anything that is not a socket, is left alone.
func TestListen(t *testing.T) {
	dir := socketDir(t)
	path := filepath.Join(dir, "kms.sock")
	ln, err := k8splugin.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v, want a socket of mode 0600", fi, err)
	}
	if _, err := k8splugin.Listen(path); err == nil || !strings.Contains(err.Error(), "something listens on") {
		t.Errorf("Listen(live socket) = %v", err)
	}
	ln.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket outlived its listener: %v", err)
	}

	// A stale socket: a listener whose file is kept when it closes.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no stale socket: %v", err)
	}
	ln, err = k8splugin.Listen(path)
	if err != nil {
		t.Fatalf("Listen(stale socket) = %v", err)
	}
	ln.Close()

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := k8splugin.Listen(file); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen(a file) = %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("the file is %q, %v after Listen", b, err)
	}
}
