package ceremony

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTranscriptEventsDocumented checks the transcript's event table in
// docs/ceremony.md against the events this package records (every
// p.record call, found in the source): each event has a row, each of its
// fields is named in that row, and each row's event is recorded.
func TestTranscriptEventsDocumented(t *testing.T) {
	data, err := os.ReadFile("../../docs/ceremony.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n| event | fields | when |\n")
	if !ok {
		t.Fatal("docs/ceremony.md has no transcript event table")
	}
	rows := map[string]string{} // event → its fields cell
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 4 {
			break
		}
		if ev := strings.Trim(strings.TrimSpace(cells[1]), "`"); ev != "---" {
			rows[ev] = cells[2]
		}
	}
	recorded := recordedEvents(t)
	if len(recorded) < 10 {
		t.Fatalf("found only %d recorded events; the source scan is broken", len(recorded))
	}
	for ev, keys := range recorded {
		cell, ok := rows[ev]
		if !ok {
			t.Errorf("event %s is recorded but not in docs/ceremony.md's table", ev)
			continue
		}
		for _, k := range keys {
			if !strings.Contains(cell, "`"+k+"`") {
				t.Errorf("event %s: field %s is recorded but not in docs/ceremony.md's table", ev, k)
			}
		}
	}
	for ev := range rows {
		if _, ok := recorded[ev]; !ok {
			t.Errorf("docs/ceremony.md lists event %s, which the ceremony does not record", ev)
		}
	}
}

// recordedEvents returns the events of this package's p.record calls and
// their field keys.
func recordedEvents(t *testing.T) map[string][]string {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "record" || len(call.Args) == 0 {
				return true
			}
			// The event, then key, value pairs: read the event and the keys.
			var args []string
			for i := 0; i < len(call.Args); i += 1 + min(i, 1) { // 0, 1, 3, 5…
				lit, ok := call.Args[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: a record call whose event or field key is not a literal", fset.Position(call.Args[i].Pos()))
					return true
				}
				s, _ := strconv.Unquote(lit.Value)
				args = append(args, s)
			}
			out[args[0]] = append(out[args[0]], args[1:]...)
			return true
		})
	}
	return out
}
