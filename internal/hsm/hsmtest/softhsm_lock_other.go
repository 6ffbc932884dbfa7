//go:build !unix

package hsmtest

// softhsmLock is a no-op where flock(2) does not exist: test processes that
// share a SoftHSM2 configuration there must not make tokens concurrently.
func softhsmLock(string) (func(), error) { return func() {}, nil }
