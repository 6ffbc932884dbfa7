// Package reason is the errors that say, in the terms of the people who use
// Strongroom, what is wrong with what they asked: an error of a kind (a
// sentinel, for errors.Is) with a reason written for them, without the
// chain of package prefixes that wraps it on its way up.
//
// The API answers a reason as it is; Error, the chain with its prefixes,
// goes to the server's log. A reason never holds key material or a token,
// and names a tenant by its name, never by its id.
package reason

import (
	"errors"
	"fmt"
)

// Error is an error of Kind for the reason Reason, perhaps caused by Cause.
type Error struct {
	// Kind is the sentinel the error is, for errors.Is.
	Kind error
	// Reason says what is wrong, for the user: a whole message,
	// lower-case, with no package prefix.
	Reason string
	// Cause, if not nil, is the internal error behind it, for the log.
	Cause error
}

// New returns an error of kind whose reason is the formatted text.
func New(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind, caused by cause, whose reason is the
// formatted text.
func Wrap(kind, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...), Cause: cause}
}

// Error is the kind, the reason and the cause.
func (e *Error) Error() string {
	s := e.Reason
	if e.Kind != nil {
		s = e.Kind.Error() + ": " + s
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Kind, e.Cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Of returns the reason of the outermost Error in err's chain, if any.
func Of(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, true
	}
	return "", false
}
