package envelope

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/docs"
)

const dataplaneDoc = "../../docs/dataplane.md"

// TestDocEnvelope recomputes the worked example of docs/dataplane.md: the
// header, the associated data and the whole ciphertext from the page's
// inputs (its nonce given), and opens the page's ciphertext with Open.
func TestDocEnvelope(t *testing.T) {
	ex := docs.KAT(t, dataplaneDoc, "envelope")
	dek := ex.Key("dek")
	h := Header{Tenant: ex.Text("tenant"), Type: ex.Text("type"), Version: uint32(ex.Uint("version"))}
	var context map[string]string
	if err := json.Unmarshal([]byte(ex.Raw("context")), &context); err != nil {
		t.Fatalf("context: %v", err)
	}
	plaintext := []byte(ex.Text("plaintext"))
	hb, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("header"); !bytes.Equal(hb, want) {
		t.Errorf("Header.Marshal() = %x, want %x", hb, want)
	}
	c, err := canonical(context)
	if err != nil {
		t.Fatal(err)
	}
	a := aad(hb, c)
	if want := ex.Hex("aad"); !bytes.Equal(a, want) {
		t.Errorf("aad = %x, want %x", a, want)
	}
	nonce := ex.Hex("nonce")
	want := ex.Hex("ciphertext")
	if got := append(bytes.Clone(hb), docs.GCM(t, dek.Bytes(), nonce, plaintext, a)...); !bytes.Equal(got, want) {
		t.Errorf("ciphertext = %x, want %x", got, want)
	}
	if got := h.Overhead(); got != len(want)-len(plaintext) {
		t.Errorf("Overhead() = %d, want %d", got, len(want)-len(plaintext))
	}
	if pt, err := Open(dek, want, context); err != nil || !bytes.Equal(pt, plaintext) {
		t.Errorf("Open(the page's ciphertext) = %q, %v, want %q", pt, err, plaintext)
	}
}

