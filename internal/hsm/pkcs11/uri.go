package pkcs11

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// URI is a parsed PKCS#11 URI naming a token, its module and its PIN source.
type URI struct {
	// Path attributes select the token; empty ones match anything.
	Token        string // token label
	Manufacturer string // token manufacturer ID
	Serial       string // token serial number
	Model        string // token model
	SlotID       uint64 // slot ID, meaningful only if HasSlotID
	HasSlotID    bool

	// ModulePath is the absolute path of the PKCS#11 library (module-path).
	ModulePath string
	// Exactly one of PINFile and PINEnv is set (pin-source).
	PINFile string // file holding the user PIN
	PINEnv  string // environment variable holding the user PIN
}

const scheme = "pkcs11:"

// errPINValue refuses pin-value. Its value is never parsed nor echoed.
var errPINValue = errors.New("pkcs11: pin-value is refused: a PIN in the URI ends up in configuration files, " +
	"shell history and process listings; put the PIN in a file (pin-source=file:/path) " +
	"or an environment variable (pin-source=env:NAME)")

// ParseURI parses and validates an RFC 7512 PKCS#11 URI. module-path and
// pin-source are required; pin-value is refused, as are attributes that name
// objects or that this backend does not understand.
func ParseURI(s string) (URI, error) {
	var u URI
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return u, errors.New(`pkcs11: URI must start with "pkcs11:"`)
	}
	rest := s[len(scheme):]
	if strings.Contains(rest, "#") {
		return u, errors.New("pkcs11: URI must not have a fragment (#)")
	}
	path, query, _ := strings.Cut(rest, "?")
	seen := map[string]bool{}
	if err := eachAttr(path, ";", false, seen, u.setPathAttr); err != nil {
		return URI{}, err
	}
	var pinSource string
	err := eachAttr(query, "&", true, seen, func(name, value string) error {
		switch name {
		case "module-path":
			if !filepath.IsAbs(value) {
				return fmt.Errorf("pkcs11: module-path %q must be an absolute path", value)
			}
			u.ModulePath = value
		case "pin-source":
			pinSource = value
		case "module-name":
			return errors.New("pkcs11: module-name is not supported: give the library's absolute path in module-path")
		default:
			return fmt.Errorf("pkcs11: unsupported URI query attribute %q (this backend knows module-path and pin-source)", name)
		}
		return nil
	})
	if err != nil {
		return URI{}, err
	}
	if u.ModulePath == "" {
		return URI{}, errors.New("pkcs11: URI lacks module-path, the absolute path of the PKCS#11 library " +
			"(e.g. ?module-path=/usr/lib/softhsm/libsofthsm2.so)")
	}
	if pinSource == "" {
		return URI{}, errors.New("pkcs11: URI lacks pin-source: name a file (pin-source=file:/path) " +
			"or an environment variable (pin-source=env:NAME) holding the user PIN")
	}
	if err := u.setPINSource(pinSource); err != nil {
		return URI{}, err
	}
	return u, nil
}

// eachAttr splits part at sep into name=value attributes, checks their raw
// characters, percent-decodes the values and calls set for each. Errors
// name the attribute but do not quote values, which might be a PIN typed in
// the wrong place.
func eachAttr(part, sep string, query bool, seen map[string]bool, set func(name, value string) error) error {
	if part == "" {
		return nil
	}
	for _, attr := range strings.Split(part, sep) {
		name, raw, ok := strings.Cut(attr, "=")
		if !ok || name == "" {
			return errors.New("pkcs11: malformed URI attribute: want name=value")
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("pkcs11: malformed URI attribute name %q", name)
		}
		if seen[name] {
			return fmt.Errorf("pkcs11: URI attribute %q appears more than once", name)
		}
		seen[name] = true
		if query && name == "pin-value" {
			return errPINValue
		}
		if err := checkRaw(raw, query); err != nil {
			return fmt.Errorf("pkcs11: URI attribute %q: %w", name, err)
		}
		value, err := percentDecode(raw)
		if err != nil {
			return fmt.Errorf("pkcs11: URI attribute %q: %w", name, err)
		}
		if value == "" {
			return fmt.Errorf("pkcs11: URI attribute %q is empty", name)
		}
		if strings.IndexByte(value, 0) >= 0 {
			return fmt.Errorf("pkcs11: URI attribute %q contains a NUL byte", name)
		}
		if err := set(name, value); err != nil {
			return err
		}
	}
	return nil
}

func (u *URI) setPathAttr(name, value string) error {
	switch name {
	case "token":
		u.Token = value
	case "manufacturer":
		u.Manufacturer = value
	case "serial":
		u.Serial = value
	case "model":
		u.Model = value
	case "slot-id":
		if strings.Trim(value, "0123456789") != "" {
			return fmt.Errorf("pkcs11: slot-id %q is not a decimal number", value)
		}
		id, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return fmt.Errorf("pkcs11: slot-id %q is out of range", value)
		}
		u.SlotID, u.HasSlotID = id, true
	case "object", "id", "type":
		return fmt.Errorf("pkcs11: URI attribute %q names an object, but this URI names a token: "+
			"strongroom finds its keys by label itself", name)
	default:
		return fmt.Errorf("pkcs11: unsupported URI path attribute %q "+
			"(this backend knows token, manufacturer, serial, model and slot-id)", name)
	}
	return nil
}

