package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
)

const (
	scopeRead  = "repo:read"
	scopeWrite = "repo:write"
)

var validScopes = []string{scopeRead, scopeWrite}

// hasScope reports whether a token grants scope; repo:write implies
// repo:read.
func (t *Token) hasScope(scope string) bool {
	return slices.Contains(t.Scopes, scope) || (scope == scopeRead && slices.Contains(t.Scopes, scopeWrite))
}

// credentials takes the secret from the Authorization header: "Bearer T",
// "token T", or HTTP Basic with the secret as the password (what feed
// readers send). ok is false when there is no header at all.
func credentials(r *http.Request) (secret string, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	if _, pass, basic := r.BasicAuth(); basic {
		return pass, true
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer", "token":
		return strings.TrimSpace(rest), true
	}
	return "", true // present but malformed: answered like an unknown token
}

// Authentication failures. Unknown and malformed tokens share one message,
// so a caller cannot tell a well-formed guess from a typo.
var (
	errAuthRequired       = &appError{Code: codeUnauthenticated, Msg: "authentication required: send a personal access token as \"Authorization: Bearer TOKEN\""}
	errRunnerAuthRequired = &appError{Code: codeUnauthenticated, Msg: "authentication required: send the runner token as \"Authorization: Bearer TOKEN\""}
	errBadToken           = &appError{Code: codeUnauthenticated, Msg: "bad credentials"}
	errTokenExpired       = &appError{Code: codeUnauthenticated, Msg: "token expired"}
	errTokenRevoked       = &appError{Code: codeUnauthenticated, Msg: "token revoked"}
)

// errLacksScope refuses a valid token that does not grant scope.
func errLacksScope(scope string) error { return forbiddenf("token lacks the %s scope", scope) }

// authUser authenticates the request's PAT. It returns nil, nil, nil when
// the request carries no credentials (anonymous).
func (s *server) authUser(r *http.Request) (*User, *Token, error) {
	secret, ok := credentials(r)
	if !ok {
		return nil, nil, nil
	}
	u, t, err := s.tokenUser(r.Context(), secret)
	if err != nil {
		return nil, nil, err
	}
	s.touchToken(r.Context(), t)
	return u, t, nil
}

// tokenUser checks a PAT: well-formed, known, neither revoked nor expired.
// It returns the token with its user, or errBadToken, errTokenRevoked or
// errTokenExpired. The caller records the use once its own checks pass.
func (s *server) tokenUser(ctx context.Context, secret string) (*User, *Token, error) {
	if !strings.HasPrefix(secret, patPrefix) || len(secret) != len(patPrefix)+32 {
		return nil, nil, errBadToken
	}
	t, u, err := s.store.tokenBySecret(ctx, secret)
	if errors.Is(err, errNotFound) {
		return nil, nil, errBadToken
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.store.now()
	switch {
	case !t.RevokedAt.IsZero():
		return nil, nil, errTokenRevoked
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return nil, nil, errTokenExpired
	}
	return u, t, nil
}

// touchToken records a token's use; failing to is logged, not fatal.
func (s *server) touchToken(ctx context.Context, t *Token) {
	if err := s.store.touchToken(ctx, t); err != nil {
		s.log.Warn("recording token use", "token", t.ID, "err", err)
	}
}

// requireUser authenticates a PAT that must be present and carry scope.
func (s *server) requireUser(r *http.Request, scope string) (*User, error) {
	u, t, err := s.authUser(r)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, errAuthRequired
	}
	if !t.hasScope(scope) {
		return nil, errLacksScope(scope)
	}
	return u, nil
}

// requireRunner authenticates a runner token. PATs are not accepted here.
func (s *server) requireRunner(r *http.Request) (*Runner, error) {
	secret, ok := credentials(r)
	if !ok {
		return nil, errRunnerAuthRequired
	}
	if !strings.HasPrefix(secret, runnerTokenPrefix) {
		return nil, errBadToken
	}
	rn, err := s.store.runnerBySecret(r.Context(), secret)
	if errors.Is(err, errNotFound) {
		return nil, errBadToken
	}
	return rn, err
}
