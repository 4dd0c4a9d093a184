package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/store"
)

func TestErrorVocabulary(t *testing.T) {
	for _, tc := range []struct {
		err       error
		status    int
		exit      int
		stopRetry bool
		msg       string
	}{
		{apperr.ErrNotFound, 404, 2, true, "not found"},
		{apperr.NotFoundf("workflow not found"), 404, 2, true, "workflow not found"},
		{apperr.Conflictf("job is %s", "completed"), 409, 2, true, "job is completed"},
		{apperr.Invalidf("ref is required"), 422, 2, true, "ref is required"},
		{apperr.Malformedf("bad JSON"), 400, 2, true, "bad JSON"},
		{apperr.Forbiddenf("no"), 403, 2, true, "no"},
		{store.ErrBadToken, 401, 2, true, "bad credentials"},
		{apperr.Unavailablef("database is busy"), 503, 1, false, "database is busy"},
		{fmt.Errorf("claim: %w", apperr.Conflictf("illegal")), 409, 2, true, "illegal"},
		{errors.New("disk on fire"), 500, 1, false, "internal error"},
		{&http.MaxBytesError{Limit: 10}, 413, 2, true, "request body over 10 bytes"},
	} {
		c := errorCode(tc.err)
		if got := apperr.HTTPStatus(c); got != tc.status {
			t.Errorf("apperr.HTTPStatus(%v) = %d, want %d", tc.err, got, tc.status)
		}
		if got := exitStatus(c); got != tc.exit {
			t.Errorf("exitStatus(%v) = %d, want %d", tc.err, got, tc.exit)
		}
		if got := apperr.Permanent(c); got != tc.stopRetry {
			t.Errorf("stopRetrying(%v) = %v, want %v", tc.err, got, tc.stopRetry)
		}
		if got := errorMessage(tc.err); got != tc.msg {
			t.Errorf("errorMessage(%v) = %q, want %q", tc.err, got, tc.msg)
		}
	}
}

func TestCodeFromStatusRoundTrip(t *testing.T) {
	for c := apperr.Invalid; c <= apperr.Unavailable; c++ {
		if got := apperr.FromHTTPStatus(apperr.HTTPStatus(c)); got != c {
			t.Errorf("apperr.FromHTTPStatus(apperr.HTTPStatus(%d)) = %d", c, got)
		}
	}
	for _, st := range []int{500, 502, 302} {
		if got := apperr.Permanent(apperr.FromHTTPStatus(st)); got != (st == 302) {
			t.Errorf("stopRetrying(apperr.FromHTTPStatus(%d)) = %v", st, got)
		}
	}
}

// TestGitMissingIsNotNotFound: a git that cannot run is the program's
// failure, never "no such commit".
func TestGitMissingIsNotNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	g := git.Repo{Dir: t.TempDir()}
	_, err := g.Resolve(context.Background(), "HEAD")
	if err == nil || errors.Is(err, apperr.ErrNotFound) || errorCode(err) != apperr.Internal {
		t.Errorf("resolve with no git = %v (code %d), want an internal error", err, errorCode(err))
	}
}
