package ceremony

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Write puts a ceremony's files into dir (created if missing, mode 0755).
// It refuses, writing nothing, if any of them exists. Files are written to
// temporary names, synced, then linked into place; on failure the ones
// already linked are removed again, so dir ends with all the files or none.
func Write(dir string, out *Output) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	names := make([]string, 0, len(out.Files))
	for n := range out.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			return fmt.Errorf("ceremony: %s already exists; refusing to overwrite ceremony output", filepath.Join(dir, n))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	var tmps, linked []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	for _, n := range names {
		f, err := os.CreateTemp(dir, "."+n+".tmp*")
		if err != nil {
			return err
		}
		tmps = append(tmps, f.Name())
		if _, err := f.Write(out.Files[n]); err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(f.Name(), 0o644)
		}
		if err != nil {
			return fmt.Errorf("ceremony: write %s: %w", n, err)
		}
	}
	for i, n := range names {
		if err := os.Link(tmps[i], filepath.Join(dir, n)); err != nil {
			for _, l := range linked {
				os.Remove(l)
			}
			return fmt.Errorf("ceremony: write %s: %w", n, err)
		}
		linked = append(linked, filepath.Join(dir, n))
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
