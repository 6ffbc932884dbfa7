//go:build cgo

package main

const pkcs11Support = "built in"
