package httpapi

import (
	"bytes"
	stdjson "encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/config"
)

// TestDecodeMessages: every way a body can be wrong has a message that
// says where, in the API's field names, without quoting a value of the
// body (values may be secrets; map keys come from the body too). The
// stricter rules of the decoder hold: exact member names, no repeated
// member, valid UTF-8.
func TestDecodeMessages(t *testing.T) {
	s := &server{Deps: Deps{Limits: config.Limits{MaxBodyBytes: 1 << 10}}}
	const secret = "c2VjcmV0" // must never appear in a message
	cases := []struct{ body, want string }{
		{`{"items":[{"plaintext":"c2VjcmV0"}]}`, ""},
		{` {"type":"data","items":[{"plaintext":"c2VjcmV0","context":{"row":"c2VjcmV0"}}]} `, ""},
		{``, "the body must be one JSON object"},
		{`[{"items":[]}]`, "the body must be one JSON object"},
		{`{"items":[{"plaintext":"c2VjcmV0"`, "truncated JSON"},
		{`{"items":[{"plaintext":c2VjcmV0}]}`, "malformed JSON at byte 23"},
		{`{"items":[]}{}`, "the body must be one JSON object, with nothing after it"},
		{`{"items":[]} x`, "the body must be one JSON object, with nothing after it"},
		{`{"items":[{"plaintext":"c2VjcmV0","Plaintext":"c2VjcmV0"}]}`, `unknown field "Plaintext" in field "items"`},
		{`{"items":[],"admin":true}`, `unknown field "admin"`},
		{`{"items":[],"` + strings.Repeat("x", 100) + `":1}`, `unknown field "` + strings.Repeat("x", 64) + `…"`},
		{`{"items":[{"plaintext":"c2VjcmV0","plaintext":"c2VjcmV0"}]}`, `a member appears twice in one object in field "items"`},
		{`{"items":[{"context":{"c2VjcmV0":"a","c2VjcmV0":"b"}}]}`, `a member appears twice in one object in field "items.context"`},
		{"{\"items\":[{\"context\":{\"a\":\"c2Vj\xffcmV0\"}}]}", `a string is not valid UTF-8 in field "items.context"`},
		{`{"items":[{"plaintext":"c2VjcmV0!"}]}`, `a byte string is not valid standard base64 in field "items.plaintext"`},
		{`{"items":[{"plaintext":"c2Vj\r\ncmV0"}]}`, `a byte string is not valid standard base64 in field "items.plaintext"`},
		{`{"items":[{"plaintext":[1,2]}]}`, `a JSON array cannot be a []uint8 in field "items.plaintext"`},
		{`{"items":[{"context":{"a":"\ud800"}}]}`, `a string is not valid UTF-8 in field "items.context"`},
		{`{"items":[{"plaintext":7}]}`, `a JSON number cannot be a []uint8 in field "items.plaintext"`},
		{`{"items":[{"context":{"c2VjcmV0":1}}]}`, `a JSON number cannot be a string in field "items.context"`},
		{`{"items":{}}`, `a JSON object cannot be a []api.EncryptItem in field "items"`},
		{`{"type":null,"items":[{"case_insensitive":"yes"}]}`, `a JSON string cannot be a bool in field "items.case_insensitive"`},
		{`{"items":[{"plaintext":"` + strings.Repeat("A", 1100) + `"}]}`, "the body is larger than 1024 bytes (limits.max_body_bytes)"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/v1/tenants/acme/encrypt", strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		var dst api.EncryptRequest
		err := s.decode(httptest.NewRecorder(), r, &dst)
		got := ""
		if err != nil {
			got = err.Error()
			if e, ok := err.(*apiError); ok {
				got = e.msg
			}
		}
		if got != c.want {
			t.Errorf("decode(%.60q)\n got %q\nwant %q", c.body, got, c.want)
		}
		if strings.Contains(got, secret) {
			t.Errorf("decode(%.60q) quotes the body: %q", c.body, got)
		}
	}
}

// BenchmarkDecodeEncryptBody decodes an encrypt body of one 1 KiB item
// with its context, as the API does (encoding/json/v2's implementation,
// strict), and as it did before with encoding/json (a Decoder with
// DisallowUnknownFields), for docs/benchmarks.md.
func BenchmarkDecodeEncryptBody(b *testing.B) {
	body, err := stdjson.Marshal(api.EncryptRequest{Type: "data", Items: []api.EncryptItem{{
		Plaintext: bytes.Repeat([]byte{0xa5}, 1024), Context: map[string]string{"table": "users", "row": "42"}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("v2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var dst api.EncryptRequest
			if err := jsonv2.Unmarshal(body, &dst, decodeOptions); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var dst api.EncryptRequest
			dec := stdjson.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzDecodeStricter: the decoder accepts no body that encoding/json
// (strict, as the API used before) refuses, and what it accepts means the
// same to both: the stricter rules only refuse.
func FuzzDecodeStricter(f *testing.F) {
	for _, seed := range []string{
		`{"type":"data","items":[{"plaintext":"c2VjcmV0","context":{"row":"42"}}]}`,
		`{"items":[{"plaintext":"","context":{},"field":"users.email","case_insensitive":true}]}`,
		`{"items":[{"Plaintext":"c2VjcmV0"}]}`,
		`{"items":[{"plaintext":"c2Vj\ncmV0"}],"items":[]}`,
		`{"kem":32,"public_key":"AA==","version":7,"type":null}`,
		`{"name":"acme","env":"sandbox"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range []reflect.Type{reflect.TypeFor[api.EncryptRequest](), reflect.TypeFor[api.DEKRequest](), reflect.TypeFor[api.CreateTenantRequest]()} {
			v2 := reflect.New(typ).Interface()
			if jsonv2.Unmarshal(body, v2, decodeOptions) != nil {
				continue
			}
			v1 := reflect.New(typ).Interface()
			dec := stdjson.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v1); err != nil {
				t.Fatalf("%v: accepted %q, which encoding/json refuses: %v", typ, body, err)
			}
			if !reflect.DeepEqual(v1, v2) {
				t.Fatalf("%v: %q reads as %+v, and as %+v with encoding/json", typ, body, v2, v1)
			}
		}
	})
}

// TestRequestTypesDecodeStrictly: no request type, at any depth, has a tag
// option that would let the decoder take members it does not list
// (inline, unknown) or read a value another way than its type says
// (string, format): RejectUnknownMembers and the messages of jsonProblem
// assume plain fields.
func TestRequestTypesDecodeStrictly(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, at string)
	walk = func(typ reflect.Type, at string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("json")
			_, opts, _ := strings.Cut(tag, ",")
			for _, o := range strings.Split(opts, ",") {
				if o == "inline" || o == "unknown" || o == "string" || strings.HasPrefix(o, "format:") {
					t.Errorf("%s.%s (%s): json tag option %q", at, f.Name, typ, o)
				}
			}
			if f.Anonymous {
				t.Errorf("%s.%s (%s): an embedded field", at, f.Name, typ)
			}
			walk(f.Type, at+"."+f.Name)
		}
	}
	s := &server{}
	n := 0
	for _, rt := range s.table() {
		if rt.Request != nil {
			walk(reflect.TypeOf(rt.Request), rt.Method+" "+rt.Pattern)
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d routes with a request body", n)
	}
}
