package httpapi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpbody"
)

// Request bodies are decoded with encoding/json/v2's implementation
// (github.com/go-json-experiment/json, the mirror of the standard library's
// encoding/json/v2) rather than encoding/json: it is about three times
// faster on the data plane's bodies, which made JSON decoding the largest
// single cost of an encrypt request, and it is stricter where a security
// service should be: a member name must match a field's exactly (not
// case-insensitively), a name given twice in one object and a string that
// is not valid UTF-8 are refused instead of resolved silently, so no two
// parsers can read one body differently. Answers are still written by
// encoding/json, whose output v2 reads the same.

// decodeOptions: unknown members are refused, like everything else that is
// not exactly the route's request.
var decodeOptions = json.RejectUnknownMembers(true)

// decode reads a request body strictly into dst: Content-Type
// application/json, at most Limits.MaxBodyBytes, one JSON object, no
// unknown or repeated members.
func (s *server) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: api.CodeUnsupportedMedia,
			msg: "the body must be JSON, sent with Content-Type: application/json"}
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return &apiError{status: http.StatusUnsupportedMediaType, code: api.CodeUnsupportedMedia,
				msg: "the body must be JSON in UTF-8: Content-Type: application/json (charset=utf-8, if any)"}
		}
	}
	data, err := httpbody.ReadAll(http.MaxBytesReader(w, r.Body, s.Limits.MaxBodyBytes), r.ContentLength, s.Limits.MaxBodyBytes)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge,
				msg: fmt.Sprintf("the body is larger than %d bytes (limits.max_body_bytes)", s.Limits.MaxBodyBytes)}
		}
		return badRequestf("reading the body: %v", err)
	}
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '{' {
		return badRequestf("the body must be one JSON object")
	}
	if err := json.Unmarshal(data, dst, decodeOptions); err != nil {
		return badRequestf("%s", jsonProblem(data, reflect.TypeOf(dst), err))
	}
	return nil
}

// jsonProblem describes a decoding error of data into a value of type t
// without echoing the body, whose values may be secrets: it names the
// byte offset, the struct fields on the way to the problem (never a map
// key: context keys come from the body) and the kinds involved; an unknown
// member's name, which is not a value, is quoted (shortened).
func jsonProblem(data []byte, t reflect.Type, err error) string {
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	var b64 base64.CorruptInputError
	var at jsontext.Pointer // where a semantic error is, if err is one
	if errors.As(err, &sem) {
		at = sem.JSONPointer
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case errors.As(err, &syn):
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return "a member appears twice in one object" + fieldAt(t, syn.JSONPointer.Parent())
		case syn.JSONPointer == "" && syn.ByteOffset > 0 && jsontext.Value(bytes.TrimRight(data[:syn.ByteOffset], " \t\r\n")).IsValid():
			return "the body must be one JSON object, with nothing after it"
		case strings.Contains(syn.Err.Error(), "UTF-8"), strings.Contains(syn.Err.Error(), "surrogate"):
			// Invalid UTF-8, or an escaped lone surrogate (\ud800), which
			// encoding/json used to replace with U+FFFD.
			return "a string is not valid UTF-8" + fieldAt(t, syn.JSONPointer)
		}
		return fmt.Sprintf("malformed JSON at byte %d", syn.ByteOffset)
	case sem != nil && errors.Is(sem.Err, json.ErrUnknownName):
		name := at.LastToken()
		if len(name) > 64 {
			name = name[:64] + "…"
		}
		return fmt.Sprintf("unknown field %s%s", strconv.Quote(name), fieldAt(t, at.Parent()))
	case errors.As(err, &b64) || (sem != nil && sem.JSONKind == '"' && isBytes(sem.GoType)):
		return "a byte string is not valid standard base64" + fieldAt(t, at)
	case sem != nil && sem.GoType != nil && sem.JSONKind != 0:
		return fmt.Sprintf("a JSON %s cannot be a %s%s", jsonKind(sem.JSONKind), sem.GoType, fieldAt(t, at))
	}
	return "invalid JSON for this request"
}

// isBytes: t is a byte slice, which JSON carries as base64.
func isBytes(t reflect.Type) bool {
	return t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

// jsonKind names a JSON kind as RFC 8259 does.
func jsonKind(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

// fieldAt is ` in field "a.b"` for the struct fields that the pointer p
// crosses in a value of type t (array indices left out), or "" at the top.
// It stops at the first map or other non-struct: map keys come from the
// body.
func fieldAt(t reflect.Type, p jsontext.Pointer) string {
	var names []string
	for tok := range p.Tokens() {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
			continue
		}
		if t.Kind() != reflect.Struct {
			break
		}
		f, ok := jsonField(t, tok)
		if !ok {
			break
		}
		names, t = append(names, tok), f.Type
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" in field %q", strings.Join(names, "."))
}

// jsonField is the field of struct type t whose JSON name is name,
// looking into embedded structs as encoding/json does.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-" || (!f.IsExported() && !f.Anonymous):
		case tag == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
			if g, ok := jsonField(f.Type, name); ok {
				return g, true
			}
		case tag == name || (tag == "" && f.Name == name):
			return f, true
		}
	}
	return reflect.StructField{}, false
}
