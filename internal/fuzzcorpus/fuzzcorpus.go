// Package fuzzcorpus writes the committed seed corpora of a package's fuzz
// tests, and checks them whenever the package's tests run.
//
// "go test" runs every file under testdata/fuzz/FuzzName/ as a case of the
// fuzz test FuzzName, and "go test -fuzz" starts from them. Each file is a
// "go test fuzz v1" file ([Encode], [Parse]): that header line, then one
// line per argument of the fuzz function, its type and a Go literal:
//
//	go test fuzz v1
//	[]byte("\x01\x02")
//	string("field")
//
// A package makes its seeds (valid encodings, say, which a fuzzer could not
// easily find on its own) in an ordinary test:
//
//	func TestWriteFuzzCorpus(t *testing.T) {
//		w := fuzzcorpus.New(t)
//		w.Add("FuzzParse", "valid", validEncoding(t))
//	}
//
// Run with STRONGROOM_WRITE_CORPUS=1 ([WriteEnv]), [Writer.Add] rewrites
// testdata/fuzz/FuzzParse/valid in the package directory; commit the result.
// Otherwise the test is not skipped: Add writes to a temporary directory,
// so the code that makes the seeds still runs, and when the test ends the
// [Writer] checks that every fuzz test it was given seeds for has a committed
// corpus directory with at least one file, and that every file there is a
// well-formed "go test fuzz v1" file whose values have the types of the
// seeds. ("go test" itself runs a fuzz test without complaint when its
// corpus directory is missing.)
package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// WriteEnv is the environment variable that, set to 1, makes [Writer.Add]
// rewrite the committed corpora.
const WriteEnv = "STRONGROOM_WRITE_CORPUS"

// Writer writes the seed corpora of one package's fuzz tests. Make one with
// [New].
type Writer struct {
	t          testing.TB
	committed  string // the package's corpora: testdata/fuzz
	dir        string // where Add writes: committed, or a temporary directory
	regenerate bool
	types      map[string]string // fuzz test → the types of its seeds' values
	fuzzNames  []string          // in the order of their first seed
}

// New returns a Writer for the fuzz tests of the package under test (the
// current directory, as "go test" runs it). It checks the committed corpora
// when t ends.
func New(t testing.TB) *Writer {
	t.Helper()
	return newWriter(t, filepath.Join("testdata", "fuzz"), os.Getenv(WriteEnv) == "1")
}

func newWriter(t testing.TB, committed string, regenerate bool) *Writer {
	t.Helper()
	w := &Writer{t: t, committed: committed, dir: committed, regenerate: regenerate, types: map[string]string{}}
	if !regenerate {
		w.dir = t.TempDir()
	}
	t.Cleanup(w.check)
	return w
}

// Regenerating reports whether Add rewrites the committed corpora
// (STRONGROOM_WRITE_CORPUS=1). A test that writes other committed test data
// alongside the seeds writes it only then.
func (w *Writer) Regenerating() bool { return w.regenerate }

// Add writes one seed of the fuzz test fuzzName, the file seedName holding
// values, the fuzz function's arguments after its *testing.T (see [Encode]
// for the types allowed). Every seed of a fuzz test must hold values of the
// same types. Add fails the test if it cannot write the seed.
func (w *Writer) Add(fuzzName, seedName string, values ...any) {
	w.t.Helper()
	if err := checkNames(fuzzName, seedName); err != nil {
		w.t.Fatal(err)
	}
	data, err := Encode(values...)
	if err != nil {
		w.t.Fatalf("fuzzcorpus: seed %s/%s: %v", fuzzName, seedName, err)
	}
	types := typesOf(values)
	if prev, ok := w.types[fuzzName]; !ok {
		w.types[fuzzName] = types
		w.fuzzNames = append(w.fuzzNames, fuzzName)
	} else if prev != types {
		w.t.Fatalf("fuzzcorpus: seed %s/%s holds (%s), but an earlier seed of %s holds (%s)", fuzzName, seedName, types, fuzzName, prev)
	}
	dir := filepath.Join(w.dir, fuzzName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatalf("fuzzcorpus: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, seedName), data, 0o644); err != nil {
		w.t.Fatalf("fuzzcorpus: %v", err)
	}
}

// checkNames refuses a fuzz test name that is not one, and a seed name that
// is not a plain file name.
func checkNames(fuzzName, seedName string) error {
	ident := func(r rune) bool { return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	if !strings.HasPrefix(fuzzName, "Fuzz") || strings.IndexFunc(fuzzName, ident) >= 0 {
		return fmt.Errorf("fuzzcorpus: %q is not the name of a fuzz test", fuzzName)
	}
	if !filepath.IsLocal(seedName) || strings.ContainsAny(seedName, `/\`) || strings.HasPrefix(seedName, ".") {
		return fmt.Errorf("fuzzcorpus: seed name %q is not a plain file name", seedName)
	}
	return nil
}

// typesOf names the types of a seed's values, as "[]uint8, string".
func typesOf(values []any) string {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = fmt.Sprintf("%T", v)
	}
	return strings.Join(names, ", ")
}

// check reports what is wrong with the committed corpora of the fuzz tests
// that were given seeds.
func (w *Writer) check() {
	w.t.Helper()
	if len(w.fuzzNames) == 0 && !w.t.Failed() {
		w.t.Error("fuzzcorpus: the test added no seeds")
	}
	for _, name := range w.fuzzNames {
		for _, err := range checkDir(filepath.Join(w.committed, name), w.types[name]) {
			w.t.Error(err)
		}
	}
}

// checkDir checks a committed corpus directory: that it holds at least one
// file, and that each file is a well-formed corpus file with values of the
// given types.
func checkDir(dir, types string) []error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []error{fmt.Errorf("fuzzcorpus: no committed seed corpus (write it with %s=1): %v", WriteEnv, err)}
	}
	var errs []error
	files := 0
	for _, e := range entries {
		if e.IsDir() {
			continue // "go test" ignores directories too
		}
		files++
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("fuzzcorpus: %v", err))
			continue
		}
		values, err := parse(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("fuzzcorpus: %s: %w", path, err))
			continue
		}
		if got := typesOf(values); got != types {
			errs = append(errs, fmt.Errorf("fuzzcorpus: %s holds (%s), want (%s) like the seeds", path, got, types))
		}
	}
	if files == 0 {
		errs = append(errs, fmt.Errorf("fuzzcorpus: the committed seed corpus %s is empty (write it with %s=1)", dir, WriteEnv))
	}
	return errs
}

// Committed returns the values of the committed seed seedName of the fuzz
// test fuzzName of the package under test, for a test that checks the seed
// still lies inside the format it seeds (a format change would otherwise
// leave the fuzzer starting from a seed its parser refuses at once). It
// fails the test if the seed is missing or unreadable.
func Committed(t testing.TB, fuzzName, seedName string) []any {
	t.Helper()
	if err := checkNames(fuzzName, seedName); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", fuzzName, seedName))
	if err != nil {
		t.Fatalf("fuzzcorpus: %v", err)
	}
	values, err := Parse(raw)
	if err != nil {
		t.Fatalf("fuzzcorpus: seed %s/%s: %v", fuzzName, seedName, err)
	}
	return values
}
