// Package uploadcert makes and checks BYOK upload certificates.
//
// An upload certificate carries the public half of an RSA-4096 key pair
// whose private half lives in the regional HSM (hsm.EncryptionKey). A tenant
// encrypts its own 32 bytes of key material to it with RSA-OAEP and uploads
// the ciphertext; only that HSM can decrypt it. The certificate is either
// self-signed by the key (SelfSigned), or signed by the tenant's own CA from
// a certificate request that the key signed (Request, then ParseSigned on
// what the tenant uploads back). Certificates and requests are signed with
// RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) inside the HSM.
//
// # Subject
//
// Certificates and requests made here have the subject
//
//	CN=Strongroom upload certificate <CertID>
//	O=Strongroom
//	OU=<TenantName>
//	L=<Region>                 (omitted when Region is empty)
//	serialNumber=<TenantID>    (X.520 serialNumber, 2.5.4.5)
//
// A certificate signed by the tenant's CA may carry any subject: the KMS
// checks only that it is for the request's key, is not a CA, allows key
// encipherment (if it restricts key usage at all) and is valid.
//
// # The tenant's procedure
//
// These commands are tested with OpenSSL 3 by this package's tests
// (TestOpenSSLTenantProcedure, TestOpenSSLCA). upload.pem is the upload
// certificate as the KMS returns it.
//
// Check the certificate, and compare its fingerprint with the one the KMS
// shows through another channel:
//
//	openssl x509 -in upload.pem -noout -subject -dates -fingerprint -sha256
//
// Make 32 bytes of key material (or use your own) and compute their SHA-256,
// which the upload request carries in hex (the first field of the output):
//
//	openssl rand -out key.bin 32
//	openssl dgst -sha256 -r key.bin
//
// Encrypt them with RSA-OAEP, SHA-256 as both the OAEP and the MGF1 hash,
// to the certificate's public key:
//
//	openssl x509 -in upload.pem -noout -pubkey -out upload-pub.pem
//	openssl pkeyutl -encrypt -pubin -inkey upload-pub.pem -in key.bin -out key.enc \
//	    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
//
// (or, in one step, "openssl pkeyutl -encrypt -certin -inkey upload.pem ..."
// with the same other options). key.enc is the 512-byte ciphertext to upload.
// Delete key.bin once it is uploaded, unless you keep your own copy.
//
// For a CA-signed certificate, the tenant checks the request (upload.csr,
// as the KMS returns it), has its CA sign it, and uploads upload.pem. With
// an OpenSSL CA, for example, keeping the key usage the request asks for:
//
//	openssl req -in upload.csr -noout -verify -subject
//	openssl x509 -req -in upload.csr -CA ca.pem -CAkey ca.key -days 365 \
//	    -copy_extensions copy -out upload.pem
//
// # Accepted encodings
//
// The parsers take PEM or DER. PEM text may carry explanatory text before
// each block (RFC 7468, section 5.2; "openssl ca" writes the certificate's
// text form there) but nothing but white space after the last one, no
// block headers, and only the expected block type. Inputs are limited in
// size (MaxCSRSize, MaxCertSize).
package uploadcert
