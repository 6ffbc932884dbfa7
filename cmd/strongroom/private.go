package main

import (
	"crypto/tls"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkPrivateFile refuses a secret's file (a TLS key, a bearer secret)
// that others may read or anyone but its owner may write. The rule is
// PostgreSQL's for its TLS key: mode 0600 or less for a file the server's
// user owns, and 0640 or less for a file root owns, so that root can hand
// a key to the server's group without handing the server the right to
// change it. That is how a Kubernetes Secret volume with an fsGroup
// (root-owned, mode 0440) and a systemd deployment (root:strongroom 0640)
// give the server its key (docs/deployment.md).
func checkPrivateFile(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); !privateMode(perm, ownedByRoot(fi)) {
		return fmt.Errorf("the %s %s is accessible to group or others (mode %04o); restrict it with 'chmod 600 %s'", what, path, perm, path)
	}
	return nil
}

// privateMode reports whether perm keeps a secret's file private: no bit
// for others, no execute bit, and no group bit unless root owns the file,
// which then may let its group read it.
func privateMode(perm fs.FileMode, rootOwned bool) bool {
	if rootOwned {
		return perm&^0o640 == 0
	}
	return perm&^0o600 == 0
}

func ownedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}

// loadTLSKeyPair loads a server's TLS certificate chain and key, refusing a
// key file that is not private (checkPrivateFile).
func loadTLSKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if err := checkPrivateFile(keyFile, "TLS key"); err != nil {
		return tls.Certificate{}, err
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate and key: %w", err)
	}
	return kp, nil
}
