package main

// The web pages: the Actions tab, run pages with live logs, the cancel and
// re-run buttons, status badges, and signing in with a personal access
// token. Pages are html/template files embedded in the binary; the only
// script is the run page's small live-update loop, inlined with a nonce.

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

//go:embed templates/*.html
var webTemplates embed.FS

const (
	// webSessionCookie holds a browser session's id.
	webSessionCookie = "shithub_session"
	// webSessionTTL is how long a sign-in lasts.
	webSessionTTL = 7 * 24 * time.Hour
	// webRunsPerPage is the Actions tab's page size.
	webRunsPerPage = 25
	// webLogPageCap is the most of one step's log a run page carries; the
	// raw log has the rest.
	webLogPageCap = 1 << 20
	// webLiveBudget is about the most log bytes one live answer carries.
	webLiveBudget = 256 << 10
	// Failed sign-ins: after webLoginMaxFails within webLoginWindow from one
	// address, sign-ins from it are refused with 429 until the window ends.
	webLoginMaxFails = 5
	webLoginWindow   = 15 * time.Minute
)

// webUI is what the pages keep between requests.
type webUI struct {
	pages   map[string]*template.Template
	limiter *loginLimiter
}

func newWebUI(now func() time.Time) *webUI {
	funcs := template.FuncMap{
		"stateLabel": func(state string) string { return webStateLabels[state] },
	}
	ui := &webUI{pages: map[string]*template.Template{}, limiter: newLoginLimiter(now, webLoginMaxFails, webLoginWindow)}
	for _, page := range []string{"home", "login", "actions", "run", "error"} {
		t := template.New("layout.html").Funcs(funcs)
		ui.pages[page] = template.Must(t.ParseFS(webTemplates, "templates/layout.html", "templates/"+page+".html"))
	}
	return ui
}

// webRoutes registers the pages.
func (s *server) webRoutes() {
	s.web = newWebUI(func() time.Time { return s.store.now() })
	s.mux.HandleFunc("GET /{$}", s.wrap(s.handleHome))
	s.mux.HandleFunc("GET /login", s.wrap(s.handleLoginForm))
	s.mux.HandleFunc("POST /login", s.wrap(s.handleLogin))
	s.mux.HandleFunc("POST /logout", s.wrap(s.handleLogout))
	s.mux.HandleFunc("GET /{owner}/{repo}/actions", s.wrap(s.handleActionsTab))
	s.mux.HandleFunc("GET /{owner}/{repo}/actions/runs/{run_index}", s.wrap(s.handleRunView))
	s.mux.HandleFunc("GET /{owner}/{repo}/actions/runs/{run_index}/live", s.wrap(s.handleRunLive))
	s.mux.HandleFunc("GET /{owner}/{repo}/actions/runs/{run_index}/jobs/{job_id}/log", s.wrap(s.handleWebJobLog))
	s.mux.HandleFunc("POST /{owner}/{repo}/actions/runs/{run_index}/cancel", s.wrap(s.handleWebCancel))
	s.mux.HandleFunc("POST /{owner}/{repo}/actions/runs/{run_index}/jobs/{job_id}/cancel", s.wrap(s.handleWebCancel))
	s.mux.HandleFunc("POST /{owner}/{repo}/actions/runs/{run_index}/rerun", s.wrap(s.handleWebRerun))
	s.mux.HandleFunc("GET /{owner}/{repo}/actions/workflows/{workflow_file}/badge.svg", s.wrap(s.handleBadge))
}

// ---- who is looking ----

// webViewer is the person a page is for: anonymous (user nil), signed in
// with a session (csrf set), or a PAT in Authorization for scripted reads.
type webViewer struct {
	user *User
	csrf string
}

// viewer resolves the request's viewer. A PAT in Authorization wins (and
// must be valid and carry repo:read); else the session cookie. A cookie
// naming no live session is cleared and the viewer is anonymous.
func (s *server) viewer(w http.ResponseWriter, r *http.Request) (*webViewer, error) {
	if _, ok := credentials(r); ok {
		u, tok, err := s.authUser(r)
		if err != nil {
			return nil, err
		}
		if !tok.hasScope(scopeRead) {
			return nil, errLacksScope(scopeRead)
		}
		return &webViewer{user: u}, nil
	}
	c, err := r.Cookie(webSessionCookie)
	if err != nil || c.Value == "" {
		return &webViewer{}, nil
	}
	u, csrf, err := s.store.webSession(r.Context(), c.Value)
	if errors.Is(err, errNotFound) {
		if w != nil {
			s.setSessionCookie(w, r, "", -1)
		}
		return &webViewer{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &webViewer{user: u, csrf: csrf}, nil
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

// webRunFromPath resolves the viewer, the path's repository (with the
// viewer's permission on it) and its run: what every run page starts with.
func (s *server) webRunFromPath(w http.ResponseWriter, r *http.Request) (*webViewer, *Repo, perm, *Run, error) {
	v, err := s.viewer(w, r)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	repo, p, err := s.readablePathRepo(r, v.user)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	run, err := s.webRun(r, repo)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	return v, repo, p, run, nil
}

// webRun loads the path's run of a repository.
func (s *server) webRun(r *http.Request, repo *Repo) (*Run, error) {
	idx, err := pathID(r, "run_index")
	if err != nil {
		return nil, err
	}
	return s.store.runByIndex(r.Context(), repo.ID, idx)
}

// ---- CSRF ----

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
	errCrossOrigin = &appError{Code: codeForbidden, Msg: "cross-origin form posts are refused"}
	errSignInFirst = &appError{Code: codeForbidden, Msg: "sign in first"}
	errBadCSRF     = &appError{Code: codeForbidden, Msg: "the form has expired or did not come from this site; reload the page and try again"}
)

// formViewer checks a state-changing form post: same origin, a browser
// session (never a PAT: a browser may attach cached Basic credentials on
// its own) and the session's CSRF token in the "csrf" field.
func (s *server) formViewer(w http.ResponseWriter, r *http.Request) (*webViewer, error) {
	if !s.sameOrigin(r) {
		return nil, errCrossOrigin
	}
	if _, ok := credentials(r); ok {
		return nil, forbiddenf("forms take a signed-in session, not a token; use the API")
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

// ---- the sign-in limiter ----

// loginLimiter counts failed sign-ins per client address in fixed windows.
// A success does not clear the count: else one valid token would buy an
// attacker endless guesses at another user's.
type loginLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	max    int
	window time.Duration
	fails  map[string]*loginFails
}

type loginFails struct {
	n     int
	start time.Time
}

// loginLimiterCap bounds the limiter's memory; past it, ended windows are
// swept.
const loginLimiterCap = 10000

func newLoginLimiter(now func() time.Time, max int, window time.Duration) *loginLimiter {
	return &loginLimiter{now: now, max: max, window: window, fails: map[string]*loginFails{}}
}

// wait reports how long key must wait before trying again; 0: it may try.
func (l *loginLimiter) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[key]
	if f == nil {
		return 0
	}
	left := f.start.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.fails, key)
		return 0
	}
	if f.n < l.max {
		return 0
	}
	return left
}

