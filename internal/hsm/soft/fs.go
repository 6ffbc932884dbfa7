package soft

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/strongroom-kms/strongroom/internal/atomicfile"
)

// lockFile takes an flock on PATH.lock, exclusive or shared, and returns the
// function that releases it.
func lockFile(path string, exclusive bool) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("soft: lock %s: %w", path, err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("soft: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// readFile reads the whole file, refusing anything implausibly large.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("soft: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("soft: %s is larger than %d bytes: not a soft HSM file", path, maxFileSize)
	}
	return data, nil
}

// writeFileAtomic is atomicfile.Write: a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data) }
