// The error vocabulary's mappings at the edges: HTTP status and CLI exit
// status. The vocabulary itself is package apperr.

package main

import (
	"errors"
	"fmt"
	"net/http"

	"shithub-actions/internal/apperr"
)

// errorCode is err's code; errors outside the vocabulary are internal.
func errorCode(err error) apperr.Code {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apperr.TooLarge
	}
	return apperr.Internal
}

// errorMessage is what a client may be told of err: the domain's message,
// never an internal error's text.
func errorMessage(err error) string {
	var ae *apperr.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.Error()
	case errors.As(err, &mbe):
		return fmt.Sprintf("request body over %d bytes", mbe.Limit)
	}
	return "internal error"
}

// Exit statuses of the CLI.
const (
	exitOK      = 0
	exitFailure = 1 // something went wrong that is not the user's input
	exitUsage   = 2 // bad input: a usage error or a domain refusal
)

// exitStatus maps a code to the CLI's exit status: the caller's mistakes
// (bad input, missing things, refused changes) are 2, everything else 1.
func exitStatus(c apperr.Code) int {
	switch c {
	case apperr.Invalid, apperr.Malformed, apperr.NotFound, apperr.Conflict, apperr.Forbidden, apperr.Unauthenticated, apperr.TooLarge, apperr.Gone:
		return exitUsage
	}
	return exitFailure
}
