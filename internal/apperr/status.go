package apperr

import (
	"net/http"
)

// HTTPStatus maps a code to the status the API and the pages answer with.
func HTTPStatus(c Code) int {
	switch c {
	case Invalid:
		return http.StatusUnprocessableEntity
	case Malformed:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case Forbidden:
		return http.StatusForbidden
	case Unauthenticated:
		return http.StatusUnauthorized
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Unavailable:
		return http.StatusServiceUnavailable
	case Gone:
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

// FromHTTPStatus is HTTPStatus read backwards, for a remote runner that
// hears the server's answer.
func FromHTTPStatus(status int) Code {
	switch status {
	case http.StatusUnprocessableEntity:
		return Invalid
	case http.StatusBadRequest:
		return Malformed
	case http.StatusNotFound, http.StatusGone:
		return NotFound
	case http.StatusConflict:
		return Conflict
	case http.StatusForbidden:
		return Forbidden
	case http.StatusUnauthorized:
		return Unauthenticated
	case http.StatusRequestEntityTooLarge:
		return TooLarge
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return Unavailable
	}
	if status >= 300 && status < 500 {
		return Invalid
	}
	return Internal
}
