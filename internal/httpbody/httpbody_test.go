package httpbody

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"
)

func TestReadAll(t *testing.T) {
	body := strings.Repeat("x", 1400)
	for _, c := range []struct {
		name          string
		length, limit int64
	}{
		{"exact length", 1400, 1 << 20},
		{"unknown length", -1, 1 << 20},
		{"length over the limit", 1400, 100},
		{"length understated", 10, 1 << 20},
		{"length overstated", 5000, 1 << 20},
		{"length over Presize", 1 << 20, 1 << 20},
	} {
		for _, r := range []io.Reader{strings.NewReader(body), iotest.OneByteReader(strings.NewReader(body))} {
			got, err := ReadAll(r, c.length, c.limit)
			if err != nil || string(got) != body {
				t.Errorf("%s: ReadAll = %d bytes, %v", c.name, len(got), err)
			}
		}
	}
	want := errors.New("broken")
	got, err := ReadAll(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(want)), 100, 1<<20)
	if !errors.Is(err, want) || string(got) != "abc" {
		t.Errorf("ReadAll(failing reader) = %q, %v", got, err)
	}
}

// TestReadAllOneBuffer: a body of the announced length is read into one
// buffer, never moved to a larger one as it arrives (each Read is handed
// the rest of the same array).
func TestReadAllOneBuffer(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1400)
	rr := &recordingReader{r: iotest.HalfReader(bytes.NewReader(body))}
	got, err := ReadAll(rr, int64(len(body)), 1<<20)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("ReadAll = %d bytes, %v", len(got), err)
	}
	if len(rr.starts) < 3 {
		t.Fatalf("only %d reads", len(rr.starts))
	}
	for i, s := range rr.starts {
		if s != rr.starts[0] {
			t.Fatalf("read %d went to another buffer: the body was copied as it grew", i)
		}
	}
	// The check can fail: without the length, the buffer grows.
	rr = &recordingReader{r: iotest.HalfReader(bytes.NewReader(body))}
	if _, err := ReadAll(rr, -1, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rr.starts, func(s uintptr) bool { return s != rr.starts[0] }) {
		t.Errorf("without a length, a %d-byte body was read into one buffer of the first size", len(body))
	}
}

// recordingReader records, for each Read, where the buffer it was handed
// starts (the slice's address less what was read before it).
type recordingReader struct {
	r      io.Reader
	n      int
	starts []uintptr
}

func (r *recordingReader) Read(p []byte) (int, error) {
	if len(p) > 0 {
		r.starts = append(r.starts, uintptr(unsafe.Pointer(unsafe.SliceData(p)))-uintptr(r.n))
	}
	n, err := r.r.Read(p)
	r.n += n
	return n, err
}

// TestReadAllClaimedLength: a body that claims the limit and sends a few
// bytes makes a buffer of about Presize (rounded up to an allocation size
// class), not of its claim.
func TestReadAllClaimedLength(t *testing.T) {
	got, err := ReadAll(strings.NewReader("{}"), 1<<20, 1<<20)
	if err != nil || string(got) != "{}" || cap(got) > 2*Presize {
		t.Errorf("ReadAll(2 bytes claiming 1 MiB) = %q (a buffer of %d bytes), %v; want at most %d bytes", got, cap(got), err, 2*Presize)
	}
}