func (l *loginLimiter) fail(key string) {
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
	f.n++
}

// clientKey is the limiter's key for a request: the peer address (not
// X-Forwarded-For, which anyone can send), with IPv6 cut to its /64, which
// one client usually holds whole.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ---- rendering ----

// webLayout is what every page's frame shows.
type webLayout struct {
	Title  string
	Viewer *User
	CSRF   string
	Nonce  string
	Feed   string // an Atom feed to announce in <head>
	Repo   *Repo  // the repository the page is about, for the crumbs
	Next   string // where signing in returns to
	Page   any
}

// newNonce returns a CSP nonce for the page's inline script and style.
func newNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// render writes a page with the security headers every page carries. The
// page is rendered whole before anything is written, so a template error
// is a clean 500.
func (s *server) render(w http.ResponseWriter, r *http.Request, code int, page string, l webLayout) error {
	if l.Nonce == "" {
		l.Nonce = newNonce()
	}
	if l.Next == "" && r.Method == http.MethodGet {
		l.Next = r.URL.RequestURI()
	}
	var buf bytes.Buffer
	if err := s.web.pages[page].ExecuteTemplate(&buf, "layout", l); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Cookie, Authorization")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	// Styles may be inline (log colours beyond the 16 named ones are style
	// attributes, which a nonce cannot cover); scripts only with the nonce.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+l.Nonce+"'; style-src 'unsafe-inline'; "+
		"img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

// isPageRequest reports whether an error on r is answered with a page
// rather than JSON: anything outside /api/ and the feed, unless the client
// asked for JSON (the live-update script does).
func isPageRequest(r *http.Request) bool {
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/") || strings.HasSuffix(p, ".atom") {
		return false
	}
	accept := r.Header.Get("Accept")
	return !strings.Contains(accept, "application/json") || strings.Contains(accept, "text/html")
}

// webError is s.error's page: the status and its message, with the viewer
// looked up on a best-effort basis for the header.
func (s *server) webError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	l := webLayout{Title: http.StatusText(code), Page: struct {
		Code    int
		Status  string
		Message string
	}{code, http.StatusText(code), msg}}
	if code != http.StatusUnauthorized {
		if v, err := s.viewer(nil, r); err == nil {
			l.Viewer, l.CSRF = v.user, v.csrf
		}
	}
	if err := s.render(w, r, code, "error", l); err != nil {
		s.log.Error("rendering an error page", "path", r.URL.Path, "err", err)
		http.Error(w, msg, code)
	}
}

// ---- the home page and signing in ----

func (s *server) handleHome(w http.ResponseWriter, r *http.Request) error {
	v, err := s.viewer(w, r)
	if err != nil {
		return err
	}
	repos, err := s.store.webVisibleRepos(r.Context(), v.user)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "home", webLayout{Title: "shithub-actions", Viewer: v.user, CSRF: v.csrf, Page: repos})
}

type loginPage struct {
	Username string
	Error    string
}

// safeNext keeps a post-sign-in redirect on this site: a path, never
// "//host" or "/\host", which browsers take for another origin.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

func (s *server) handleLoginForm(w http.ResponseWriter, r *http.Request) error {
	v, err := s.viewer(w, r)
	if err != nil {
		return err
	}
	next := safeNext(r.URL.Query().Get("next"))
	return s.render(w, r, http.StatusOK, "login", webLayout{Title: "Sign in", Viewer: v.user, CSRF: v.csrf, Next: next, Page: loginPage{}})
}

// handleLogin serves POST /login: a user name and a PAT of that user that
// is unexpired, unrevoked and carries repo:read at least.
func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(r) {
		return errCrossOrigin
	}
	next := safeNext(r.PostFormValue("next"))
	name := strings.TrimSpace(r.PostFormValue("username"))
	secret := strings.TrimSpace(r.PostFormValue("token"))
	key := clientKey(r)
	fail := func(code int, msg string) error {
		return s.render(w, r, code, "login", webLayout{Title: "Sign in", Next: next, Page: loginPage{Username: name, Error: msg}})
	}
	if wait := s.web.limiter.wait(key); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		mins := int((wait + time.Minute - 1) / time.Minute)
		return fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d minute(s).", mins))
	}
	u, tok, err := s.checkLogin(r, name, secret)
	if errors.Is(err, errBadLogin) {
		s.web.limiter.fail(key)
		return fail(http.StatusForbidden, "Wrong user name or token, or the token is expired, revoked or lacks "+scopeRead+".")
	}
	if err != nil {
		return err
	}
	id, _, err := s.store.webCreateSession(r.Context(), u.ID, tok.ID, webSessionTTL)
	if err != nil {
		return err
	}
	s.setSessionCookie(w, r, id, int(webSessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

var errBadLogin = errors.New("bad sign-in")

// checkLogin judges a sign-in: every way it can be wrong is errBadLogin.
// The token is returned too: the session lives no longer than it.
func (s *server) checkLogin(r *http.Request, name, secret string) (*User, *Token, error) {
	if name == "" {
		return nil, nil, errBadLogin
	}
	u, t, err := s.tokenUser(r.Context(), secret)
	if errorCode(err) == codeUnauthenticated {
		return nil, nil, errBadLogin
	}
	if err != nil {
		return nil, nil, err
	}
	if u.Name != name || !t.hasScope(scopeRead) {
		return nil, nil, errBadLogin
	}
	s.touchToken(r.Context(), t)
	return u, t, nil
}

// handleLogout serves POST /logout.
func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.formViewer(w, r); err != nil {
		return err
	}
	c, _ := r.Cookie(webSessionCookie)
	if err := s.store.webDeleteSession(r.Context(), c.Value); err != nil {
		return err
	}
	s.setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// ---- states, times and durations ----

// webStateLabels names each state a run, job or step shows.
var webStateLabels = map[string]string{
	"success": "Success", "failure": "Failure", "cancelled": "Cancelled", "skipped": "Skipped",
	"timed_out": "Timed out", "running": "In progress", "queued": "Queued", "cancelling": "Cancelling",
	"neutral": "Completed",
}

// webState is the one word a status and conclusion show as.
func webState(status, conclusion string, cancelRequested bool) string {
	switch {
	case status == statusCompleted:
		if _, ok := webStateLabels[conclusion]; ok && conclusion != "running" && conclusion != "queued" {
			return conclusion
		}
		return "neutral"
	case cancelRequested:
		return "cancelling"
	case status == statusRunning:
		return "running"
	}
	return "queued"
}

// webDuration formats a duration as "1h 2m 3s", "2m 5s" or "7s".
func webDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %dm %ds", h, m, sec)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, sec)
	}
	return fmt.Sprintf("%ds", sec)
}

