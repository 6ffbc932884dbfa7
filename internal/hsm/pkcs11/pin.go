package pkcs11

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxPINFile bounds what readPIN reads: PINs are short, and a PIN file that
// is large is a configuration mistake (a key file, a log...).
const maxPINFile = 1024

// readPIN reads the user PIN from the URI's pin-source. The caller clears the
// returned slice when done. Errors never contain the PIN.
func readPIN(u URI) ([]byte, error) {
	if u.PINEnv != "" {
		v, ok := os.LookupEnv(u.PINEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("pkcs11: the PIN comes from environment variable %s (pin-source), "+
				"but it is unset or empty", u.PINEnv)
		}
		return []byte(v), nil
	}
	if u.PINFile == "" {
		return nil, errors.New("pkcs11: URI has no pin-source")
	}
	pin, err := readPINFile(u.PINFile)
	if err != nil {
		return nil, err
	}
	if len(pin) == 0 {
		return nil, fmt.Errorf("pkcs11: PIN file %s (pin-source) is empty", u.PINFile)
	}
	return pin, nil
}

// readPINFile reads at most maxPINFile bytes and trims one trailing newline
// (LF or CRLF), as left by editors and `echo`.
func readPINFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: cannot read the PIN file named by pin-source: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxPINFile+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
	case err != nil:
		clear(buf)
		return nil, fmt.Errorf("pkcs11: cannot read the PIN file %s named by pin-source: %w", path, err)
	default:
		clear(buf)
		return nil, fmt.Errorf("pkcs11: PIN file %s (pin-source) is larger than %d bytes; it should hold only the PIN", path, maxPINFile)
	}
	pin := buf[:n]
	if bytes.HasSuffix(pin, []byte("\r\n")) {
		pin = pin[:n-2]
	} else if bytes.HasSuffix(pin, []byte("\n")) {
		pin = pin[:n-1]
	}
	return pin, nil
}
