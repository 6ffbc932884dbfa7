package client_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/strongroom-kms/strongroom/client"
)

const (
	chunk  = client.StreamChunk
	sealed = chunk + 16 // a sealed chunk: ciphertext and tag
	tenant = "0123456789abcdef0123456789abcdef"
)

func testDEK(t testing.TB, version uint32) client.DEK {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	d := client.NewTestDEK(tenant, "data", version, key)
	t.Cleanup(d.Destroy)
	return d
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i ^ i>>9)
	}
	return b
}

func encryptStream(t testing.TB, d client.DEK, pt []byte, c map[string]string) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := d.EncryptWriter(&out, c)
	if err != nil {
		t.Fatalf("EncryptWriter() = %v", err)
	}
	if _, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(pt))); err != nil {
		t.Fatalf("writing = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return out.Bytes()
}

func decryptStream(d client.DEK, ct []byte, c map[string]string) ([]byte, error) {
	r, err := d.DecryptReader(bytes.NewReader(ct), c)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

var streamCtx = map[string]string{"file": "backup.tar"}

func TestStreamRoundTrip(t *testing.T) {
	d := testDEK(t, 3)
	for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 7*chunk + 13} {
		pt := pattern(n)
		ct := encryptStream(t, d, pt, streamCtx)
		if ct[0] != client.FormatStream {
			t.Fatalf("%d bytes: stream starts with %#x, want %#x", n, ct[0], client.FormatStream)
		}
		got, err := decryptStream(d, ct, streamCtx)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%d bytes: DecryptReader() = %d bytes, %v, want the plaintext", n, len(got), err)
		}
	}
}

// TestStreamWithDeliveredDEK: a DEK the server delivered streams too, and
// a stream does not open as a single ciphertext, on the server or locally.
func TestStreamWithDeliveredDEK(t *testing.T) {
	_, app := dekServer(t)
	d, err := app.DEK(ctx, "acme", "data", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy()
	pt := pattern(3*chunk + 1)
	ct := encryptStream(t, d, pt, streamCtx)
	if got, err := decryptStream(d, ct, streamCtx); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("DecryptReader() = %d bytes, %v", len(got), err)
	}
	if _, err := d.Decrypt(ct, streamCtx); !errors.Is(err, client.ErrDecrypt) {
		t.Errorf("Decrypt(stream) = %v, want ErrDecrypt", err)
	}
	if _, err := decryptStream(d, mustEncrypt(t, d, pt[:10]), streamCtx); !errors.Is(err, client.ErrDecrypt) {
		t.Errorf("DecryptReader(single ciphertext) = %v, want ErrDecrypt", err)
	}
}

