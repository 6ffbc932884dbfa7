package hsm_test

import (
	"bytes"
	"crypto/aes"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keywrap"
)

const formatsDoc = "../../docs/formats.md"

// TestDocContextWrap recomputes the context-bound key wrap of
// docs/formats.md from its inputs with the software reference, and checks
// that it is the known answer every backend's self-test checks (kat.go).
func TestDocContextWrap(t *testing.T) {
	ex := docs.KAT(t, formatsDoc, "context-wrap")
	w, context, key := ex.Key("wrapping-key"), []byte(ex.Text("context")), ex.Hex("key")
	if got, want := hsm.KEKInput(context), ex.Hex("d"); !bytes.Equal(got[:], want) {
		t.Errorf("KEKInput() = %x, want %x", got, want)
	}
	kek := hsm.ContextKEK(w, context)
	if want := ex.Hex("kek"); !bytes.Equal(kek.Bytes(), want) {
		t.Errorf("ContextKEK() = %x, want %x", kek.Bytes(), want)
	}
	block, err := aes.NewCipher(kek.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	out, err := keywrap.WrapPad(block, key)
	if err != nil {
		t.Fatal(err)
	}
	want := ex.Hex("wrapped")
	if !bytes.Equal(out, want) {
		t.Errorf("AES-KWP(KEK, key) = %x, want %x", out, want)
	}
	if !bytes.Equal(w.Bytes(), hsm.KATKey) || !bytes.Equal(context, hsm.KATWrapContext) ||
		!bytes.Equal(key, hsm.KATWrapTarget) || !bytes.Equal(want, hsm.KATWrapped) {
		t.Error("the page's example is not the backends' self-test (hsm.KATKey, KATWrapContext, KATWrapTarget, KATWrapped)")
	}
}

// TestDocSealed checks the sealed-data example of docs/formats.md: it is
// AES-256-GCM of its inputs with its nonce, and the known answer every
// backend's self-test opens with SecretKey.Open (kat.go).
func TestDocSealed(t *testing.T) {
	ex := docs.KAT(t, formatsDoc, "sealed")
	key, nonce, pt, aad := ex.Key("key"), ex.Hex("nonce"), []byte(ex.Text("plaintext")), []byte(ex.Text("aad"))
	want := ex.Hex("sealed")
	if got := docs.GCM(t, key.Bytes(), nonce, pt, aad); !bytes.Equal(got, want) {
		t.Errorf("AES-256-GCM = %x, want %x", got, want)
	}
	if !bytes.Equal(key.Bytes(), hsm.KATKey) || !bytes.Equal(nonce, hsm.KATNonce) || !bytes.Equal(pt, hsm.KATPlaintext) ||
		!bytes.Equal(aad, hsm.KATAAD) || !bytes.Equal(want, hsm.KATSealed) {
		t.Error("the page's example is not the backends' self-test (hsm.KATKey, KATNonce, KATPlaintext, KATAAD, KATSealed)")
	}
}
