//go:build !cgo

package main

const pkcs11Support = "not built in (this binary was built without cgo; rebuild with CGO_ENABLED=1)"
