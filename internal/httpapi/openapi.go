package httpapi

import (
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// OpenAPI returns the OpenAPI 3.1 document of routes: paths and methods,
// security and access policy (x-strongroom-* extensions), parameters, and
// request and response schemas derived from the api types by reflection.
func OpenAPI(routes []Route) map[string]any {
	g := &schemaGen{schemas: map[string]any{}}
	errorRef := g.schema(reflect.TypeFor[api.Error]())
	paths := map[string]any{}
	for _, rt := range routes {
		item, _ := paths[rt.Pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Pattern] = item
		}
		item[strings.ToLower(rt.Method)] = g.operation(rt, errorRef)
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Strongroom regional key server",
			"version": "v1",
			"description": "The JSON API of a Strongroom regional key server. Byte strings are standard base64. " +
				"Every error is an Error object. Access: x-strongroom-roles lists the roles a route admits; " +
				"on routes with x-strongroom-tenant-scoped, tenant-admin and app tokens reach only their own tenant.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "An API token: Authorization: Bearer srt_…"},
			},
		},
		"security": []any{map[string]any{"bearer": []string{}}},
	}
}

var pathParamRE = regexp.MustCompile(`\{([a-z]+)\}`)

func (g *schemaGen) operation(rt Route, errorRef map[string]any) map[string]any {
	op := map[string]any{
		"operationId": operationID(rt),
		"summary":     rt.Summary,
	}
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errorRef}}}
	}
	responses := map[string]any{"default": errResp("an error")}
	if rt.Public {
		op["security"] = []any{}
	} else {
		op["security"] = []any{map[string]any{"bearer": []string{}}}
		op["x-strongroom-roles"] = rt.Policy.Roles
		op["x-strongroom-tenant-scoped"] = rt.Policy.TenantScoped
		if rt.Restrict != nil {
			op["x-strongroom-rule"] = rt.Restrict.Doc
		}
		responses["401"] = errResp("no, unknown or expired token")
		responses["403"] = errResp("the token's role or tenant does not allow this")
	}
	var params []any
	for _, m := range pathParamRE.FindAllStringSubmatch(rt.Pattern, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
			"description": paramDocs[m[1]].doc, "schema": paramDocs[m[1]].schema})
	}
	for _, q := range rt.Query {
		params = append(params, map[string]any{"name": q, "in": "query", "required": false,
			"description": paramDocs[q].doc, "schema": paramDocs[q].schema})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if rt.Request != nil {
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Request))}}}
		responses["400"] = errResp("malformed or invalid request")
		responses["413"] = errResp("the body or batch is over the limit")
		responses["415"] = errResp("the body is not application/json")
	}
	ok := map[string]any{"description": http.StatusText(rt.status())}
	if tx, isText := rt.Response.(text); isText {
		ok["content"] = map[string]any{tx.contentType: map[string]any{"schema": map[string]any{"type": "string"}}}
	} else if rt.Response != nil {
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Response))}}
	}
	responses[strconv.Itoa(rt.status())] = ok
	if rt.Pattern == "/v1/ready" {
		responses["503"] = map[string]any{"description": "not ready: problems counts why (GET /v1/status says what)",
			"content": ok["content"]}
	}
	op["responses"] = responses
	return op
}

// operationID is e.g. post_tenants_tenant_keys_type_version_destroy.
func operationID(rt Route) string {
	p := strings.TrimPrefix(rt.Pattern, "/v1/")
	p = strings.NewReplacer("{", "", "}", "", "/", "_", ".", "_").Replace(p)
	return strings.ToLower(rt.Method) + "_" + p
}

var paramDocs = map[string]struct {
	doc    string
	schema map[string]any
}{
	"tenant":  {"the tenant's name", map[string]any{"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}},
	"type":    {"a key type", map[string]any{"type": "string", "enum": tenant.KeyTypes()}},
	"version": {"a key version, from 1", map[string]any{"type": "integer", "minimum": 1, "maximum": math.MaxUint32}},
}

// schemaGen makes JSON Schemas (2020-12, as OpenAPI 3.1 uses) of Go types;
// named structs become components, referred to by $ref.
type schemaGen struct {
	schemas map[string]any
}

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeFor[rawJSON]():
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint, reflect.Uint64:
		s := map[string]any{"type": "integer", "minimum": 0}
		if t.Bits() < 64 {
			s["maximum"] = uint64(1)<<t.Bits() - 1
		}
		return s
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return map[string]any{"type": "object"}
		}
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, ok := g.schemas[name]; ok {
			return ref
		}
		g.schemas[name] = map[string]any{} // placeholder: recursion stops here
		props := map[string]any{}
		required := []string{}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			fname, opts, _ := strings.Cut(tag, ",")
			if fname == "" {
				fname = f.Name
			}
			props[fname] = g.schema(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, fname)
			}
		}
		g.schemas[name] = map[string]any{"type": "object", "properties": props, "required": required,
			"additionalProperties": false}
		return ref
	}
	return map[string]any{}
}
