package primitive

import (
	"testing"

	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

// tally counts the vectors a test ran, by expected result, plus those that
// belong to parameter sets Strongroom's policy refuses (and that the test
// checked are refused).
type tally struct {
	valid, invalid, acceptable int
	refused                    int
}

func (c *tally) add(r wycheproof.Result) {
	switch r {
	case wycheproof.Valid:
		c.valid++
	case wycheproof.Invalid:
		c.invalid++
	case wycheproof.Acceptable:
		c.acceptable++
	}
}

func (c tally) total() int { return c.valid + c.invalid + c.acceptable + c.refused }

// check fails the test unless exactly the wanted numbers of vectors ran and
// they add up to the number the file's header announces.
func (c tally) check(t *testing.T, want tally, numberOfTests int) {
	t.Helper()
	if c != want {
		t.Errorf("ran %+v, want %+v", c, want)
	}
	if c.total() != numberOfTests {
		t.Errorf("ran %d vectors, the file has %d", c.total(), numberOfTests)
	}
}

// describe logs a vector's description if the (sub)test failed.
func describe(t *testing.T, tcID int, comment string, flags []string, r wycheproof.Result) {
	t.Helper()
	if t.Failed() {
		t.Logf("tcId %d: %q %v, expected %s", tcID, comment, flags, r)
	}
}