// span is how long something that started at start took, or has taken so
// far; "" when it has not started.
func span(start, end, now time.Time) string {
	if start.IsZero() {
		return ""
	}
	if end.IsZero() {
		end = now
	}
	return webDuration(end.Sub(start))
}

// webTime is a moment as a page shows it: relative, with the absolute time
// for <time datetime> and a tooltip.
type webTime struct {
	ISO, Abs, Rel string
}

func newWebTime(t, now time.Time) webTime {
	if t.IsZero() {
		return webTime{}
	}
	t = t.UTC()
	wt := webTime{ISO: t.Format(time.RFC3339), Abs: t.Format("2006-01-02 15:04:05 UTC")}
	d := now.Sub(t)
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return fmt.Sprintf("%d %ss ago", n, unit)
	}
	switch {
	case d < 45*time.Second:
		wt.Rel = "just now"
	case d < 45*time.Minute:
		wt.Rel = plural(max(1, int(d.Round(time.Minute)/time.Minute)), "minute")
	case d < 22*time.Hour:
		wt.Rel = plural(max(1, int(d.Round(time.Hour)/time.Hour)), "hour")
	case d < 26*24*time.Hour:
		wt.Rel = plural(max(1, int(d.Round(24*time.Hour)/(24*time.Hour))), "day")
	default:
		wt.Rel = "on " + t.Format("Jan 2, 2006")
	}
	return wt
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// ---- the Actions tab ----

// webStatusFilters are the Actions tab's status choices: statuses, then
// conclusions.
var webStatusFilters = []string{"queued", "running", "completed", "success", "failure", "cancelled", "skipped", "timed_out"}

type webOption struct {
	Value, Label string
	Selected     bool
}

type runRow struct {
	URL      string
	State    string
	Name     string
	Index    int64
	Event    string
	Branch   string
	SHA      string
	ShortSHA string
	Actor    string
	Attempt  int64
	When     webTime
	Duration string
}

type actionsPage struct {
	Repo      *Repo
	FeedURL   string
	Runs      []runRow
	Total     int
	Page      int
	Pages     int
	PrevURL   string
	NextURL   string
	Workflows []webOption
	Statuses  []webOption
	Branch    string
	Branches  []string
	Filtered  bool
	ClearURL  string
}

func (s *server) handleActionsTab(w http.ResponseWriter, r *http.Request) error {
	v, err := s.viewer(w, r)
	if err != nil {
		return err
	}
	repo, _, err := s.readablePathRepo(r, v.user)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := queryInt(q.Get("page"), 1, 1, 1<<20, "page")
	if err != nil {
		return err
	}
	wf, branch, status := q.Get("workflow"), strings.TrimSpace(q.Get("branch")), q.Get("status")
	f := runFilter{WorkflowFile: wf, Branch: branch}
	switch {
	case status == "":
	case slices.Contains([]string{statusQueued, statusRunning, statusCompleted}, status):
		f.Status = status
	case slices.Contains(webStatusFilters, status):
		f.Conclusion = status
	default:
		return malformedf("unknown status %q", status)
	}
	runs, total, err := s.store.listRuns(r.Context(), repo.ID, f, page, webRunsPerPage)
	if err != nil {
		return err
	}
	workflows, err := s.store.webWorkflows(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	branches, err := s.store.webBranches(r.Context(), repo.ID, 50)
	if err != nil {
		return err
	}
	tab := actionsTabURL("", repo)
	now := s.store.now()
	p := actionsPage{
		Repo: repo, FeedURL: tab + ".atom", Total: total, Page: page,
		Pages: max(1, (total+webRunsPerPage-1)/webRunsPerPage), Branch: branch, Branches: branches,
		Filtered: wf != "" || branch != "" || status != "", ClearURL: tab,
	}
	p.Workflows = append(p.Workflows, webOption{Value: "", Label: "All workflows", Selected: wf == ""})
	for _, w := range workflows {
		base := strings.TrimPrefix(w.File, workflowDir)
		p.Workflows = append(p.Workflows, webOption{Value: base, Label: w.Name + " (" + base + ")", Selected: wf == base || wf == w.File})
	}
	p.Statuses = append(p.Statuses, webOption{Value: "", Label: "Any status", Selected: status == ""})
	for _, st := range webStatusFilters {
		label := webStateLabels[st]
		if st == statusCompleted {
			label = "Completed"
		}
		p.Statuses = append(p.Statuses, webOption{Value: st, Label: label, Selected: st == status})
	}
	for _, run := range runs {
		p.Runs = append(p.Runs, runRow{
			URL: fmt.Sprintf("%s/runs/%d", tab, run.RunIndex), State: webState(run.Status, run.Conclusion, false),
			Name: run.WorkflowName, Index: run.RunIndex, Event: run.Event, Branch: refName(run.HeadRef),
			SHA: run.HeadSHA, ShortSHA: shortSHA(run.HeadSHA), Actor: run.Actor, Attempt: run.RunAttempt,
			When: newWebTime(run.CreatedAt, now), Duration: span(run.StartedAt, run.CompletedAt, now),
		})
	}
	pageURL := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(n))
		return tab + "?" + v.Encode()
	}
	if page > 1 {
		p.PrevURL = pageURL(min(page-1, p.Pages))
	}
	if page < p.Pages {
		p.NextURL = pageURL(page + 1)
	}
	return s.render(w, r, http.StatusOK, "actions", webLayout{
		Title: "Actions · " + repo.FullName(), Viewer: v.user, CSRF: v.csrf, Feed: p.FeedURL, Repo: repo, Page: p,
	})
}

