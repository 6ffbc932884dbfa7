package ceremony

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Write puts a ceremony's files into dir. It refuses, writing nothing, if
// any of them exists.
//
// If dir does not exist, the files are written and synced in a temporary
// sibling directory that is then renamed to dir: even a crash leaves all the
// files or none. Into an existing directory (e.g. an export next to its
// release), files are written to temporary names, synced, then linked into
// place; on failure the ones already linked are removed again.
func Write(dir string, out *Output) error {
	dir = filepath.Clean(dir) // "out/" is the directory out
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return writeNewDir(dir, out)
	} else if err != nil {
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
	return syncDir(dir)
}

// CheckOutput checks, before a ceremony runs, that Write will be able to
// write into dir: an existing directory must take a new file, and a new
// directory's parent must take a new directory. A ceremony records its
// release id in the primary HSM before it writes anything, so an output
// that cannot be written would cost the release id.
func CheckOutput(dir string) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("ceremony: %s exists and is not a directory", dir)
	case err == nil:
		f, err := os.CreateTemp(dir, ".strongroom-check.tmp*")
		if err != nil {
			return fmt.Errorf("ceremony: the output directory cannot be written: %w", err)
		}
		f.Close()
		return os.Remove(f.Name())
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("ceremony: %w", err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("ceremony: the output directory cannot be made: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".check*")
	if err != nil {
		return fmt.Errorf("ceremony: the output directory cannot be made: %w", err)
	}
	return os.Remove(tmp)
}

// writeNewDir writes the files into a fresh sibling directory and renames
// it to dir, which must not exist.
func writeNewDir(dir string, out *Output) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp*")
	if err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for n, data := range out.Files {
		if err := writeSynced(filepath.Join(tmp, n), data); err != nil {
			return fmt.Errorf("ceremony: write %s: %w", n, err)
		}
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	return syncDir(parent)
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ceremony: sync %s: %w", dir, err)
	}
	return nil
}
