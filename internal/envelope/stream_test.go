package envelope

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// small is the chunk size of most stream tests: the smallest allowed, so
// that every boundary is cheap to reach.
const small = MinChunk

func sealStream(t testing.TB, dek secret.Key, h Header, c map[string]string, chunk int, pt []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := SealStream(&out, dek, h, c, chunk)
	if err != nil {
		t.Fatalf("SealStream() error = %v", err)
	}
	// Odd write sizes, so that writes straddle chunks.
	for p := pt; len(p) > 0; {
		n := min(len(p), 37)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatalf("Write() error = %v", err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	return out.Bytes()
}

// openStream reads a whole stream; what it returns before an error is
// returned too.
func openStream(dek secret.Key, ct []byte, c map[string]string) ([]byte, error) {
	src := bytes.NewReader(ct)
	h, err := ReadStreamHeader(src)
	if err != nil {
		return nil, err
	}
	r, err := OpenStream(src, dek, h, c)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestStreamRoundTrip(t *testing.T) {
	dek := newKey(t)
	for _, chunk := range []int{small, 1000, DefaultChunk} {
		for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 2*chunk - 1, 2 * chunk, 5*chunk + 3} {
			pt := pattern(n)
			ct := sealStream(t, dek, hdr, ctx, chunk, pt)
			h := StreamHeader{Header: hdr, Chunk: chunk}
			if int64(len(ct)) != h.StreamLength(int64(n)) {
				t.Errorf("chunk %d, %d bytes: len(stream) = %d, want %d", chunk, n, len(ct), h.StreamLength(int64(n)))
			}
			got, err := openStream(dek, ct, ctx)
			if err != nil || !bytes.Equal(got, pt) {
				t.Errorf("chunk %d, %d bytes: open = %d bytes, %v, want the plaintext", chunk, n, len(got), err)
			}
			// Through a reader that returns one byte at a time.
			src := iotest.OneByteReader(bytes.NewReader(ct))
			sh, err := ReadStreamHeader(src)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := OpenStream(src, dek, sh, ctx)
			if got, err := io.ReadAll(iotest.OneByteReader(r)); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("chunk %d, %d bytes, byte by byte: open = %d bytes, %v", chunk, n, len(got), err)
			}
		}
	}
}

// TestStreamFormat builds a stream of two chunks by hand: the header, the
// subkey and the nonces as docs/dataplane.md specifies them.
func TestStreamFormat(t *testing.T) {
	dek := newKey(t)
	pt := pattern(small + 5)
	ct := sealStream(t, dek, hdr, ctx, small, pt)
	hb := append(hdr.marshal(), 0, 0, 0, small)
	hb[0] = FormatStream
	if !bytes.HasPrefix(ct, hb) {
		t.Fatalf("stream starts % x, want % x", ct[:len(hb)], hb)
	}
	salt := ct[len(hb) : len(hb)+SaltSize]
	full := ct[:len(hb)+SaltSize]
	info := append([]byte{byte(len(streamLabel))}, streamLabel...)
	raw, err := primitive.HKDF(dek.Bytes(), salt, append(info, hb...), 32)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := secret.New(raw)
	s, _ := primitive.NewStream(sub)
	c, _ := canonical(ctx)
	aad := append(append(append([]byte{}, info...), full...), c...)
	body := ct[len(full):]
	first, err := s.Open(nil, body[:small+16], aad, false)
	if err != nil || !bytes.Equal(first, pt[:small]) {
		t.Fatalf("chunk 0 = %v, %v", first, err)
	}
	second, err := s.Open(nil, body[small+16:], aad, true)
	if err != nil || !bytes.Equal(second, pt[small:]) {
		t.Fatalf("chunk 1 = %v, %v", second, err)
	}
}

// mustFail checks that a stream does not open, with ErrDecrypt (or
// ErrMalformed for a header that does not parse), and that no plaintext of
// an unauthenticated chunk came out: what came out is a prefix of want
// made of whole chunks.
func mustFail(t *testing.T, what string, dek secret.Key, ct []byte, c map[string]string, want []byte) {
	t.Helper()
	got, err := openStream(dek, ct, c)
	if err != ErrDecrypt && err != ErrMalformed {
		t.Fatalf("%s: open = %d bytes, %v, want ErrDecrypt", what, len(got), err)
	}
	if len(got)%small != 0 || !bytes.HasPrefix(want, got) {
		t.Fatalf("%s: open returned %d bytes before failing, not whole authenticated chunks", what, len(got))
	}
}

func TestStreamTruncated(t *testing.T) {
	dek := newKey(t)
	for _, n := range []int{0, 1, small, 3 * small, 3*small + 10} {
		pt := pattern(n)
		ct := sealStream(t, dek, hdr, ctx, small, pt)
		// Every length short of the whole: each chunk boundary, the middle
		// of each chunk and tag, and inside the header.
		for l := range len(ct) {
			mustFail(t, "truncated", dek, ct[:l], ctx, pt)
		}
	}
}

// chunksOf splits a stream into its header and sealed chunks.
func chunksOf(ct []byte, chunk int) ([]byte, [][]byte) {
	hl := hdr.size() + 4 + SaltSize
	var out [][]byte
	for b := ct[hl:]; len(b) > 0; {
		n := min(len(b), chunk+primitive.TagSize)
		out = append(out, b[:n])
		b = b[n:]
	}
	return ct[:hl], out
}

func join(h []byte, chunks ...[]byte) []byte {
	return bytes.Join(append([][]byte{h}, chunks...), nil)
}

func TestStreamRearranged(t *testing.T) {
	dek := newKey(t)
	pt := pattern(3*small + 10)
	ct := sealStream(t, dek, hdr, ctx, small, pt)
	h, c := chunksOf(ct, small)
	if len(c) != 4 {
		t.Fatalf("%d chunks, want 4", len(c))
	}
	other := sealStream(t, dek, hdr, ctx, small, pt) // another salt, so another subkey
	oh, oc := chunksOf(other, small)
	full := sealStream(t, dek, hdr, ctx, small, pt[:3*small]) // last chunk full
	_, fc := chunksOf(full, small)
	for name, bad := range map[string][]byte{
		"swapped 0 1":        join(h, c[1], c[0], c[2], c[3]),
		"swapped 1 2":        join(h, c[0], c[2], c[1], c[3]),
		"duplicated 0":       join(h, c[0], c[0], c[1], c[2], c[3]),
		"duplicated 2":       join(h, c[0], c[1], c[2], c[2], c[3]),
		"duplicated last":    join(h, c[0], c[1], c[2], c[3], c[3]),
		"dropped 0":          join(h, c[1], c[2], c[3]),
		"dropped 1":          join(h, c[0], c[2], c[3]),
		"dropped last":       join(h, c[0], c[1], c[2]),
		"appended chunk":     join(h, c[0], c[1], c[2], c[3], c[1]),
		"appended byte":      append(bytes.Clone(ct), 0),
		"appended empty tag": join(h, c[0], c[1], c[2], c[3], make([]byte, 16)),
		"other header":       join(oh, c[0], c[1], c[2], c[3]),
		"chunk of another":   join(h, c[0], oc[1], c[2], c[3]),
		"last as non-last":   join(h, c[0], c[1], fc[2], c[3]),
		"no chunk":           h,
	} {
		mustFail(t, name, dek, bad, ctx, pt)
	}
}

func TestStreamFlippedBits(t *testing.T) {
	dek := newKey(t)
	pt := pattern(2*small + 1)
	ct := sealStream(t, dek, hdr, ctx, small, pt)
	for i := range ct {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(ct)
			bad[i] ^= bit
			mustFail(t, "flipped bit", dek, bad, ctx, pt)
		}
	}
}

