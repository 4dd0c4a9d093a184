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

// httpStatus maps a code to the status the API and the pages answer with.
func httpStatus(c apperr.Code) int {
	switch c {
	case apperr.Invalid:
		return http.StatusUnprocessableEntity
	case apperr.Malformed:
		return http.StatusBadRequest
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.TooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	case apperr.Gone:
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

// codeFromStatus is httpStatus read backwards, for a remote runner that
// hears the server's answer.
func codeFromStatus(status int) apperr.Code {
	switch status {
	case http.StatusUnprocessableEntity:
		return apperr.Invalid
	case http.StatusBadRequest:
		return apperr.Malformed
	case http.StatusNotFound, http.StatusGone:
		return apperr.NotFound
	case http.StatusConflict:
		return apperr.Conflict
	case http.StatusForbidden:
		return apperr.Forbidden
	case http.StatusUnauthorized:
		return apperr.Unauthenticated
	case http.StatusRequestEntityTooLarge:
		return apperr.TooLarge
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return apperr.Unavailable
	}
	if status >= 300 && status < 500 {
		return apperr.Invalid
	}
	return apperr.Internal
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
