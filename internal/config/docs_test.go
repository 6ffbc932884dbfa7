package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestDocsReference checks that docs/configuration.md lists exactly the
// configuration's keys: every yaml tag of Config and the structs it holds,
// dotted (a map's keys are named by the map).
func TestDocsReference(t *testing.T) {
	want := configKeys(reflect.TypeFor[Config](), "")
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		got = append(got, strings.Trim(strings.TrimSpace(cells[1]), "`"))
	}
	slices.Sort(got)
	for _, k := range want {
		if _, found := slices.BinarySearch(got, k); !found {
			t.Errorf("configuration key %s is not in docs/configuration.md", k)
		}
	}
	for i, k := range got {
		if _, found := slices.BinarySearch(want, k); !found {
			t.Errorf("docs/configuration.md lists %s, which is not a configuration key", k)
		}
		if i > 0 && got[i-1] == k {
			t.Errorf("docs/configuration.md lists %s twice", k)
		}
	}
}

// configKeys returns the dotted yaml keys of struct type typ, sorted.
func configKeys(typ reflect.Type, prefix string) []string {
	var out []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			out = append(out, configKeys(f.Type, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	slices.Sort(out)
	return out
}