func TestStreamWrongKeyOrContext(t *testing.T) {
	dek := newKey(t)
	pt := pattern(small + 1)
	ct := sealStream(t, dek, hdr, ctx, small, pt)
	mustFail(t, "another DEK", newKey(t), ct, ctx, pt)
	for name, c := range map[string]map[string]string{
		"no context":      nil,
		"another value":   {"table": "accounts", "field": "ssn", "row": "43"},
		"a pair missing":  {"table": "accounts", "field": "ssn"},
		"a pair added":    {"table": "accounts", "field": "ssn", "row": "42", "x": ""},
		"invalid context": {"": "x"},
	} {
		mustFail(t, name, dek, ct, c, pt)
	}
	// Relabelled with another version, type or tenant (the header is the
	// subkey's info and the chunks' associated data).
	for name, h := range map[string]Header{
		"version": {Tenant: hdr.Tenant, Type: hdr.Type, Version: hdr.Version + 1},
		"type":    {Tenant: hdr.Tenant, Type: "analytics", Version: hdr.Version},
		"tenant":  {Tenant: "fedcba9876543210fedcba9876543210", Type: hdr.Type, Version: hdr.Version},
	} {
		src := bytes.NewReader(ct)
		sh, err := ReadStreamHeader(src)
		if err != nil {
			t.Fatal(err)
		}
		relabelled := StreamHeader{Header: h, Chunk: sh.Chunk, Salt: sh.Salt}
		bad := append(relabelled.marshal(), ct[sh.Size():]...)
		mustFail(t, "another "+name, dek, bad, ctx, pt)
	}
	if _, err := openStream(dek, mustSeal(t, dek, hdr, ctx, pt), ctx); err != ErrMalformed {
		t.Errorf("a format 1 ciphertext as a stream: %v, want ErrMalformed", err)
	}
}