// ---- the run page ----

type runLink struct {
	Index int64
	URL   string
	State string
}

type stepView struct {
	ID        int64
	Number    int
	Name      string
	State     string
	Duration  string
	Open      bool
	Log       template.HTML
	Seq       int64
	LogState  string
	Omitted   int64 // bytes of the start of the log left off the page
	Truncated bool
}

type jobView struct {
	ID        int64
	Name      string
	State     string
	Duration  string
	Needs     []string
	RunsOn    []string
	CanCancel bool
	CancelURL string
	LogURL    string
	Steps     []stepView
}

type runView struct {
	Repo      *Repo
	TabURL    string
	URL       string
	State     string
	Name      string
	File      string
	Index     int64
	Attempt   int64
	Event     string
	Branch    string
	SHA       string
	ShortSHA  string
	Actor     string
	Created   webTime
	Duration  string
	Parent    *runLink
	Children  []runLink
	Jobs      []jobView
	Open      bool // not completed: the page follows it live
	LiveURL   string
	CanWrite  bool
	CancelURL string
	RerunURL  string
}

// orderJobs sorts jobs so that each comes after the jobs it needs, file
// order among those free to go (Kahn's algorithm, stable).
func orderJobs(jobs []*Job) []*Job {
	done := map[string]bool{}
	out := make([]*Job, 0, len(jobs))
	left := slices.Clone(jobs)
	for len(left) > 0 {
		i := slices.IndexFunc(left, func(j *Job) bool {
			return !slices.ContainsFunc(j.Needs, func(n string) bool { return !done[n] })
		})
		if i < 0 {
			i = 0 // a cycle or an unknown need: keep file order
		}
		done[left[i].JobKey] = true
		out = append(out, left[i])
		left = slices.Delete(left, i, i+1)
	}
	return out
}

