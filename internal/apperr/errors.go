// Package apperr is the domain's error vocabulary: a few codes (not found,
// conflict, invalid...) in which the store, git, triggers and the executor
// say what went wrong, with a message a client or user may be told. It knows
// nothing of HTTP or of the CLI: each edge maps the codes once, in package
// main (httpStatus, exitStatus); Permanent is the executor's reading.
package apperr

import (
	"errors"
	"fmt"
)

// Code is the domain's small error vocabulary. The Store, git, trigger
// and workflow code say what went wrong in these words; each edge maps them
// once: httpStatus for the API and pages, exitStatus for the CLI, and
// Permanent for the executor.
type Code uint8

const (
	Internal        Code = iota // a bug or an unexpected failure: retry, log, say "internal error"
	Invalid                     // the input breaks a rule of the domain
	Malformed                   // the request cannot even be read (bad JSON, bad query)
	NotFound                    // no such thing, or one the caller may not see
	Conflict                    // the thing is in a state that forbids the change
	Forbidden                   // the caller is known and may not do this
	Unauthenticated             // no, or bad, credentials
	TooLarge                    // the input is over a size limit
	Unavailable                 // a dependency is down or busy: try again later
	Gone                        // the thing existed and is gone for good (an expired artifact)
)

// Error is an error in the domain's vocabulary. Msg is what a client or
// user is told; Err, when set, is the cause for the log.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for every not-found error, and
// likewise for the other code-only sentinels below.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel() && t.Code == e.Code
}

func (e *Error) sentinel() bool {
	for _, s := range sentinels {
		if e == s {
			return true
		}
	}
	return false
}

// The sentinels: errors.Is(err, ErrNotFound) asks for the code alone.
var (
	ErrNotFound    = &Error{Code: NotFound, Msg: "not found"}
	ErrConflict    = &Error{Code: Conflict, Msg: "conflict"}
	ErrInvalid     = &Error{Code: Invalid, Msg: "invalid"}
	ErrForbidden   = &Error{Code: Forbidden, Msg: "forbidden"}
	ErrUnavailable = &Error{Code: Unavailable, Msg: "unavailable"}

	sentinels = []*Error{ErrNotFound, ErrConflict, ErrInvalid, ErrForbidden, ErrUnavailable}
)

func newError(code Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// NotFoundf and its siblings make an error of their code, its message
// formatted as by fmt.Sprintf.
func NotFoundf(format string, args ...any) error  { return newError(NotFound, format, args...) }
func Conflictf(format string, args ...any) error  { return newError(Conflict, format, args...) }
func Invalidf(format string, args ...any) error   { return newError(Invalid, format, args...) }
func Forbiddenf(format string, args ...any) error { return newError(Forbidden, format, args...) }
func Malformedf(format string, args ...any) error { return newError(Malformed, format, args...) }
func Unavailablef(format string, args ...any) error {
	return newError(Unavailable, format, args...)
}

// Permanent reports whether repeating a call that failed with c can
// never succeed: the executor gives up on such a call at once instead of
// backing off. Internal and unavailable errors are worth another try.
func Permanent(c Code) bool {
	return c != Internal && c != Unavailable
}

// CodeOf is err's code: an *Error's own, Internal for anything else. The
// HTTP face adds what only it knows (a body over its limit).
func CodeOf(err error) Code {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return Internal
}
