// Package atomicfile writes files so that a crash at any moment leaves the
// old file or the new one, never a mix: a temporary file of mode 0600 in
// the same directory, written, synced, renamed over the target, and the
// directory synced. The soft HSM's key files, the reference key service's
// key files and `strongroom sync`'s checkpoint are written with it.
//
// Written by hand: the standard library has no atomic replace, and the few
// lines here are the whole of it (github.com/google/renameio does the same
// with more surface than Strongroom needs).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, atomically and durably (see the package
// doc). The file has mode 0600. Errors begin with the file's base name
// (the error wrapped may name the directory too). A crash mid-write may
// leave a temporary file named .BASE.tmp… beside it, never a partial path.
func Write(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", filepath.Base(path), err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("atomicfile: write %s: %w", filepath.Base(path), err)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