// setPINSource accepts file:/PATH (RFC 8089), an absolute file path (RFC
// 7512) and env:NAME. Paths must be absolute: a service's working directory
// is arbitrary, and a value that is neither an absolute path nor env:NAME
// may well be the PIN itself, so errors do not quote it.
func (u *URI) setPINSource(v string) error {
	const want = " (want pin-source=file:/absolute/path, an absolute path, or env:NAME)"
	switch {
	case strings.HasPrefix(v, "env:"):
		if !validEnvName(v[len("env:"):]) {
			return errors.New("pkcs11: pin-source env: needs a valid environment variable name" + want)
		}
		u.PINEnv = v[len("env:"):]
		return nil
	case strings.HasPrefix(v, "file:"):
		p := v[len("file:"):]
		if rest, ok := strings.CutPrefix(p, "//"); ok {
			host, path, _ := strings.Cut(rest, "/")
			if host != "" && host != "localhost" {
				return errors.New("pkcs11: pin-source names a file on another host; only local files are supported")
			}
			p = "/" + path
		}
		if !filepath.IsAbs(p) {
			return errors.New("pkcs11: pin-source file: URI needs an absolute path" + want)
		}
		u.PINFile = p
		return nil
	case strings.HasPrefix(v, "|"):
		return errors.New("pkcs11: pin-source cannot run a command" + want)
	case !filepath.IsAbs(v):
		return errors.New("pkcs11: pin-source is neither an absolute path nor env:NAME (it is not quoted here, " +
			"in case it is the PIN itself)" + want)
	}
	u.PINFile = v
	return nil
}

// PINSource describes where the PIN comes from, for messages.
func (u URI) PINSource() string {
	if u.PINEnv != "" {
		return "environment variable " + u.PINEnv
	}
	return "file " + u.PINFile
}

// String returns the URI in canonical form. ParseURI(u.String()) == u.
func (u URI) String() string {
	var path []string
	add := func(name, v string) {
		if v != "" {
			path = append(path, name+"="+percentEncode(v, false))
		}
	}
	add("token", u.Token)
	add("manufacturer", u.Manufacturer)
	add("serial", u.Serial)
	add("model", u.Model)
	if u.HasSlotID {
		path = append(path, "slot-id="+strconv.FormatUint(u.SlotID, 10))
	}
	pin := "env:" + u.PINEnv
	if u.PINEnv == "" {
		pin = "file://" + u.PINFile
	}
	return scheme + strings.Join(path, ";") + "?module-path=" + percentEncode(u.ModulePath, true) +
		"&pin-source=" + percentEncode(pin, true)
}

// tokenFilter describes the path attributes, for messages.
func (u URI) tokenFilter() string {
	var f []string
	for _, a := range [][2]string{{"token", u.Token}, {"manufacturer", u.Manufacturer}, {"serial", u.Serial}, {"model", u.Model}} {
		if a[1] != "" {
			f = append(f, fmt.Sprintf("%s=%q", a[0], a[1]))
		}
	}
	if u.HasSlotID {
		f = append(f, fmt.Sprintf("slot-id=%d", u.SlotID))
	}
	if len(f) == 0 {
		return "any token"
	}
	return strings.Join(f, " ")
}

func validEnvName(s string) bool {
	for i, c := range s {
		if c != '_' && !isAlpha(c) && (i == 0 || !isDigit(c)) {
			return false
		}
	}
	return s != ""
}

func isAlpha(c rune) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c rune) bool { return '0' <= c && c <= '9' }

// checkRaw refuses characters that RFC 3986 and RFC 7512 do not allow
// unencoded in an attribute value.
func checkRaw(s string, query bool) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(rune(c)) || isDigit(rune(c)) || strings.IndexByte("-._~!$'()*+,=:@[]", c) >= 0:
		case c == '%' || c == '&' || c == '/':
		case query && (c == '?' || c == ';' || c == '|'):
		default:
			return fmt.Errorf("character %q must be percent-encoded", c)
		}
	}
	return nil
}

// percentDecode decodes %XX escapes; a '%' not followed by two hex digits is
// an error. '+' stays '+' (RFC 7512 is not form encoding).
func percentDecode(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			return "", errors.New("invalid percent-encoding")
		}
		b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
		i += 2
	}
	return string(b), nil
}

// percentEncode escapes everything but unreserved characters (and '/' in
// query values, where RFC 7512 allows it).
func percentEncode(s string, query bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(rune(c)) || isDigit(rune(c)) || strings.IndexByte("-._~", c) >= 0 || (query && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
