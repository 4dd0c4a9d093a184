// Who is asking: PATs and their scopes, runner tokens, browser sessions,
// CSRF checks on forms, and the sign-in limiter.

package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/store"
)

var validScopes = []string{store.ScopeRead, store.ScopeWrite}

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
	errAuthRequired       = &apperr.Error{Code: apperr.Unauthenticated, Msg: "authentication required: send a personal access token as \"Authorization: Bearer TOKEN\""}
	errRunnerAuthRequired = &apperr.Error{Code: apperr.Unauthenticated, Msg: "authentication required: send the runner token as \"Authorization: Bearer TOKEN\""}
	errRunnerRevoked      = &apperr.Error{Code: apperr.Unauthenticated, Msg: "runner revoked"}
)

// authUser authenticates the request's PAT. It returns nil, nil, nil when
// the request carries no credentials (anonymous).
func (s *server) authUser(r *http.Request) (*store.User, *store.Token, error) {
	secret, ok := credentials(r)
	if !ok {
		return nil, nil, nil
	}
	if store.IsJobToken(secret) {
		return s.jobTokenUser(r.Context(), secret)
	}
	u, t, err := s.tokenUser(r.Context(), secret)
	if err != nil {
		return nil, nil, err
	}
	s.touchToken(r.Context(), t)
	return u, t, nil
}

// tokenUser checks a PAT (Store.patUser). The caller records the use once
// its own checks pass.
func (s *server) tokenUser(ctx context.Context, secret string) (*store.User, *store.Token, error) {
	return s.store.PatUser(ctx, secret)
}

// touchToken records a token's use; failing to is logged, not fatal.
func (s *server) touchToken(ctx context.Context, t *store.Token) {
	if err := s.store.TouchToken(ctx, t); err != nil {
		s.log.Warn("recording token use", "token", t.ID, "err", err)
	}
}

// requireUser authenticates a PAT that must be present and carry scope.
func (s *server) requireUser(r *http.Request, scope string) (*store.User, error) {
	u, t, err := s.authUser(r)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, errAuthRequired
	}
	if !t.HasScope(scope) {
		return nil, store.ErrLacksScope(scope)
	}
	return u, nil
}

// requireRunner authenticates a runner token. PATs are not accepted here.
func (s *server) requireRunner(r *http.Request) (*store.Runner, error) {
	secret, ok := credentials(r)
	if !ok {
		return nil, errRunnerAuthRequired
	}
	if !strings.HasPrefix(secret, store.RunnerTokenPrefix) {
		return nil, store.ErrBadToken
	}
	rn, err := s.store.RunnerBySecret(r.Context(), secret)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, store.ErrBadToken
	}
	if err == nil && rn.Revoked {
		return nil, errRunnerRevoked
	}
	return rn, err
}

// webViewer is the person a page is for: anonymous (user nil), signed in
// with a session (csrf set), or a PAT in Authorization for scripted reads.
// token holds the scopes of the PAT, or of the one the session was signed
// in with: a session is worth what its token is.
type webViewer struct {
	user  *store.User
	csrf  string
	token store.Token
}

// mayWrite reports whether the viewer's token lets them cancel and re-run,
// as the API asks of a PAT; permission on the repository is checked apart.
func (v *webViewer) mayWrite() bool { return v.user != nil && v.token.HasScope(store.ScopeWrite) }

// viewer resolves the request's viewer. A PAT in Authorization wins (and
// must be valid and carry repo:read); else the session cookie. A cookie
// naming no live session is cleared and the viewer is anonymous.
func (s *server) viewer(w http.ResponseWriter, r *http.Request) (*webViewer, error) {
	if _, ok := credentials(r); ok {
		u, tok, err := s.authUser(r)
		if err != nil {
			return nil, err
		}
		if !tok.HasScope(store.ScopeRead) {
			return nil, store.ErrLacksScope(store.ScopeRead)
		}
		return &webViewer{user: u, token: *tok}, nil
	}
	c, err := r.Cookie(webSessionCookie)
	if err != nil || c.Value == "" {
		return &webViewer{}, nil
	}
	u, csrf, scopes, err := s.store.WebSession(r.Context(), c.Value)
	if errors.Is(err, apperr.ErrNotFound) {
		if w != nil {
			s.setSessionCookie(w, r, "", -1)
		}
		return &webViewer{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &webViewer{user: u, csrf: csrf, token: store.Token{Scopes: scopes}}, nil
}

// setSessionCookie sets (maxAge > 0) or clears (maxAge < 0) the session
// cookie. It is Secure when the request came over TLS or when --base-url
// says the server is reached over https: X-Forwarded-Proto is not trusted,
// since nothing tells the server a proxy is there to set it.
func (s *server) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: webSessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || strings.HasPrefix(s.baseURL, "https://"),
	})
}

// sameOrigin rejects cross-site form posts by the headers browsers add:
// Sec-Fetch-Site, and Origin, which must name this server. Clients that
// send neither (curl) pass; they still need the session's CSRF token.
func (s *server) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // includes "null"
	}
	if u.Host == r.Host {
		return true
	}
	if b, err := url.Parse(s.baseURL); err == nil && s.baseURL != "" {
		return u.Scheme == b.Scheme && u.Host == b.Host
	}
	return false
}

