package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestErrorVocabulary(t *testing.T) {
	for _, tc := range []struct {
		err       error
		status    int
		exit      int
		stopRetry bool
		msg       string
	}{
		{errNotFound, 404, 2, true, "not found"},
		{notFoundf("workflow not found"), 404, 2, true, "workflow not found"},
		{conflictf("job is %s", "completed"), 409, 2, true, "job is completed"},
		{invalidf("ref is required"), 422, 2, true, "ref is required"},
		{malformedf("bad JSON"), 400, 2, true, "bad JSON"},
		{forbiddenf("no"), 403, 2, true, "no"},
		{errBadToken, 401, 2, true, "bad credentials"},
		{unavailablef("database is busy"), 503, 1, false, "database is busy"},
		{fmt.Errorf("claim: %w", conflictf("illegal")), 409, 2, true, "illegal"},
		{errors.New("disk on fire"), 500, 1, false, "internal error"},
		{&http.MaxBytesError{Limit: 10}, 413, 2, true, "request body over 10 bytes"},
	} {
		c := errorCode(tc.err)
		if got := httpStatus(c); got != tc.status {
			t.Errorf("httpStatus(%v) = %d, want %d", tc.err, got, tc.status)
		}
		if got := exitStatus(c); got != tc.exit {
			t.Errorf("exitStatus(%v) = %d, want %d", tc.err, got, tc.exit)
		}
		if got := stopRetrying(c); got != tc.stopRetry {
			t.Errorf("stopRetrying(%v) = %v, want %v", tc.err, got, tc.stopRetry)
		}
		if got := errorMessage(tc.err); got != tc.msg {
			t.Errorf("errorMessage(%v) = %q, want %q", tc.err, got, tc.msg)
		}
	}
}

func TestErrorIsSentinel(t *testing.T) {
	wrapped := fmt.Errorf("load: %w", notFoundf("no run 7"))
	if !errors.Is(wrapped, errNotFound) {
		t.Errorf("errors.Is(%v, errNotFound) = false, want true", wrapped)
	}
	if errors.Is(conflictf("x"), errNotFound) {
		t.Error("a conflict Is errNotFound")
	}
	// A message-carrying error is not a sentinel: nothing else Is it.
	if errors.Is(errNotFound, notFoundf("no run 7")) {
		t.Error("errNotFound Is a particular not-found error")
	}
}

func TestCodeFromStatusRoundTrip(t *testing.T) {
	for c := codeInvalid; c <= codeUnavailable; c++ {
		if got := codeFromStatus(httpStatus(c)); got != c {
			t.Errorf("codeFromStatus(httpStatus(%d)) = %d", c, got)
		}
	}
	for _, st := range []int{500, 502, 302} {
		if got := stopRetrying(codeFromStatus(st)); got != (st == 302) {
			t.Errorf("stopRetrying(codeFromStatus(%d)) = %v", st, got)
		}
	}
}

// TestGitMissingIsNotNotFound: a git that cannot run is the program's
// failure, never "no such commit".
func TestGitMissingIsNotNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	g := gitRepo{dir: t.TempDir()}
	_, err := g.resolve(context.Background(), "HEAD")
	if err == nil || errors.Is(err, errNotFound) || errorCode(err) != codeInternal {
		t.Errorf("resolve with no git = %v (code %d), want an internal error", err, errorCode(err))
	}
}
