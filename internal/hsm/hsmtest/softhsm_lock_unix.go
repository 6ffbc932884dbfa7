//go:build unix

package hsmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// softhsmLock takes an exclusive lock shared by every test process that uses
// the SoftHSM2 configuration conf: `softhsm2-util --init-token --free` picks
// the first free slot, and two processes racing for it make one fail.
// The lock file sits next to the configuration. unlock releases it.
func softhsmLock(conf string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(filepath.Dir(conf), ".hsmtest.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the SoftHSM2 token directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the SoftHSM2 token directory: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
