// The domain's error vocabulary and its three mappings: HTTP status,
// CLI exit status, and whether the executor stops retrying.

package main

import (
	"errors"
	"fmt"
	"net/http"
)

// errCode is the domain's small error vocabulary. The Store, git, trigger
// and workflow code say what went wrong in these words; each edge maps them
// once: httpStatus for the API and pages, exitCode for the CLI, and
// stopRetrying for the executor.
type errCode uint8

const (
	codeInternal        errCode = iota // a bug or an unexpected failure: retry, log, say "internal error"
	codeInvalid                        // the input breaks a rule of the domain
	codeMalformed                      // the request cannot even be read (bad JSON, bad query)
	codeNotFound                       // no such thing, or one the caller may not see
	codeConflict                       // the thing is in a state that forbids the change
	codeForbidden                      // the caller is known and may not do this
	codeUnauthenticated                // no, or bad, credentials
	codeTooLarge                       // the input is over a size limit
	codeUnavailable                    // a dependency is down or busy: try again later
	codeGone                           // the thing existed and is gone for good (an expired artifact)
)

// appError is an error in the domain's vocabulary. Msg is what a client or
// user is told; Err, when set, is the cause for the log.
type appError struct {
	Code errCode
	Msg  string
	Err  error
}

func (e *appError) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *appError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, errNotFound) true for every not-found error, and
// likewise for the other code-only sentinels below.
func (e *appError) Is(target error) bool {
	t, ok := target.(*appError)
	return ok && t.sentinel() && t.Code == e.Code
}

func (e *appError) sentinel() bool {
	for _, s := range sentinels {
		if e == s {
			return true
		}
	}
	return false
}

var (
	errNotFound    = &appError{Code: codeNotFound, Msg: "not found"}
	errConflict    = &appError{Code: codeConflict, Msg: "conflict"}
	errInvalid     = &appError{Code: codeInvalid, Msg: "invalid"}
	errForbidden   = &appError{Code: codeForbidden, Msg: "forbidden"}
	errUnavailable = &appError{Code: codeUnavailable, Msg: "unavailable"}

	sentinels = []*appError{errNotFound, errConflict, errInvalid, errForbidden, errUnavailable}
)

func newError(code errCode, format string, args ...any) error {
	return &appError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error  { return newError(codeNotFound, format, args...) }
func conflictf(format string, args ...any) error  { return newError(codeConflict, format, args...) }
func invalidf(format string, args ...any) error   { return newError(codeInvalid, format, args...) }
func forbiddenf(format string, args ...any) error { return newError(codeForbidden, format, args...) }
func malformedf(format string, args ...any) error { return newError(codeMalformed, format, args...) }
func unavailablef(format string, args ...any) error {
	return newError(codeUnavailable, format, args...)
}

// errorCode is err's code; errors outside the vocabulary are internal.
func errorCode(err error) errCode {
	var ae *appError
	if errors.As(err, &ae) {
		return ae.Code
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return codeTooLarge
	}
	return codeInternal
}

// errorMessage is what a client may be told of err: the domain's message,
// never an internal error's text.
func errorMessage(err error) string {
	var ae *appError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.Error()
	case errors.As(err, &mbe):
		return fmt.Sprintf("request body over %d bytes", mbe.Limit)
	}
	return "internal error"
}

// httpStatus maps a code to the status the API and the pages answer with.
func httpStatus(c errCode) int {
	switch c {
	case codeInvalid:
		return http.StatusUnprocessableEntity
	case codeMalformed:
		return http.StatusBadRequest
	case codeNotFound:
		return http.StatusNotFound
	case codeConflict:
		return http.StatusConflict
	case codeForbidden:
		return http.StatusForbidden
	case codeUnauthenticated:
		return http.StatusUnauthorized
	case codeTooLarge:
		return http.StatusRequestEntityTooLarge
	case codeUnavailable:
		return http.StatusServiceUnavailable
	case codeGone:
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

// codeFromStatus is httpStatus read backwards, for a remote runner that
// hears the server's answer.
func codeFromStatus(status int) errCode {
	switch status {
	case http.StatusUnprocessableEntity:
		return codeInvalid
	case http.StatusBadRequest:
		return codeMalformed
	case http.StatusNotFound, http.StatusGone:
		return codeNotFound
	case http.StatusConflict:
		return codeConflict
	case http.StatusForbidden:
		return codeForbidden
	case http.StatusUnauthorized:
		return codeUnauthenticated
	case http.StatusRequestEntityTooLarge:
		return codeTooLarge
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return codeUnavailable
	}
	if status >= 300 && status < 500 {
		return codeInvalid
	}
	return codeInternal
}

// Exit statuses of the CLI.
const (
	exitOK      = 0
	exitFailure = 1 // something went wrong that is not the user's input
	exitUsage   = 2 // bad input: a usage error or a domain refusal
)

// exitStatus maps a code to the CLI's exit status: the caller's mistakes
// (bad input, missing things, refused changes) are 2, everything else 1.
func exitStatus(c errCode) int {
	switch c {
	case codeInvalid, codeMalformed, codeNotFound, codeConflict, codeForbidden, codeUnauthenticated, codeTooLarge, codeGone:
		return exitUsage
	}
	return exitFailure
}

// stopRetrying reports whether repeating a call that failed with code can
// never succeed: the executor gives up on such a call at once instead of
// backing off. Internal and unavailable errors are worth another try.
func stopRetrying(c errCode) bool {
	return c != codeInternal && c != codeUnavailable
}
