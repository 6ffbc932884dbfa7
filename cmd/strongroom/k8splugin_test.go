package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	kmsapi "k8s.io/kms/apis/v2"
)

// kms status SOCKET ok|unhealthy [SUFFIX] waits up to 30 seconds until the
// KMS v2 plugin on SOCKET answers Status with that health (and a key id
// ending in SUFFIX), and prints its healthz, version and key_id lines. kms roundtrip SOCKET encrypts a random 32-byte
// seed and decrypts it, as kube-apiserver does, and prints the key id and
// the ciphertext's size.
func cmdKMS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || (args[0] == "status") != (len(args) == 3 || len(args) == 4) {
		ts.Fatalf("usage: kms status SOCKET ok|unhealthy [KEY-ID-SUFFIX] | kms roundtrip SOCKET")
	}
	conn, err := grpc.NewClient("unix://"+ts.MkAbs(args[1]), grpc.WithTransportCredentials(insecure.NewCredentials()))
	ts.Check(err)
	defer conn.Close()
	kms := kmsapi.NewKeyManagementServiceClient(conn)
	ctx := context.Background()
	switch args[0] {
	case "status":
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := kms.Status(ctx, &kmsapi.StatusRequest{})
			if err == nil && (st.Healthz == "ok") == (args[2] == "ok") && (len(args) == 3 || strings.HasSuffix(st.KeyId, args[3])) {
				fmt.Fprintf(ts.Stdout(), "healthz %s\nversion %s\nkey_id %s\n", st.Healthz, st.Version, st.KeyId)
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("Status = %+v, %v after 30s, want %q", st, err, args[2:])
			}
			time.Sleep(50 * time.Millisecond)
		}
	case "roundtrip":
		seed := make([]byte, 32)
		rand.Read(seed)
		enc, err := kms.Encrypt(ctx, &kmsapi.EncryptRequest{Uid: rand.Text(), Plaintext: seed})
		ts.Check(err)
		dec, err := kms.Decrypt(ctx, &kmsapi.DecryptRequest{Uid: rand.Text(), Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations})
		ts.Check(err)
		if !bytes.Equal(dec.Plaintext, seed) {
			ts.Fatalf("Decrypt gave %x, want %x", dec.Plaintext, seed)
		}
		fmt.Fprintf(ts.Stdout(), "key_id %s\nciphertext %d bytes\n", enc.KeyId, len(enc.Ciphertext))
	default:
		ts.Fatalf("unknown kms command %q", args[0])
	}
}