func TestSealStreamRefuses(t *testing.T) {
	dek := newKey(t)
	for name, f := range map[string]func() error{
		"chunk too small": func() error { _, err := SealStream(io.Discard, dek, hdr, nil, MinChunk-1); return err },
		"chunk too large": func() error { _, err := SealStream(io.Discard, dek, hdr, nil, MaxChunk+1); return err },
		"bad header":      func() error { _, err := SealStream(io.Discard, dek, Header{Tenant: "t"}, nil, 0); return err },
		"bad context":     func() error { _, err := SealStream(io.Discard, dek, hdr, map[string]string{"": ""}, 0); return err },
		"no key":          func() error { _, err := SealStream(io.Discard, secret.Key{}, hdr, nil, 0); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("SealStream(%s) = nil error", name)
		}
	}
	w, _ := SealStream(io.Discard, dek, hdr, nil, 0)
	w.Close()
	if _, err := w.Write([]byte("x")); err != ErrClosed {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// An error of the source is passed on as it is, not as the end of the
// stream.
func TestStreamSourceError(t *testing.T) {
	dek := newKey(t)
	ct := sealStream(t, dek, hdr, nil, small, pattern(3*small))
	boom := errors.New("boom")
	src := io.MultiReader(bytes.NewReader(ct[:len(ct)/2]), iotest.ErrReader(boom))
	h, err := ReadStreamHeader(src)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := OpenStream(src, dek, h, nil)
	if _, err := io.ReadAll(r); err != boom {
		t.Errorf("ReadAll() error = %v, want the source's", err)
	}
}

func FuzzOpenStream(f *testing.F) {
	dek := fuzzKey()
	f.Add([]byte{3, 1, 't', 4, 'd', 'a', 't', 'a', 0, 0, 0, 1, 0, 0, 0, 64}, "", "")
	f.Fuzz(func(t *testing.T, ct []byte, k, v string) {
		c := contextOf(k, v)
		src := bytes.NewReader(ct)
		h, err := ReadStreamHeader(src)
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("ReadStreamHeader() = %v, want ErrMalformed", err)
			}
			return
		}
		if h.Check() != nil || h.Chunk < MinChunk || h.Chunk > MaxChunk || !bytes.HasPrefix(ct, h.marshal()) {
			t.Fatalf("ReadStreamHeader() accepted %+v", h)
		}
		r, err := OpenStream(src, dek, h, c)
		if err != nil {
			if err != ErrDecrypt {
				t.Fatalf("OpenStream() = %v", err)
			}
			return
		}
		pt, err := io.ReadAll(r)
		if err != nil {
			if err != ErrDecrypt || len(pt)%h.Chunk != 0 {
				t.Fatalf("read %d bytes, then %v: every failure must be ErrDecrypt, after whole chunks", len(pt), err)
			}
			return
		}
		if int64(len(ct)) != h.StreamLength(int64(len(pt))) || CheckContext(c) != nil {
			t.Fatalf("opened a stream of %d bytes into %d bytes", len(ct), len(pt))
		}
	})
}

func TestWriteStreamFuzzCorpus(t *testing.T) {
	dek := fuzzKey()
	h := Header{Tenant: "t", Type: "data", Version: 1}
	two := sealStream(t, dek, h, map[string]string{"field": "ssn"}, small, []byte("a stream of more than one chunk: sixty-four bytes and then some more"))
	empty := sealStream(t, dek, h, nil, small, nil)
	w := fuzzcorpus.New(t)
	w.Add("FuzzOpenStream", "two-chunks", two, "field", "ssn")
	w.Add("FuzzOpenStream", "empty", empty, "", "")
	w.Add("FuzzOpenStream", "wrong-context", two, "field", "ssm")
	w.Add("FuzzOpenStream", "truncated", two[:len(two)-17], "field", "ssn")
	w.Add("FuzzOpenStream", "format-1", mustSeal(t, dek, h, nil, []byte("x")), "", "")
}