// TestDocDelivery checks the DEK delivery example of docs/dataplane.md: its
// HPKE info, and that its sealed DEK opens with OpenDEK to its DEK.
func TestDocDelivery(t *testing.T) {
	ex := docs.KAT(t, dataplaneDoc, "deliver")
	h := Header{Tenant: ex.Text("tenant"), Type: ex.Text("type"), Version: uint32(ex.Uint("version"))}
	in, err := info(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("info"); !bytes.Equal(in, want) {
		t.Errorf("info = %x, want %x", in, want)
	}
	kemID := uint16(ex.Uint("kem"))
	if kemID != KEMX25519 {
		t.Fatalf("kem = %#04x, want X25519 %#04x", kemID, KEMX25519)
	}
	priv, err := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(ex.Hex("private-key"))
	if err != nil {
		t.Fatal(err)
	}
	if pub, want := priv.PublicKey().Bytes(), ex.Hex("public-key"); !bytes.Equal(pub, want) {
		t.Errorf("public key = %x, want %x", pub, want)
	}
	dek, err := OpenDEK(priv, kemID, h, ex.Hex("sealed"))
	if err != nil {
		t.Fatalf("OpenDEK(the page's sealed DEK) = %v", err)
	}
	if want := ex.Hex("dek"); !bytes.Equal(dek.Bytes(), want) {
		t.Errorf("OpenDEK() = %x, want %x", dek.Bytes(), want)
	}
}

// TestDocBatch checks the batch example of docs/dataplane.md: the info and
// each DEK's associated data, then opens the page's DEKs with OpenDEKs and
// with the raw hpke API, in order.
func TestDocBatch(t *testing.T) {
	ex := docs.KAT(t, dataplaneDoc, "deliver-batch")
	if want := ex.Hex("info"); !bytes.Equal(batchInfo(), want) {
		t.Errorf("info = %x, want %x", batchInfo(), want)
	}
	var hs []Header
	var sealed [][]byte
	for i, v := range strings.Fields(ex.Raw("versions")) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		h := Header{Tenant: ex.Text("tenant"), Type: ex.Text("type"), Version: uint32(n)}
		aad, err := batchAAD(h)
		if err != nil {
			t.Fatal(err)
		}
		if want := ex.Hex(fmt.Sprintf("aad-%d", i)); !bytes.Equal(aad, want) {
			t.Errorf("aad-%d = %x, want %x", i, aad, want)
		}
		hs = append(hs, h)
		sealed = append(sealed, ex.Hex(fmt.Sprintf("sealed-%d", i)))
	}
	kemID := uint16(ex.Uint("kem"))
	priv, err := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(ex.Hex("private-key"))
	if err != nil || kemID != KEMX25519 {
		t.Fatalf("kem %#04x, private key: %v", kemID, err)
	}
	deks, err := OpenDEKs(priv, kemID, ex.Hex("enc"), hs, sealed)
	if err != nil {
		t.Fatalf("OpenDEKs(the page's batch) = %v", err)
	}
	r, err := hpke.NewRecipient(ex.Hex("enc"), priv, hpke.HKDFSHA256(), hpke.AES256GCM(), ex.Hex("info"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range deks {
		want := ex.Hex(fmt.Sprintf("dek-%d", i))
		if !bytes.Equal(deks[i].Bytes(), want) {
			t.Errorf("OpenDEKs()[%d] = %x, want %x", i, deks[i].Bytes(), want)
		}
		if raw, err := r.Open(ex.Hex(fmt.Sprintf("aad-%d", i)), sealed[i]); err != nil || !bytes.Equal(raw, want) {
			t.Errorf("Recipient.Open(sealed-%d) = %x, %v, want %x", i, raw, err, want)
		}
	}
}

// TestDocStream recomputes the stream example of docs/dataplane.md: the
// header, the subkey's info, the subkey (HKDF-SHA256), the associated data
// and each chunk with plain AES-256-GCM under the page's nonces, then opens
// the page's stream with OpenStream.
func TestDocStream(t *testing.T) {
	ex := docs.KAT(t, dataplaneDoc, "stream")
	dek := ex.Key("dek")
	h := StreamHeader{Header: Header{Tenant: ex.Text("tenant"), Type: ex.Text("type"), Version: uint32(ex.Uint("version"))},
		Chunk: int(ex.Uint("chunk"))}
	copy(h.Salt[:], ex.Hex("salt"))
	var context map[string]string
	if err := json.Unmarshal([]byte(ex.Raw("context")), &context); err != nil {
		t.Fatalf("context: %v", err)
	}
	plaintext := []byte(ex.Text("plaintext"))
	hb := h.marshal()
	if want := ex.Hex("header"); !bytes.Equal(hb, want) {
		t.Errorf("header = %x, want %x", hb, want)
	}
	info := append([]byte{byte(len(streamLabel))}, streamLabel...)
	info = append(info, hb[:len(hb)-SaltSize]...)
	if want := ex.Hex("info"); !bytes.Equal(info, want) {
		t.Errorf("info = %x, want %x", info, want)
	}
	subkey, err := hkdf.Key(sha256.New, dek.Bytes(), h.Salt[:], string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("subkey"); !bytes.Equal(subkey, want) {
		t.Errorf("subkey = %x, want %x", subkey, want)
	}
	c, err := canonical(context)
	if err != nil {
		t.Fatal(err)
	}
	a := append(append([]byte{byte(len(streamLabel))}, streamLabel...), hb...)
	a = append(a, c...)
	if want := ex.Hex("aad"); !bytes.Equal(a, want) {
		t.Errorf("aad = %x, want %x", a, want)
	}
	stream := bytes.Clone(hb)
	for i, part := range [][]byte{plaintext[:h.Chunk], plaintext[h.Chunk:]} {
		nonce := ex.Hex(fmt.Sprintf("nonce-%d", i))
		want := ex.Hex(fmt.Sprintf("chunk-%d", i))
		got := docs.GCM(t, subkey, nonce, part, a)[len(nonce):]
		if !bytes.Equal(got, want) {
			t.Errorf("chunk %d = %x, want %x", i, got, want)
		}
		stream = append(stream, want...)
	}
	src := bytes.NewReader(stream)
	rh, err := ReadStreamHeader(src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenStream(src, dek, rh, context)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := io.ReadAll(r); err != nil || !bytes.Equal(pt, plaintext) {
		t.Errorf("OpenStream(the page's stream) = %q, %v, want %q", pt, err, plaintext)
	}
}
