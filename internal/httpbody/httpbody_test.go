package httpbody

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
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

// TestReadAllOneAllocation: a body of the announced length is read into
// one buffer.
func TestReadAllOneAllocation(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1400)
	r := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		if _, err := ReadAll(r, int64(len(body)), 1<<20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("ReadAll of a %d-byte body of known length: %v allocations, want 1", len(body), allocs)
	}
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
