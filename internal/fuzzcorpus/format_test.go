package fuzzcorpus

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// same reports whether two values are equal and of the same type, with
// floats compared bit for bit (NaN included) and nil equal to an empty slice.
func same(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch a := a.(type) {
	case []byte:
		return bytes.Equal(a, b.([]byte))
	case float32:
		return math.Float32bits(a) == math.Float32bits(b.(float32))
	case float64:
		return math.Float64bits(a) == math.Float64bits(b.(float64))
	}
	return a == b
}

func TestEncode(t *testing.T) {
	tests := []struct {
		values []any
		want   string
	}{
		{[]any{[]byte("a\x00\xff\"")}, "go test fuzz v1\n[]byte(\"a\\x00\\xff\\\"\")\n"},
		{[]any{[]byte(nil), "é\n", ""}, "go test fuzz v1\n[]byte(\"\")\nstring(\"é\\n\")\nstring(\"\")\n"},
		{[]any{true, -3, int8(-128), int16(7), int64(math.MinInt64)}, "go test fuzz v1\nbool(true)\nint(-3)\nint8(-128)\nint16(7)\nint64(-9223372036854775808)\n"},
		{[]any{uint(1), uint16(300), uint32(5), uint64(math.MaxUint64)}, "go test fuzz v1\nuint(1)\nuint16(300)\nuint32(5)\nuint64(18446744073709551615)\n"},
		{[]any{byte(1), byte('a'), 'é', rune(-1)}, "go test fuzz v1\nbyte('\\x01')\nbyte('a')\nrune('é')\nint32(-1)\n"},
		{[]any{float32(1.5), 0.1, math.Inf(-1), math.NaN(), math.Float64frombits(0x7ff8000000000002)},
			"go test fuzz v1\nfloat32(1.5)\nfloat64(0.1)\nfloat64(-Inf)\nfloat64(NaN)\nmath.Float64frombits(0x7ff8000000000002)\n"},
	}
	for _, tt := range tests {
		got, err := Encode(tt.values...)
		if err != nil || string(got) != tt.want {
			t.Errorf("Encode(%#v) = %q, %v, want %q", tt.values, got, err, tt.want)
		}
	}
}

