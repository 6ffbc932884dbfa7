package fuzzcorpus

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// header is the first line of every corpus file.
const header = "go test fuzz v1"

// Encode formats one corpus entry as a "go test fuzz v1" file: the header
// line, then one type(literal) line per value, exactly as "go test -fuzz"
// writes it. The values may be []byte, string, bool, any integer type
// (byte and rune included), float32 or float64.
func Encode(values ...any) ([]byte, error) {
	if len(values) == 0 {
		return nil, errors.New("fuzzcorpus: an entry needs at least one value")
	}
	b := bytes.NewBufferString(header + "\n")
	for i, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(b, "string(%q)\n", v)
		case bool, int, int8, int16, int64, uint, uint16, uint32, uint64:
			fmt.Fprintf(b, "%T(%v)\n", v, v)
		case byte:
			fmt.Fprintf(b, "byte(%q)\n", v)
		case rune:
			if utf8.ValidRune(v) {
				fmt.Fprintf(b, "rune(%q)\n", v)
			} else {
				fmt.Fprintf(b, "int32(%d)\n", v)
			}
		case float32:
			// NaNs other than the usual one keep their bits.
			if math.IsNaN(float64(v)) && math.Float32bits(v) != math.Float32bits(float32(math.NaN())) {
				fmt.Fprintf(b, "math.Float32frombits(0x%x)\n", math.Float32bits(v))
			} else {
				fmt.Fprintf(b, "float32(%v)\n", v)
			}
		case float64:
			if math.IsNaN(v) && math.Float64bits(v) != math.Float64bits(math.NaN()) {
				fmt.Fprintf(b, "math.Float64frombits(0x%x)\n", math.Float64bits(v))
			} else {
				fmt.Fprintf(b, "float64(%v)\n", v)
			}
		default:
			return nil, fmt.Errorf("fuzzcorpus: value %d is a %T, which a fuzz test cannot take", i, v)
		}
	}
	return b.Bytes(), nil
}

// Parse reads a "go test fuzz v1" file and returns its values, with the Go
// types they have in the fuzz test: []byte, string, bool, the integer types
// (a byte is a uint8, a rune an int32), float32 and float64. Like "go test",
// it accepts CRLF line ends and blank lines; it refuses anything else that
// is not a header line followed by at least one type(literal) line.
func Parse(data []byte) ([]any, error) {
	values, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("fuzzcorpus: %w", err)
	}
	return values, nil
}

func parse(data []byte) ([]any, error) {
	lines := strings.Split(string(data), "\n")
	if first := strings.TrimSuffix(lines[0], "\r"); first != header {
		return nil, fmt.Errorf("first line is %q, want %q", first, header)
	}
	var values []any
	for i, line := range lines[1:] {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		v, err := parseValue(line)
		if err != nil {
			return nil, fmt.Errorf("line %d, %s: %w", i+2, line, err)
		}
		values = append(values, v)
	}
	if len(values) == 0 {
		return nil, errors.New("no values after the header line")
	}
	return values, nil
}

// parseValue reads one type(literal) line.
func parseValue(line string) (any, error) {
	typ, rest, ok := strings.Cut(line, "(")
	if !ok || !strings.HasSuffix(rest, ")") {
		return nil, errors.New("want type(literal)")
	}
	lit := strings.TrimSpace(rest[:len(rest)-1])
	switch typ {
	case "[]byte":
		s, err := unquoteString(lit)
		return []byte(s), err
	case "string":
		return unquoteString(lit)
	case "bool":
		switch lit {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, errors.New("want true or false")
	case "byte", "rune":
		if strings.HasPrefix(lit, "'") {
			return parseChar(lit, typ)
		}
		return parseInt(lit, map[string]string{"byte": "uint8", "rune": "int32"}[typ])
	case "float32", "float64":
		if strings.HasPrefix(lit, "'") || strings.HasPrefix(lit, `"`) {
			return nil, errors.New("want a number")
		}
		if typ == "float32" {
			f, err := strconv.ParseFloat(lit, 32)
			return float32(f), err
		}
		return strconv.ParseFloat(lit, 64)
	case "math.Float32frombits":
		bits, err := parseInt(lit, "uint32")
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(bits.(uint32)), nil
	case "math.Float64frombits":
		bits, err := parseInt(lit, "uint64")
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(bits.(uint64)), nil
	}
	if _, ok := intTypes[typ]; ok {
		return parseInt(lit, typ)
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}

func unquoteString(lit string) (string, error) {
	if !strings.HasPrefix(lit, `"`) && !strings.HasPrefix(lit, "`") {
		return "", errors.New("want a string literal")
	}
	return strconv.Unquote(lit)
}

// parseChar reads a character literal as a byte or a rune.
func parseChar(lit, typ string) (any, error) {
	if len(lit) < 3 || !strings.HasSuffix(lit, "'") {
		return nil, errors.New("malformed character literal")
	}
	r, _, tail, err := strconv.UnquoteChar(lit[1:len(lit)-1], '\'')
	if err != nil || tail != "" {
		return nil, errors.New("malformed character literal")
	}
	if typ == "rune" {
		return r, nil
	}
	if r > 0xff {
		return nil, errors.New("character does not fit in a byte")
	}
	return byte(r), nil
}

// intTypes are the integer types a corpus file can name.
var intTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, v := range []any{int(0), int8(0), int16(0), int32(0), int64(0), uint(0), uint8(0), uint16(0), uint32(0), uint64(0)} {
		m[fmt.Sprintf("%T", v)] = reflect.TypeOf(v)
	}
	return m
}()

// parseInt reads an integer literal (decimal, 0x, 0o or 0b, optionally
// negative) as a value of the integer type typ.
func parseInt(lit, typ string) (any, error) {
	t, ok := intTypes[typ]
	if !ok || strings.HasPrefix(lit, "+") {
		return nil, errors.New("want an integer literal")
	}
	bits := t.Bits()
	if t.Kind() == reflect.Int || t.Kind() == reflect.Uint {
		bits = 64 // as "go test" reads them, whatever the platform's int size
	}
	v := reflect.New(t).Elem()
	if v.CanUint() {
		u, err := strconv.ParseUint(lit, 0, bits)
		if err != nil {
			return nil, err
		}
		v.SetUint(u)
	} else {
		i, err := strconv.ParseInt(lit, 0, bits)
		if err != nil {
			return nil, err
		}
		v.SetInt(i)
	}
	return v.Interface(), nil
}
