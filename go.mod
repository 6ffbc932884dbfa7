module github.com/strongroom-kms/strongroom

go 1.26.8

require (
	github.com/miekg/pkcs11 v1.1.2 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/tools v0.26.0 // indirect
)