// The corpus writers before this package wrote []byte seeds with this
// format string: Encode must keep those files byte for byte.
func TestEncodeAsBefore(t *testing.T) {
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}
	got, err := Encode(data)
	if want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data); err != nil || string(got) != want {
		t.Errorf("Encode(0x00…0xff) = %q, %v, want %q", got, err, want)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, values := range [][]any{
		nil,
		{[]int{1}},
		{complex(1, 2)},
		{struct{}{}},
		{[]byte("ok"), nil},
	} {
		if got, err := Encode(values...); err == nil {
			t.Errorf("Encode(%#v) = %q, want an error", values, got)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	values := []any{
		[]byte{}, []byte("\x00\x01binary\xfe\xff"), "", "text with \"quotes\", \\ and \t tabs", "\xff not UTF-8",
		true, false,
		0, math.MaxInt64, math.MinInt64, int8(math.MinInt8), int16(math.MaxInt16), int32(math.MinInt32), int64(-1),
		uint(0), uint8(255), uint16(math.MaxUint16), uint32(math.MaxUint32), uint64(math.MaxUint64),
		byte(0), byte('\''), byte('\\'), 'x', rune(0x10ffff), rune(0xd800), rune(-5),
		float32(-0.0), float32(math.Inf(1)), float32(math.NaN()), math.Float32frombits(0x7fc00001),
		math.Copysign(0, -1), math.SmallestNonzeroFloat64, math.MaxFloat64, math.NaN(), math.Float64frombits(0xfff0000000000001),
	}
	for _, v := range values {
		enc, err := Encode(v)
		if err != nil {
			t.Errorf("Encode(%#v) error = %v", v, err)
			continue
		}
		got, err := Parse(enc)
		if err != nil || len(got) != 1 || !same(got[0], v) {
			t.Errorf("Parse(%q) = %#v, %v, want [%#v]", enc, got, err, v)
		}
	}
	// All of them in one file.
	enc, err := Encode(values...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(enc)
	if err != nil || len(got) != len(values) {
		t.Fatalf("Parse(Encode(%d values)) = %d values, %v", len(values), len(got), err)
	}
	for i := range values {
		if !same(got[i], values[i]) {
			t.Errorf("Parse(Encode(…)) value %d = %#v, want %#v", i, got[i], values[i])
		}
	}
}

// Files that "go test" reads although Encode does not write them so.
func TestParseOtherForms(t *testing.T) {
	tests := []struct {
		file string
		want []any
	}{
		{"go test fuzz v1\r\n[]byte(\"a\")\r\n", []any{[]byte("a")}},
		{"go test fuzz v1\n\n  string(`raw\\n`)  \n\n", []any{"raw\\n"}},
		{"go test fuzz v1\n[]byte(\"x\")", []any{[]byte("x")}},
		{"go test fuzz v1\nuint8(7)\nbyte(200)\nbyte('\\xff')\nrune(233)\nint32('a')\n", nil}, // int32 takes no character literal
		{"go test fuzz v1\nuint8(7)\nbyte(200)\nbyte('\\xff')\nrune(233)\nint32(97)\n", []any{uint8(7), byte(200), byte(255), rune(233), int32(97)}},
		{"go test fuzz v1\nint(0x10)\nint64(-0b11)\nuint16(0o17)\nuint32(1_000)\n", []any{16, int64(-3), uint16(15), uint32(1000)}},
		{"go test fuzz v1\nfloat64(3)\nfloat32(+Inf)\nmath.Float32frombits(0x7f800001)\n", []any{float64(3), float32(math.Inf(1)), math.Float32frombits(0x7f800001)}},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.file))
		if tt.want == nil {
			if err == nil {
				t.Errorf("Parse(%q) = %#v, want an error", tt.file, got)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("Parse(%q) = %#v, %v, want %#v", tt.file, got, err, tt.want)
			continue
		}
		for i := range got {
			if !same(got[i], tt.want[i]) {
				t.Errorf("Parse(%q) value %d = %#v, want %#v", tt.file, i, got[i], tt.want[i])
			}
		}
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		file string
		want string // in the error
	}{
		{"", "first line"},
		{"go test fuzz v2\n[]byte(\"a\")\n", "first line"},
		{"[]byte(\"a\")\n", "first line"},
		{"go test fuzz v1\n", "no values"},
		{"go test fuzz v1\n\n\n", "no values"},
		{"go test fuzz v1\n\"a\"\n", "want type(literal)"},
		{"go test fuzz v1\n[]byte(\"a\"\n", "want type(literal)"},
		{"go test fuzz v1\n[]byte(a)\n", "string literal"},
		{"go test fuzz v1\n[]byte('a')\n", "string literal"},
		{"go test fuzz v1\n[]byte(\"unterminated)\n", "line 2"},
		{"go test fuzz v1\nstring(\"a\") junk\n", "want type(literal)"},
		{"go test fuzz v1\nstring(\"a\" + \"b\")\n", "line 2"},
		{"go test fuzz v1\n[]byte(\"a\")\nstring(\"\\q\")\n", "line 3"},
		{"go test fuzz v1\n[]int(\"a\")\n", "unknown type"},
		{"go test fuzz v1\ncomplex128(1)\n", "unknown type"},
		{"go test fuzz v1\nbool(1)\n", "true or false"},
		{"go test fuzz v1\nint8(128)\n", "out of range"},
		{"go test fuzz v1\nuint(-1)\n", "invalid syntax"},
		{"go test fuzz v1\nint(+1)\n", "integer literal"},
		{"go test fuzz v1\nint(1.5)\n", "invalid syntax"},
		{"go test fuzz v1\nbyte('ā')\n", "fit in a byte"},
		{"go test fuzz v1\nbyte(256)\n", "out of range"},
		{"go test fuzz v1\nrune('ab')\n", "character literal"},
		{"go test fuzz v1\nrune('')\n", "character literal"},
		{"go test fuzz v1\nfloat64(\"1\")\n", "want a number"},
		{"go test fuzz v1\nfloat64(one)\n", "invalid syntax"},
		{"go test fuzz v1\nmath.Float32frombits(0x100000000)\n", "out of range"},
		{"go test fuzz v1\nmath.Sqrt(2)\n", "unknown type"},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.file))
		if err == nil || !strings.HasPrefix(err.Error(), "fuzzcorpus: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %#v, %v, want an error containing %q", tt.file, got, err, tt.want)
		}
	}
}