var (
	errCrossOrigin = &apperr.Error{Code: apperr.Forbidden, Msg: "cross-origin form posts are refused"}
	errSignInFirst = &apperr.Error{Code: apperr.Forbidden, Msg: "sign in first"}
	errBadCSRF     = &apperr.Error{Code: apperr.Forbidden, Msg: "the form has expired or did not come from this site; reload the page and try again"}
)

// formViewer checks a state-changing form post: same origin, a browser
// session (never a PAT: a browser may attach cached Basic credentials on
// its own) and the session's CSRF token in the "csrf" field.
func (s *server) formViewer(w http.ResponseWriter, r *http.Request) (*webViewer, error) {
	if !s.sameOrigin(r) {
		return nil, errCrossOrigin
	}
	if _, ok := credentials(r); ok {
		return nil, apperr.Forbiddenf("forms take a signed-in session, not a token; use the API")
	}
	v, err := s.viewer(w, r)
	if err != nil {
		return nil, err
	}
	if v.user == nil {
		return nil, errSignInFirst
	}
	got := r.PostFormValue("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(v.csrf)) != 1 {
		return nil, errBadCSRF
	}
	return v, nil
}

// loginLimiter counts failed sign-ins per client address in fixed windows.
// An attempt is counted when it starts (acquire), atomically with the check,
// so parallel guesses cannot all pass before the first failure is counted;
// a success gives its own count back. A success does not clear the others:
// else one valid token would buy an attacker endless guesses at another
// user's.
type loginLimiter struct {
	mu     sync.Mutex // guards fails
	now    func() time.Time
	max    int
	window time.Duration
	fails  map[string]*loginFails
}

type loginFails struct {
	n     int // failed and in-flight attempts in the window
	start time.Time
}

// loginLimiterCap bounds the limiter's memory; past it, ended windows are
// swept.
const loginLimiterCap = 10000

func newLoginLimiter(now func() time.Time, max int, window time.Duration) *loginLimiter {
	return &loginLimiter{now: now, max: max, window: window, fails: map[string]*loginFails{}}
}

// acquire counts an attempt by key. It returns 0 and a function to call
// with the attempt's outcome, or how long key must wait (and a nil
// function) when key has used up its attempts.
func (l *loginLimiter) acquire(key string) (time.Duration, func(ok bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.fails[key]
	if f == nil || !now.Before(f.start.Add(l.window)) {
		if len(l.fails) >= loginLimiterCap {
			for k, o := range l.fails {
				if !now.Before(o.start.Add(l.window)) {
					delete(l.fails, k)
				}
			}
		}
		f = &loginFails{start: now}
		l.fails[key] = f
	}
	if f.n >= l.max {
		return f.start.Add(l.window).Sub(now), nil
	}
	f.n++
	return 0, func(ok bool) {
		if !ok {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.fails[key] == f && f.n > 0 { // not a new window meanwhile
			f.n--
		}
	}
}

// clientKey is the limiter's key for a request: the peer address, with IPv6
// cut to its /64, which one client usually holds whole. Behind a proxy the
// operator named with --trust-proxy, it is the address the proxies say
// they got the request from: the right-most X-Forwarded-For entry that is
// not itself a trusted proxy. Anyone else's X-Forwarded-For is ignored, as
// anyone can send one.
func (s *server) clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if s.trusted(a) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a garbled header: keep the last address we could trust
			}
			if a = hop.Unmap(); !s.trusted(a) {
				break
			}
		}
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// trusted reports whether a is a reverse proxy named by --trust-proxy.
func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.trustProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var errBadLogin = errors.New("bad sign-in")

// checkLogin judges a sign-in: every way it can be wrong is errBadLogin.
// The token is returned too: the session lives no longer than it.
func (s *server) checkLogin(r *http.Request, name, secret string) (*store.User, *store.Token, error) {
	if name == "" {
		return nil, nil, errBadLogin
	}
	u, t, err := s.tokenUser(r.Context(), secret)
	if errorCode(err) == apperr.Unauthenticated {
		return nil, nil, errBadLogin
	}
	if err != nil {
		return nil, nil, err
	}
	if u.Name != name || !t.HasScope(store.ScopeRead) {
		return nil, nil, errBadLogin
	}
	s.touchToken(r.Context(), t)
	return u, t, nil
}

// jobTokenUser authenticates a GITHUB_TOKEN. The user it returns is the
// run's actor carrying the job principal, so that permission() grants it
// the token's permissions on the job's repository and nothing elsewhere;
// the token is a stand-in whose scopes follow the `actions` permission.
// A token of a job that is no longer running is refused.
func (s *server) jobTokenUser(ctx context.Context, secret string) (*store.User, *store.Token, error) {
	if len(secret) != len(store.JobTokenPrefix)+32 {
		return nil, nil, store.ErrBadToken
	}
	u, err := s.store.JobTokenUser(ctx, secret)
	if err != nil {
		return nil, nil, err
	}
	t := &store.Token{Name: "GITHUB_TOKEN"}
	switch u.Job.Perms.Actions {
	case "write":
		t.Scopes = []string{store.ScopeRead, store.ScopeWrite}
	case "read":
		t.Scopes = []string{store.ScopeRead}
	}
	return u, t, nil
}