func (s *server) handleRunView(w http.ResponseWriter, r *http.Request) error {
	v, repo, p, run, err := s.webRunFromPath(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.store.now()
	tab := actionsTabURL("", repo)
	here := fmt.Sprintf("%s/runs/%d", tab, run.RunIndex)
	rv := runView{
		Repo: repo, TabURL: tab, URL: here, State: webState(run.Status, run.Conclusion, false), Name: run.WorkflowName,
		File: strings.TrimPrefix(run.WorkflowFile, workflowDir), Index: run.RunIndex, Attempt: run.RunAttempt,
		Event: run.Event, Branch: refName(run.HeadRef), SHA: run.HeadSHA, ShortSHA: shortSHA(run.HeadSHA), Actor: run.Actor,
		Created: newWebTime(run.CreatedAt, now), Duration: span(run.StartedAt, run.CompletedAt, now),
		Open: run.Status != statusCompleted, LiveURL: here + "/live",
		CanWrite: v.csrf != "" && p >= permWrite, CancelURL: here + "/cancel", RerunURL: here + "/rerun",
	}
	if run.ParentRunID != 0 {
		if pr, err := s.store.runByID(ctx, run.ParentRunID); err == nil {
			rv.Parent = &runLink{Index: pr.RunIndex, URL: fmt.Sprintf("%s/runs/%d", tab, pr.RunIndex), State: webState(pr.Status, pr.Conclusion, false)}
		} else if !errors.Is(err, errNotFound) {
			return err
		}
	}
	children, err := s.store.childRuns(ctx, run.ID)
	if err != nil {
		return err
	}
	for _, c := range children {
		rv.Children = append(rv.Children, runLink{Index: c.RunIndex, URL: fmt.Sprintf("%s/runs/%d", tab, c.RunIndex), State: webState(c.Status, c.Conclusion, false)})
	}
	jobs, err := s.store.runJobs(ctx, run.ID)
	if err != nil {
		return err
	}
	for _, j := range orderJobs(jobs) {
		chunks, err := s.store.jobLogChunks(ctx, j.ID)
		if err != nil {
			return err
		}
		jv := jobView{
			ID: j.ID, Name: j.Name, State: webState(j.Status, j.Conclusion, j.CancelRequested),
			Duration: span(j.StartedAt, j.CompletedAt, now), Needs: j.Needs, RunsOn: j.RunsOn,
			CanCancel: j.Status != statusCompleted && !j.CancelRequested,
			CancelURL: fmt.Sprintf("%s/jobs/%d/cancel", here, j.ID), LogURL: fmt.Sprintf("%s/jobs/%d/log", here, j.ID),
		}
		for _, st := range j.Steps {
			sv := stepView{
				ID: st.ID, Number: st.Number, Name: st.Name, State: webState(st.Status, st.Conclusion, false),
				Duration: span(st.StartedAt, st.CompletedAt, now), Truncated: st.LogTruncated,
			}
			sv.Open = sv.State == "running" || sv.State == "failure" || sv.State == "timed_out"
			var mine []logChunk
			var size int64
			for _, c := range chunks {
				if c.StepID == st.ID {
					mine = append(mine, c)
					size += int64(len(c.Data))
				}
			}
			for len(mine) > 1 && size > webLogPageCap {
				size -= int64(len(mine[0].Data))
				sv.Omitted += int64(len(mine[0].Data))
				mine = mine[1:]
			}
			var a ansiHTML
			for _, c := range mine {
				a.write(c.Data)
				sv.Seq = c.Seq
			}
			a.end(st.Status == statusCompleted)
			sv.Log, sv.LogState = template.HTML(a.out.String()), a.st.encode()
			jv.Steps = append(jv.Steps, sv)
		}
		rv.Jobs = append(rv.Jobs, jv)
	}
	return s.render(w, r, http.StatusOK, "run", webLayout{
		Title:  fmt.Sprintf("%s #%d · %s", run.WorkflowName, run.RunIndex, repo.FullName()),
		Viewer: v.user, CSRF: v.csrf, Feed: tab + ".atom", Repo: repo, Page: rv,
	})
}

// ---- live updates ----

type liveState struct {
	ID       int64  `json:"id"`
	State    string `json:"state"`
	Label    string `json:"label"`
	Duration string `json:"duration"`
}

type liveJob struct {
	liveState
	Steps []liveState `json:"steps"`
}

type liveLog struct {
	StepID int64  `json:"step_id"`
	Seq    int64  `json:"seq"`
	HTML   string `json:"html"`
	State  string `json:"state"`
}

type liveAnswer struct {
	Run  liveState `json:"run"`
	Done bool      `json:"done"` // the run is completed: stop following it
	More bool      `json:"more"` // more log is waiting: ask again at once
	Jobs []liveJob `json:"jobs"`
	Logs []liveLog `json:"logs"`
}

// parseLiveCursor reads the live endpoint's ?after=: comma-separated
// STEP:SEQ:STATE entries, what the page has of each step's log.
func parseLiveCursor(v string) (map[int64]int64, map[int64]ansiState, error) {
	seqs, states := map[int64]int64{}, map[int64]ansiState{}
	if v == "" {
		return seqs, states, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > 1000 {
		return nil, nil, malformedf("after: too many steps")
	}
	for _, p := range parts {
		f := strings.Split(p, ":")
		if len(f) != 3 {
			return nil, nil, malformedf("after: want STEP:SEQ:STATE entries")
		}
		id, err1 := strconv.ParseInt(f[0], 10, 64)
		seq, err2 := strconv.ParseInt(f[1], 10, 64)
		st, err3 := decodeANSIState(f[2])
		if err1 != nil || err2 != nil || err3 != nil || id <= 0 || seq < 0 {
			return nil, nil, malformedf("after: bad entry %q", p)
		}
		seqs[id], states[id] = seq, st
	}
	return seqs, states, nil
}

// handleRunLive serves GET /{owner}/{repo}/actions/runs/{run_index}/live:
// the run's, jobs' and steps' states now, and the log the page does not
// have yet, rendered, each step's with the state to continue from.
func (s *server) handleRunLive(w http.ResponseWriter, r *http.Request) error {
	_, _, _, run, err := s.webRunFromPath(w, r)
	if err != nil {
		return err
	}
	seqs, states, err := parseLiveCursor(r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.store.now()
	jobs, err := s.store.runJobs(ctx, run.ID)
	if err != nil {
		return err
	}
	// Logs are read after the states: a step shown completed has all its
	// log in this answer or the next.
	chunks, more, err := s.store.webLogChunksAfter(ctx, run.ID, seqs, webLiveBudget)
	if err != nil {
		return err
	}
	state := func(id int64, st string, start, end time.Time) liveState {
		return liveState{ID: id, State: st, Label: webStateLabels[st], Duration: span(start, end, now)}
	}
	ans := liveAnswer{
		Run:  state(run.ID, webState(run.Status, run.Conclusion, false), run.StartedAt, run.CompletedAt),
		Done: run.Status == statusCompleted, More: more, Jobs: []liveJob{}, Logs: []liveLog{},
	}
	completed := map[int64]bool{}
	for _, j := range jobs {
		lj := liveJob{liveState: state(j.ID, webState(j.Status, j.Conclusion, j.CancelRequested), j.StartedAt, j.CompletedAt), Steps: []liveState{}}
		for _, st := range j.Steps {
			lj.Steps = append(lj.Steps, state(st.ID, webState(st.Status, st.Conclusion, false), st.StartedAt, st.CompletedAt))
			completed[st.ID] = st.Status == statusCompleted
		}
		ans.Jobs = append(ans.Jobs, lj)
	}
	for i := 0; i < len(chunks); {
		id := chunks[i].StepID
		a := ansiHTML{st: states[id]}
		var seq int64
		for ; i < len(chunks) && chunks[i].StepID == id; i++ {
			a.write(chunks[i].Data)
			seq = chunks[i].Seq
		}
		lastOfStep := i < len(chunks) || !more
		a.end(completed[id] && lastOfStep)
		ans.Logs = append(ans.Logs, liveLog{StepID: id, Seq: seq, HTML: a.out.String(), State: a.st.encode()})
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Cookie, Authorization")
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// handleWebJobLog serves a job's whole log as text, as the API does, for
// the page's "raw log" link.
func (s *server) handleWebJobLog(w http.ResponseWriter, r *http.Request) error {
	_, _, _, run, err := s.webRunFromPath(w, r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "job_id")
	if err != nil {
		return err
	}
	job, err := s.store.jobOf(r.Context(), run.RepoID, run.ID, id)
	if err != nil {
		return err
	}
	return s.serveJobLog(w, r, job.ID)
}

// ---- the buttons ----

// writableRunFromForm checks a button's post and loads its run, which the
// viewer must be allowed to write.
func (s *server) writableRunFromForm(w http.ResponseWriter, r *http.Request) (*webViewer, *Repo, *Run, error) {
	v, err := s.formViewer(w, r)
	if err != nil {
		return nil, nil, nil, err
	}
	repo, p, err := s.readablePathRepo(r, v.user)
	if err != nil {
		return nil, nil, nil, err
	}
	if p < permWrite {
		return nil, nil, nil, forbiddenf("%s permission on %s required", permWrite, repo.FullName())
	}
	run, err := s.webRun(r, repo)
	if err != nil {
		return nil, nil, nil, err
	}
	return v, repo, run, nil
}

// handleWebCancel serves the Cancel buttons: the whole run, or one job.
func (s *server) handleWebCancel(w http.ResponseWriter, r *http.Request) error {
	_, repo, run, err := s.writableRunFromForm(w, r)
	if err != nil {
		return err
	}
	var jobID int64
	if r.PathValue("job_id") != "" {
		if jobID, err = pathID(r, "job_id"); err != nil {
			return err
		}
		if _, err := s.store.jobOf(r.Context(), run.RepoID, run.ID, jobID); err != nil {
			return err
		}
	}
	if _, err := s.cancelJobs(r, run.ID, jobID); err != nil {
		return err
	}
	http.Redirect(w, r, runPage("", repo, run.RunIndex), http.StatusSeeOther)
	return nil
}

// handleWebRerun serves the Re-run button and goes to the new run.
func (s *server) handleWebRerun(w http.ResponseWriter, r *http.Request) error {
	v, repo, run, err := s.writableRunFromForm(w, r)
	if err != nil {
		return err
	}
	nr, err := s.rerun(r, run, v.user)
	if err != nil {
		return err
	}
	http.Redirect(w, r, runPage("", repo, nr.RunIndex), http.StatusSeeOther)
	return nil
}

// ---- badges ----

// handleBadge serves the status badge of a workflow's newest run on a
// branch (?branch=, else main).
func (s *server) handleBadge(w http.ResponseWriter, r *http.Request) error {
	v, err := s.viewer(w, r)
	if err != nil {
		return err
	}
	repo, _, err := s.readablePathRepo(r, v.user)
	if err != nil {
		return err
	}
	file := r.PathValue("workflow_file")
	if !isWorkflowFile(workflowDir + file) {
		return errNotFound
	}
	newest, err := s.store.latestRunOf(r.Context(), repo.ID, workflowDir+file, "")
	if err != nil {
		return err // a workflow that never ran is not found
	}
	branch := r.URL.Query().Get("branch")
	if branch == "" {
		branch = "main"
	}
	status := "no status"
	color := "#6e7781"
	run, err := s.store.latestRunOf(r.Context(), repo.ID, workflowDir+file, branch)
	switch {
	case errors.Is(err, errNotFound):
	case err != nil:
		return err
	default:
		status, color = badgeStatus(webState(run.Status, run.Conclusion, false))
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml; charset=utf-8")
	h.Set("Cache-Control", "max-age=60")
	if repo.Private {
		h.Set("Cache-Control", "private, max-age=60")
	}
	h.Set("Vary", "Cookie, Authorization")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, err = w.Write(badgeSVG(newest.WorkflowName, status, color))
	return err
}

func badgeStatus(state string) (text, color string) {
	switch state {
	case "success":
		return "passing", "#1f883d"
	case "failure":
		return "failing", "#cf222e"
	case "timed_out":
		return "timed out", "#cf222e"
	case "running":
		return "in progress", "#9a6700"
	case "queued":
		return "queued", "#9a6700"
	case "cancelled":
		return "cancelled", "#6e7781"
	case "skipped":
		return "skipped", "#6e7781"
	}
	return "completed", "#6e7781"
}

// textWidth guesses how wide s is in 11px Verdana, which badges are drawn
// in; a guess is enough to size the boxes.
func textWidth(s string) float64 {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("ijlI.,:;'|!", r):
			w += 3.5
		case strings.ContainsRune("ftr ()[]{}-/\\", r):
			w += 4.8
		case strings.ContainsRune("mwMW@%", r):
			w += 10.5
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '#' || r == '_':
			w += 7.5
		case r < 0x80:
			w += 6.6
		case r >= 0x1100:
			w += 11
		default:
			w += 7.5
		}
	}
	return w
}

// badgeSVG draws a two-part badge: label on grey, status on color.
func badgeSVG(label, status, color string) []byte {
	label = xmlSafe(label)
	if utf8.RuneCountInString(label) > 40 {
		label = string([]rune(label)[:39]) + "…"
	}
	lw := int(textWidth(label)+0.5) + 12
	sw := int(textWidth(status)+0.5) + 12
	total := lw + sw
	esc := template.HTMLEscapeString
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`, total, esc(label), esc(status))
	fmt.Fprintf(&b, `<title>%s: %s</title>`, esc(label), esc(status))
	fmt.Fprintf(&b, `<clipPath id="c"><rect width="%d" height="20" rx="3"/></clipPath>`, total)
	fmt.Fprintf(&b, `<g clip-path="url(#c)"><rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="%s"/></g>`, lw, lw, sw, color)
	b.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">`)
	for _, t := range []struct {
		x    float64
		text string
	}{{float64(lw) / 2, label}, {float64(lw) + float64(sw)/2, status}} {
		fmt.Fprintf(&b, `<text x="%.1f" y="15" fill="#010101" fill-opacity=".3">%s</text><text x="%.1f" y="14">%s</text>`, t.x, esc(t.text), t.x, esc(t.text))
	}
	b.WriteString("</g></svg>\n")
	return b.Bytes()
}

// ---- ANSI escapes to HTML ----

// Log text is escaped; SGR colour and style sequences become spans with
// classes (or, for 256-colour and RGB, a style of computed hex colours);
// every other escape sequence and control character is dropped. GitHub's
// "##[error]" and friends at the start of a line style the line.

const (
	ansiBold = 1 << iota
	ansiDim
	ansiItalic
	ansiUnderline
)

// Line kinds, from a "##[kind]" prefix.
const (
	lineNone = iota
	lineError
	lineWarning
	lineNotice
	lineDebug
	lineGroup
	lineCommand
	lineHidden // ##[endgroup]: the line is not shown
)

var lineMarkers = []struct {
	marker string
	kind   int
	class  string
	prefix string
}{
	{"##[error]", lineError, "l-error", "Error: "},
	{"##[warning]", lineWarning, "l-warning", "Warning: "},
	{"##[notice]", lineNotice, "l-notice", "Notice: "},
	{"##[debug]", lineDebug, "l-debug", ""},
	{"##[group]", lineGroup, "l-group", ""},
	{"##[command]", lineCommand, "l-command", ""},
	{"##[endgroup]", lineHidden, "", ""},
}

// ansiPendingMax bounds an unfinished escape sequence carried to the next
// chunk; a longer one is garbage and its ESC is dropped.
const ansiPendingMax = 512

// ansiColor is no colour (kind 0), a palette index (1) or RGB (2).
type ansiColor struct {
	kind uint8
	v    uint32
}

// ansiState is what rendering carries from one chunk of a step's log to
// the next: the style in force, the line's kind, whether a line is under
// way, and the bytes of an escape sequence, UTF-8 character or marker that
// the chunk cut.
type ansiState struct {
	attrs   uint8
	fg, bg  ansiColor
	line    uint8
	mid     bool
	pending []byte
}

// encode packs the state for the page to send back: "" for a fresh line
// in the default style.
func (st ansiState) encode() string {
	if st.attrs == 0 && st.fg.kind == 0 && st.bg.kind == 0 && st.line == 0 && !st.mid && len(st.pending) == 0 {
		return ""
	}
	b := []byte{st.attrs, st.line}
	if st.mid {
		b[1] |= 0x80
	}
	for _, c := range []ansiColor{st.fg, st.bg} {
		b = append(b, c.kind)
		switch c.kind {
		case 1:
			b = append(b, byte(c.v))
		case 2:
			b = append(b, byte(c.v>>16), byte(c.v>>8), byte(c.v))
		}
	}
	b = append(b, st.pending...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeANSIState(s string) (ansiState, error) {
	var st ansiState
	if s == "" {
		return st, nil
	}
	bad := errors.New("bad log state")
	if len(s) > 2*ansiPendingMax {
		return st, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 4 {
		return st, bad
	}
	st.attrs, st.line, st.mid = b[0]&0x0f, b[1]&0x7f, b[1]&0x80 != 0
	if st.line > lineHidden {
		return st, bad
	}
	b = b[2:]
	for _, c := range []*ansiColor{&st.fg, &st.bg} {
		if len(b) == 0 {
			return st, bad
		}
		c.kind, b = b[0], b[1:]
		n := map[uint8]int{0: 0, 1: 1, 2: 3}
		k, ok := n[c.kind]
		if !ok || len(b) < k {
			return st, bad
		}
		for _, x := range b[:k] {
			c.v = c.v<<8 | uint32(x)
		}
		b = b[k:]
	}
	if len(b) > ansiPendingMax {
		return st, bad
	}
	st.pending = slices.Clone(b)
	return st, nil
}

// ansiHTML renders log bytes as HTML. Each run of write calls and end
// makes balanced markup; st carries on to the next.
type ansiHTML struct {
	st       ansiState
	out      strings.Builder
	sgrOpen  bool
	lineOpen bool
}

func (a *ansiHTML) write(p []byte) {
	data := p
	if len(a.st.pending) > 0 {
		data = append(a.st.pending, p...)
		a.st.pending = nil
	}
	for i := 0; i < len(data); {
		if !a.st.mid {
			n, partial := a.marker(data[i:])
			if partial {
				a.st.pending = slices.Clone(data[i:])
				return
			}
			if n > 0 {
				i += n
				continue
			}
		}
		c := data[i]
		switch {
		case c == 0x1b:
			n, ok := a.escape(data[i:])
			if !ok {
				if len(data)-i <= ansiPendingMax {
					a.st.pending = slices.Clone(data[i:])
					return
				}
				n = 1 // unterminated and too long: drop the ESC, show the rest
			}
			i += n
		case c == '\n':
			a.newline()
			i++
		case c == '\r':
			if i+1 == len(data) {
				a.st.pending = []byte{'\r'}
				return
			}
			if data[i+1] != '\n' {
				a.newline() // a lone CR (progress output) starts a new line
			}
			i++
		case c == '\t':
			a.text("\t")
			i++
		case c < 0x20 || c == 0x7f:
			i++
		case c < 0x80:
			j := i + 1
			for j < len(data) && data[j] >= 0x20 && data[j] < 0x7f {
				j++
			}
			a.text(string(data[i:j]))
			i = j
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				if !utf8.FullRune(data[i:]) {
					a.st.pending = slices.Clone(data[i:])
					return
				}
				a.text("\uFFFD")
				i++
				continue
			}
			a.text(string(data[i : i+size]))
			i += size
		}
	}
}

// end closes the open spans. When final (the log is complete), what was
// held back is shown as it is, never as escape garbage.
func (a *ansiHTML) end(final bool) {
	if final && len(a.st.pending) > 0 {
		p := a.st.pending
		a.st.pending = nil
		switch {
		case p[0] == 0x1b, p[0] == '\r':
		case p[0] == '#':
			a.st.mid = true
			a.text(string(p))
		default:
			a.text(strings.ToValidUTF8(string(p), "\uFFFD"))
		}
	}
	a.closeSGR()
	a.closeLine()
}

// marker handles a "##[kind]" at the start of a line: n bytes consumed,
// or partial when data may be the start of one.
func (a *ansiHTML) marker(data []byte) (n int, partial bool) {
	if len(data) == 0 || data[0] != '#' {
		return 0, false
	}
	for _, m := range lineMarkers {
		if bytes.HasPrefix(data, []byte(m.marker)) {
			a.st.line, a.st.mid = uint8(m.kind), true
			if m.prefix != "" {
				a.text("")
				a.out.WriteString(`<span class="l-tag">` + m.prefix + `</span>`)
			}
			return len(m.marker), false
		}
		if len(data) < len(m.marker) && strings.HasPrefix(m.marker, string(data)) {
			return 0, true
		}
	}
	return 0, false
}

// escape consumes one escape sequence at data[0] (ESC); ok is false when
// data ends before it does.
func (a *ansiHTML) escape(data []byte) (n int, ok bool) {
	if len(data) < 2 {
		return 0, false
	}
	switch c := data[1]; {
	case c == '[': // CSI: parameters, intermediates, a final byte
		j := 2
		for j < len(data) && data[j] >= 0x30 && data[j] <= 0x3f {
			j++
		}
		k := j
		for k < len(data) && data[k] >= 0x20 && data[k] <= 0x2f {
			k++
		}
		if k == len(data) {
			return 0, false
		}
		if data[k] < 0x40 || data[k] > 0x7e {
			return k, true // malformed: drop what was read
		}
		if data[k] == 'm' && k == j {
			a.sgr(string(data[2:j]))
		}
		return k + 1, true
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_': // strings ended by BEL or ESC \
		for j := 2; j < len(data); j++ {
			if data[j] == 0x07 {
				return j + 1, true
			}
			if data[j] == 0x1b {
				if j+1 == len(data) {
					return 0, false
				}
				if data[j+1] == '\\' {
					return j + 2, true
				}
			}
		}
		return 0, false
	case c >= 0x20 && c <= 0x2f: // ESC ( B and the like
		if len(data) < 3 {
			return 0, false
		}
		return 3, true
	}
	return 2, true
}

// sgr applies Select Graphic Rendition parameters.
func (a *ansiHTML) sgr(params string) {
	var ps []int
	for _, f := range strings.FieldsFunc(params, func(r rune) bool { return r == ';' || r == ':' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n > 0xffff {
			n = -1
		}
		ps = append(ps, n)
	}
	if len(ps) == 0 {
		ps = []int{0}
	}
	st := a.st
	for i := 0; i < len(ps); i++ {
		p := ps[i]
		switch {
		case p == 0:
			st.attrs, st.fg, st.bg = 0, ansiColor{}, ansiColor{}
		case p == 1:
			st.attrs |= ansiBold
		case p == 2:
			st.attrs |= ansiDim
		case p == 3:
			st.attrs |= ansiItalic
		case p == 4:
			st.attrs |= ansiUnderline
		case p == 22:
			st.attrs &^= ansiBold | ansiDim
		case p == 23:
			st.attrs &^= ansiItalic
		case p == 24:
			st.attrs &^= ansiUnderline
		case p >= 30 && p <= 37:
			st.fg = ansiColor{1, uint32(p - 30)}
		case p >= 90 && p <= 97:
			st.fg = ansiColor{1, uint32(p - 90 + 8)}
		case p == 39:
			st.fg = ansiColor{}
		case p >= 40 && p <= 47:
			st.bg = ansiColor{1, uint32(p - 40)}
		case p >= 100 && p <= 107:
			st.bg = ansiColor{1, uint32(p - 100 + 8)}
		case p == 49:
			st.bg = ansiColor{}
		case p == 38 || p == 48:
			var c ansiColor
			switch {
			case i+2 < len(ps) && ps[i+1] == 5 && ps[i+2] >= 0 && ps[i+2] <= 255:
				c, i = ansiColor{1, uint32(ps[i+2])}, i+2
			case i+4 < len(ps) && ps[i+1] == 2 && inByte(ps[i+2]) && inByte(ps[i+3]) && inByte(ps[i+4]):
				c, i = ansiColor{2, uint32(ps[i+2])<<16 | uint32(ps[i+3])<<8 | uint32(ps[i+4])}, i+4
			default:
				i = len(ps) // malformed: ignore the rest
				continue
			}
			if p == 38 {
				st.fg = c
			} else {
				st.bg = c
			}
		}
	}
	if st.attrs != a.st.attrs || st.fg != a.st.fg || st.bg != a.st.bg {
		a.closeSGR()
		a.st.attrs, a.st.fg, a.st.bg = st.attrs, st.fg, st.bg
	}
}

func inByte(n int) bool { return n >= 0 && n <= 255 }

// ansiRGB is a palette colour beyond the 16 the stylesheet names.
func ansiRGB(c ansiColor) string {
	v := c.v
	if c.kind == 1 {
		switch n := int(v); {
		case n >= 232:
			g := uint32(8 + 10*(n-232))
			v = g<<16 | g<<8 | g
		default:
			n -= 16
			level := func(x int) uint32 {
				if x == 0 {
					return 0
				}
				return uint32(55 + 40*x)
			}
			v = level(n/36)<<16 | level(n/6%6)<<8 | level(n%6)
		}
	}
	return fmt.Sprintf("#%06x", v)
}

func (a *ansiHTML) text(s string) {
	if a.st.line == lineHidden {
		return
	}
	a.st.mid = true
	if a.st.line != lineNone && !a.lineOpen {
		a.out.WriteString(`<span class="` + lineMarkers[a.st.line-1].class + `">`)
		a.lineOpen = true
	}
	if s == "" {
		return
	}
	if !a.sgrOpen && (a.st.attrs != 0 || a.st.fg.kind != 0 || a.st.bg.kind != 0) {
		var classes, style []string
		for _, f := range []struct {
			bit   uint8
			class string
		}{{ansiBold, "a-b"}, {ansiDim, "a-d"}, {ansiItalic, "a-i"}, {ansiUnderline, "a-u"}} {
			if a.st.attrs&f.bit != 0 {
				classes = append(classes, f.class)
			}
		}
		for _, c := range []struct {
			c     ansiColor
			class string
			prop  string
		}{{a.st.fg, "a-f", "color"}, {a.st.bg, "a-g", "background-color"}} {
			switch {
			case c.c.kind == 1 && c.c.v < 16:
				classes = append(classes, c.class+strconv.Itoa(int(c.c.v)))
			case c.c.kind != 0:
				style = append(style, c.prop+":"+ansiRGB(c.c))
			}
		}
		a.out.WriteString(`<span`)
		if len(classes) > 0 {
			a.out.WriteString(` class="` + strings.Join(classes, " ") + `"`)
		}
		if len(style) > 0 {
			a.out.WriteString(` style="` + strings.Join(style, ";") + `"`)
		}
		a.out.WriteString(`>`)
		a.sgrOpen = true
	}
	template.HTMLEscape(&a.out, []byte(s))
}

func (a *ansiHTML) newline() {
	hidden := a.st.line == lineHidden
	a.closeSGR()
	a.closeLine()
	a.st.line, a.st.mid = lineNone, false
	if !hidden {
		a.out.WriteByte('\n')
	}
}

func (a *ansiHTML) closeSGR() {
	if a.sgrOpen {
		a.out.WriteString("</span>")
		a.sgrOpen = false
	}
}

func (a *ansiHTML) closeLine() {
	a.closeSGR()
	if a.lineOpen {
		a.out.WriteString("</span>")
		a.lineOpen = false
	}
}
