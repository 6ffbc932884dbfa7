package reason_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/reason"
)

var (
	errKind  = errors.New("pkg: refused")
	errCause = errors.New("inner: detail")
)

func TestReason(t *testing.T) {
	err := fmt.Errorf("outer: %w", reason.Wrap(errKind, errCause, "the %s was altered", "file"))
	if got, ok := reason.Of(err); !ok || got != "the file was altered" {
		t.Errorf("Of(%v) = %q, %v, want the reason alone", err, got, ok)
	}
	if want := "outer: pkg: refused: the file was altered: inner: detail"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, errKind) || !errors.Is(err, errCause) {
		t.Errorf("errors.Is(%v, kind, cause) = false", err)
	}
	// The outermost reason is the one for the user.
	outer := reason.Wrap(errKind, reason.New(errCause, "inner reason"), "outer reason")
	if got, _ := reason.Of(outer); got != "outer reason" {
		t.Errorf("Of(nested) = %q, want the outer reason", got)
	}
	if _, ok := reason.Of(errCause); ok {
		t.Errorf("Of(a plain error) found a reason")
	}
}