func mustEncrypt(t *testing.T, d client.DEK, pt []byte) []byte {
	ct, err := d.Encrypt(pt, streamCtx)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// mustNotOpen checks that a stream fails with ErrDecrypt, and that what
// came out before the failure is whole chunks of the plaintext.
func mustNotOpen(t *testing.T, what string, d client.DEK, ct []byte, c map[string]string, pt []byte) {
	t.Helper()
	got, err := decryptStream(d, ct, c)
	if !errors.Is(err, client.ErrDecrypt) {
		t.Errorf("%s: DecryptReader() = %d bytes, %v, want ErrDecrypt", what, len(got), err)
		return
	}
	if len(got)%chunk != 0 || !bytes.HasPrefix(pt, got) {
		t.Errorf("%s: %d bytes came out before the failure, not whole authenticated chunks", what, len(got))
	}
}

func TestStreamTampered(t *testing.T) {
	d := testDEK(t, 3)
	pt := pattern(3*chunk + 100)
	ct := encryptStream(t, d, pt, streamCtx)
	hl := len(ct) - 3*sealed - (100 + 16) // the header's length
	at := func(i int) []byte { return ct[hl+i*sealed : min(len(ct), hl+(i+1)*sealed)] }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	h := ct[:hl]

	// Truncated at every chunk boundary, in every chunk, in its tag, and in
	// the header.
	for _, l := range []int{0, 1, hl - 1, hl, hl + 1, hl + sealed - 1, hl + sealed, hl + sealed + 1, hl + 2*sealed,
		hl + 2*sealed + chunk/2, hl + 3*sealed - 8, hl + 3*sealed, hl + 3*sealed + 50, len(ct) - 1} {
		mustNotOpen(t, "truncated", d, ct[:l], streamCtx, pt)
	}
	for name, bad := range map[string][]byte{
		"reordered":           join(h, at(1), at(0), at(2), at(3)),
		"duplicated":          join(h, at(0), at(0), at(1), at(2), at(3)),
		"dropped":             join(h, at(0), at(2), at(3)),
		"dropped last":        join(h, at(0), at(1), at(2)),
		"last chunk repeated": join(h, at(0), at(1), at(2), at(3), at(3)),
		"appended":            append(bytes.Clone(ct), 0),
	} {
		mustNotOpen(t, name, d, bad, streamCtx, pt)
	}
	// Flipped bits in every byte of the header and in each part of the
	// body.
	for _, i := range append(seq(0, hl), hl, hl+chunk/2, hl+sealed-1, hl+sealed, hl+3*sealed+99, len(ct)-1) {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x10
		mustNotOpen(t, "flipped bit", d, bad, streamCtx, pt)
	}
	mustNotOpen(t, "another context", d, ct, map[string]string{"file": "backup.tgz"}, pt)
	mustNotOpen(t, "no context", d, ct, nil, pt)
	// Another version of the key, even with the same bytes: the header names
	// version 3.
	other := client.NewTestDEK(tenant, "data", 4, d.Bytes())
	defer other.Destroy()
	if _, err := decryptStream(other, ct, streamCtx); !errors.Is(err, client.ErrDecrypt) || !bytes.Contains([]byte(err.Error()), []byte("version 3")) {
		t.Errorf("DecryptReader(version 4's DEK) = %v, want ErrDecrypt naming version 3", err)
	}
	mustNotOpen(t, "another DEK", testDEK(t, 3), ct, streamCtx, pt)
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func TestStreamDestroyed(t *testing.T) {
	d := testDEK(t, 1)
	ct := encryptStream(t, d, pattern(10), nil)
	w, err := d.EncryptWriter(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Destroy()
	if _, err := d.EncryptWriter(io.Discard, nil); err != client.ErrDestroyed {
		t.Errorf("EncryptWriter() after Destroy = %v, want ErrDestroyed", err)
	}
	if _, err := decryptStream(d, ct, nil); err != client.ErrDestroyed {
		t.Errorf("DecryptReader() after Destroy = %v, want ErrDestroyed", err)
	}
	// A stream started before goes on under its own key.
	if _, err := w.Write([]byte("more")); err != nil || w.Close() != nil {
		t.Errorf("a stream started before Destroy: %v", err)
	}
}

// TestLargeStream encrypts and decrypts a stream generated on the fly, never
// stored, through a pipe, and checks that the heap stays bounded: 2 GiB, or
// 64 MiB with -short or the race detector.
func TestLargeStream(t *testing.T) {
	size := int64(2 << 30)
	if testing.Short() || raceEnabled {
		size = 64 << 20
	}
	d := testDEK(t, 1)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}

	src := &generator{left: size, sample: sample}
	in := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		w, err := d.EncryptWriter(pw, streamCtx)
		if err == nil {
			_, err = io.Copy(w, io.TeeReader(src, in))
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	r, err := d.DecryptReader(pr, streamCtx)
	if err != nil {
		t.Fatal(err)
	}
	out := sha256.New()
	n, err := io.Copy(out, r)
	if err != nil || n != size {
		t.Fatalf("decrypted %d bytes, %v, want %d", n, err, size)
	}
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Fatal("the decrypted stream differs from the plaintext")
	}
	sample()
	const bound = 16 << 20
	if peak > base && peak-base > bound {
		t.Errorf("heap in use grew by %d bytes over %d bytes of stream, want < %d", peak-base, size, bound)
	}
	t.Logf("%d MiB streamed; heap in use grew by at most %d KiB", size>>20, (peak-base)>>10)
}

// generator is a reader of left pseudo-random-looking bytes that samples the
// heap every 16 MiB.
type generator struct {
	left, done int64
	sample     func()
	block      [4096]byte
}

func (g *generator) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), g.left))
	before := g.done
	for i := 0; i < n; {
		off := g.done % int64(len(g.block))
		if off == 0 {
			g.block[0], g.block[1], g.block[2] = byte(g.done>>12), byte(g.done>>20), byte(g.done>>28)
		}
		k := copy(p[i:n], g.block[off:])
		i, g.done = i+k, g.done+int64(k)
	}
	g.left -= int64(n)
	if g.done>>24 != before>>24 {
		g.sample()
	}
	return n, nil
}

func TestStreamRefusesDeterministic(t *testing.T) {
	d := client.NewTestDEK(tenant, "deterministic", 1, make([]byte, 32))
	defer d.Destroy()
	if _, err := d.EncryptWriter(io.Discard, nil); !errors.Is(err, client.ErrField) {
		t.Errorf("EncryptWriter(deterministic key) = %v, want ErrField", err)
	}
}
