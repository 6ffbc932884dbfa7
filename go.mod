module github.com/strongroom-kms/strongroom

go 1.26.8

require (
	github.com/miekg/pkcs11 v1.1.2 // indirect
	golang.org/x/crypto v0.59.0 // indirect
)
