package armor

import (
	"bytes"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	good := Encode("STRONGROOM THING", []byte{1, 2, 3})
	if der, err := Decode(good, "STRONGROOM THING", 1<<10); err != nil || !bytes.Equal(der, []byte{1, 2, 3}) {
		t.Fatalf("Decode(Encode()) = %x, %v", der, err)
	}
	if _, err := Decode(append(bytes.Clone(good), " \r\n\t"...), "STRONGROOM THING", 1<<10); err != nil {
		t.Errorf("Decode(trailing whitespace) error = %v", err)
	}
	cases := map[string]struct {
		data []byte
		max  int
		want string
	}{
		"other type":    {good, 1 << 10, `not a STRONGROOM OTHER (expected a PEM block "BEGIN STRONGROOM OTHER")`},
		"garbage":       {[]byte("hello"), 1 << 10, "not a STRONGROOM OTHER"},
		"trailing junk": {append(bytes.Clone(good), 'x'), 1 << 10, "trailing data"},
		"too large":     {good, 10, "larger than 10 bytes"},
		"second block":  {append(bytes.Clone(good), good...), 1 << 10, "trailing data"},
		"with a header": {[]byte("-----BEGIN STRONGROOM OTHER-----\nA: b\n\nAQID\n-----END STRONGROOM OTHER-----\n"), 1 << 10, "unexpected PEM headers"},
	}
	for name, c := range cases {
		_, err := Decode(c.data, "STRONGROOM OTHER", c.max)
		if name == "trailing junk" || name == "second block" {
			_, err = Decode(c.data, "STRONGROOM THING", c.max)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Decode() error = %v, want %q", name, err, c.want)
		}
	}
}
