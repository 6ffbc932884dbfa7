package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// cmdSHA256 is "sha256 FILE VAR": sets VAR to the SHA-256 of FILE in hex
// (the scripts cannot substitute a command's output into an argument).
func cmdSHA256(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sha256 FILE VAR")
	}
	sum := sha256.Sum256([]byte(ts.ReadFile(args[0])))
	ts.Setenv(args[1], hex.EncodeToString(sum[:]))
}

// cmdOpenData is "[!] opendata KEYFILE CIPHERTEXT PLAINTEXT [KEY=VALUE…]":
// opens a ciphertext of 'strongroom encrypt' with the 32 bytes of KEYFILE
// as the DEK, outside the server, and compares the result with PLAINTEXT.
// It shows that in derivation mode none the uploaded value is the DEK.
func cmdOpenData(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 {
		ts.Fatalf("usage: opendata KEYFILE CIPHERTEXT PLAINTEXT [KEY=VALUE…]")
	}
	dek, err := secret.New([]byte(ts.ReadFile(args[0])))
	if err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	defer dek.Destroy()
	ctx := map[string]string{}
	for _, kv := range args[3:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			ts.Fatalf("context %q: KEY=VALUE", kv)
		}
		ctx[k] = v
	}
	pt, err := envelope.Open(dek, []byte(ts.ReadFile(args[1])), ctx)
	ok := err == nil && bytes.Equal(pt, []byte(ts.ReadFile(args[2])))
	switch {
	case ok && neg:
		ts.Fatalf("%s opens with %s as the DEK", args[1], args[0])
	case !ok && !neg:
		ts.Fatalf("%s does not open with %s as the DEK: %v", args[1], args[0], err)
	}
}
