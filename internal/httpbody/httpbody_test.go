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
