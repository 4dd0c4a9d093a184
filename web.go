// The pages: home, sign-in, the Actions tab, the run page with live logs,
// the Cancel and Re-run buttons, and badges.

package main

// The web pages: the Actions tab, run pages with live logs, the cancel and
// re-run buttons, status badges, and signing in with a personal access
// token. Pages are html/template files embedded in the binary; the only
// script is the run page's small live-update loop, inlined with a nonce.

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/logtext"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
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
	// webFilterCap is how far the tab counts runs matching filters that
	// have no kept count: "1000+ workflow runs".
	webFilterCap = 1000
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

// ---- the path's run ----

// webRunFromPath resolves the viewer, the path's repository (with the
// viewer's permission on it) and its run: what every run page starts with.
func (s *server) webRunFromPath(w http.ResponseWriter, r *http.Request) (*webViewer, *store.Repo, store.Perm, *store.Run, error) {
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
func (s *server) webRun(r *http.Request, repo *store.Repo) (*store.Run, error) {
	idx, err := pathID(r, "run_index")
	if err != nil {
		return nil, err
	}
	return s.store.RunByIndex(r.Context(), repo.ID, idx)
}

// ---- rendering ----

// webLayout is what every page's frame shows.
type webLayout struct {
	Title  string
	Viewer *store.User
	CSRF   string
	Nonce  string
	Feed   string      // an Atom feed to announce in <head>
	Repo   *store.Repo // the repository the page is about, for the crumbs
	Next   string      // where signing in returns to
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
	repos, err := s.store.WebVisibleRepos(r.Context(), v.user)
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
	fail := func(code int, msg string) error {
		return s.render(w, r, code, "login", webLayout{Title: "Sign in", Next: next, Page: loginPage{Username: name, Error: msg}})
	}
	wait, done := s.web.limiter.acquire(s.clientKey(r))
	if done == nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		mins := int((wait + time.Minute - 1) / time.Minute)
		return fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d minute(s).", mins))
	}
	u, tok, err := s.checkLogin(r, name, secret)
	done(err == nil || !errors.Is(err, errBadLogin)) // only wrong credentials count
	if errors.Is(err, errBadLogin) {
		return fail(http.StatusForbidden, "Wrong user name or token, or the token is expired, revoked or lacks "+store.ScopeRead+".")
	}
	if err != nil {
		return err
	}
	id, _, err := s.store.WebCreateSession(r.Context(), u.ID, tok.ID, webSessionTTL)
	if err != nil {
		return err
	}
	s.setSessionCookie(w, r, id, int(webSessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// handleLogout serves POST /logout.
func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.formViewer(w, r); err != nil {
		return err
	}
	c, _ := r.Cookie(webSessionCookie)
	if err := s.store.WebDeleteSession(r.Context(), c.Value); err != nil {
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

// webAnnotationLabels names each annotation level.
var webAnnotationLabels = map[string]string{"error": "Error", "warning": "Warning", "notice": "Notice"}

// webState is the one word a status and conclusion show as.
func webState(status, conclusion string, cancelRequested bool) string {
	switch {
	case status == protocol.StatusCompleted:
		if _, ok := webStateLabels[conclusion]; ok && conclusion != "running" && conclusion != "queued" {
			return conclusion
		}
		return "neutral"
	case cancelRequested:
		return "cancelling"
	case status == protocol.StatusRunning:
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
	Repo     *store.Repo
	FeedURL  string
	Runs     []runRow
	Total    int
	Capped   bool // Total is the cap: there are more
	Page     int
	Pages    int
	PrevURL  string
	NextURL  string
	Statuses []webOption
	Branch   string
	Branches []string
	Filtered bool
	ClearURL string
	// The sidebar: every workflow with runs, each a link that keeps the
	// branch and status filters; WorkflowParam is the selected one's, for
	// the filter form.
	AllURL        string
	AllSelected   bool
	Sidebar       []sideWorkflow
	WorkflowParam string
	Workflow      *workflowView // the workflow's view, when the tab is filtered to one
	SignInURL     string        // anonymous visitors: signing in shows Cancel and Re-run
	// WorkflowDir is the directory the listed workflows come from:
	// .shithub/workflows/, or .github/workflows/ when only that one has
	// any; "" before any workflow is known.
	WorkflowDir string
}

// sideWorkflow is a workflow in the tab's sidebar.
type sideWorkflow struct {
	Name, File, URL string
	State           string // its newest run's
	Disabled        bool
	Selected        bool
}

// workflowView is the head of the tab filtered to one workflow: its badge,
// the chart of its last runs' durations and its flaky jobs.
type workflowView struct {
	Name, File string
	BadgeURL   string
	Disabled   bool
	Chart      template.HTML
	Charted    int    // runs in the chart
	Longest    string // the longest duration charted: the chart's scale
	Flaky      []flakyView
	FlakyDays  int
}

type flakyView struct {
	Name   string
	Events int64
}

// webChartRuns is how many runs a workflow's duration chart shows; webFlakyJobs
// is how many flaky jobs its view lists.
const (
	webChartRuns = 50
	webFlakyJobs = 20
)

// handleActionsTab serves GET /{owner}/{repo}/actions: the runs, filtered
// by ?workflow= (the sidebar), ?branch= and ?status=, paged by ?page=; with
// a workflow, its view (workflowView) atop them.
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
	f := store.RunFilter{WorkflowFile: wf, Branch: branch}
	switch {
	case status == "":
	case slices.Contains([]string{protocol.StatusQueued, protocol.StatusRunning, protocol.StatusCompleted}, status):
		f.Status = status
	case slices.Contains(webStatusFilters, status):
		f.Conclusion = status
	default:
		return apperr.Malformedf("unknown status %q", status)
	}
	if !f.Counted() {
		// Filters beyond the workflow have no kept count: count up to a
		// cap ("1000+"), so that the tab costs the same at any history.
		f.Cap = webFilterCap
	}
	runs, total, err := s.store.ListRuns(r.Context(), repo.ID, f, page, webRunsPerPage)
	if err != nil {
		return err
	}
	workflows, err := s.store.WebWorkflows(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	branches, err := s.store.WebBranches(r.Context(), repo.ID, 50)
	if err != nil {
		return err
	}
	tab := actionsTabURL("", repo)
	now := s.store.Now()
	p := actionsPage{
		Repo: repo, FeedURL: tab + ".atom", Total: total, Capped: f.Cap > 0 && total >= f.Cap, Page: page,
		Pages: max(1, (total+webRunsPerPage-1)/webRunsPerPage), Branch: branch, Branches: branches,
		Filtered: wf != "" || branch != "" || status != "", ClearURL: tab,
		AllURL: sidebarURL(tab, "", branch, status), AllSelected: wf == "", WorkflowParam: wf,
	}
	for _, w := range workflows {
		base := git.WorkflowName(w.File)
		if dir := strings.TrimSuffix(w.File, base); p.WorkflowDir != git.WorkflowDir && slices.Contains(git.WorkflowDirs, dir) {
			p.WorkflowDir = dir // .shithub's wins, as it does for the runs
		}
		sw := sideWorkflow{Name: w.Name, File: base, URL: sidebarURL(tab, base, branch, status),
			State: webState(w.Status, w.Conclusion, false), Disabled: w.Disabled, Selected: wf == base || wf == w.File}
		p.Sidebar = append(p.Sidebar, sw)
		if sw.Selected {
			if p.Workflow, err = s.workflowView(r, repo, w, tab, now); err != nil {
				return err
			}
		}
	}
	if v.user == nil && len(runs) > 0 {
		p.SignInURL = "/login?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	p.Statuses = append(p.Statuses, webOption{Value: "", Label: "Any status", Selected: status == ""})
	for _, st := range webStatusFilters {
		label := webStateLabels[st]
		if st == protocol.StatusCompleted {
			label = "Completed"
		}
		p.Statuses = append(p.Statuses, webOption{Value: st, Label: label, Selected: st == status})
	}
	for _, run := range runs {
		p.Runs = append(p.Runs, runRow{
			URL: fmt.Sprintf("%s/runs/%d", tab, run.RunIndex), State: webState(run.Status, run.Conclusion, false),
			Name: run.WorkflowName, Index: run.RunIndex, Event: run.Event, Branch: workflow.RefName(run.HeadRef),
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

// sidebarURL is the tab filtered to workflow file (a base name; "" for
// all), keeping the branch and status filters, on its first page.
func sidebarURL(tab, file, branch, status string) string {
	v := url.Values{}
	if file != "" {
		v.Set("workflow", file)
	}
	if branch != "" {
		v.Set("branch", branch)
	}
	if status != "" {
		v.Set("status", status)
	}
	if len(v) == 0 {
		return tab
	}
	return tab + "?" + v.Encode()
}

// workflowView reads what the tab shows atop one workflow's runs: its last
// runs (through the run-number index) and its kept flaky counts.
func (s *server) workflowView(r *http.Request, repo *store.Repo, w store.WebWorkflow, tab string, now time.Time) (*workflowView, error) {
	base := git.WorkflowName(w.File)
	wv := &workflowView{Name: w.Name, File: w.File, Disabled: w.Disabled, FlakyDays: store.FlakyWindowDays,
		BadgeURL: tab + "/workflows/" + url.PathEscape(base) + "/badge.svg"}
	if repo.DefaultBranch != "" && repo.DefaultBranch != "main" {
		wv.BadgeURL += "?branch=" + url.QueryEscape(repo.DefaultBranch)
	}
	points, err := s.store.WorkflowHistory(r.Context(), repo.ID, w.ID, webChartRuns)
	if err != nil {
		return nil, err
	}
	wv.Chart, wv.Longest = durationChart(points, tab, now)
	wv.Charted = len(points)
	flaky, err := s.store.FlakyJobs(r.Context(), repo.ID, w.ID, webFlakyJobs)
	if err != nil {
		return nil, err
	}
	for _, f := range flaky {
		wv.Flaky = append(wv.Flaky, flakyView{Name: f.Name, Events: f.Events})
	}
	return wv, nil
}

// durationChart draws a workflow's last runs (oldest first) as an inline
// SVG of bars, one per run, as tall as the run took against the longest,
// colored by its state and linked to its run; the newest is at the right,
// in the last of webChartRuns slots. It returns the SVG and the longest
// duration, the chart's scale. A run still going is drawn as far as it is.
func durationChart(points []store.RunPoint, tab string, now time.Time) (template.HTML, string) {
	if len(points) == 0 {
		return "", ""
	}
	const slot, barW, height = 10, 8, 60
	durs := make([]time.Duration, len(points))
	var longest time.Duration
	for i, p := range points {
		if !p.StartedAt.IsZero() {
			end := p.EndedAt
			if end.IsZero() {
				end = now
			}
			durs[i] = max(0, end.Sub(p.StartedAt))
		}
		longest = max(longest, durs[i])
	}
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart-svg" viewBox="0 0 %d %d" preserveAspectRatio="none" role="img" aria-label="Durations of the last %d runs, oldest first">`,
		webChartRuns*slot, height, len(points))
	first := webChartRuns - len(points)
	for i, p := range points {
		h := 2.0
		if longest > 0 {
			h = max(h, float64(durs[i])/float64(longest)*(height-2))
		}
		state := webState(p.Status, p.Conclusion, false)
		took := "not started"
		if !p.StartedAt.IsZero() {
			took = webDuration(durs[i])
		}
		fmt.Fprintf(&b, `<a href="%s/runs/%d"><rect class="bar b-%s" x="%d" y="%.1f" width="%d" height="%.1f"><title>#%d · %s · %s · %s</title></rect></a>`,
			esc(tab), p.Index, state, (first+i)*slot+1, height-h, barW, h, p.Index, esc(webStateLabels[state]), took,
			esc(workflow.RefName(p.Branch)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), webDuration(longest)
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
	ID          int64
	Name        string // a matrix leg's is GitHub's leg name, `test (1.22, ubuntu-latest)`
	State       string
	Duration    string
	Needs       []string
	RunsOn      []string
	CanCancel   bool
	CancelURL   string
	LogURL      string
	Environment *envView
	Annotations []annotationView
	Summaries   []summaryView
	Steps       []stepView
}

// envView is a job's environment: its name, and its url as a link only
// when it is an absolute http or https URL.
type envView struct {
	Name string
	URL  string
}

type annotationView struct {
	Level   string // error, warning, notice
	Label   string // Error, Warning, Notice
	Title   string
	Message string
	Where   string // file:line:col, as far as they are known
	Step    string // the step's name, and its log's anchor
	StepURL string
}

// summaryView is a step's $GITHUB_STEP_SUMMARY rendered by logtext.RenderMarkdown,
// which writes only its own safe tags.
type summaryView struct {
	Step string
	HTML template.HTML
}

type runView struct {
	Repo      *store.Repo
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
	Artifacts []artifactView
}

// orderJobs sorts jobs so that each comes after the jobs it needs (every
// leg of a matrix job), file order among those free to go (Kahn's
// algorithm, stable).
func orderJobs(jobs []*store.Job) []*store.Job {
	waiting := map[string]int{} // legs not yet placed, by the job's id in the workflow
	for _, j := range jobs {
		for _, k := range jobWaitKeys(j) {
			waiting[k]++
		}
	}
	out := make([]*store.Job, 0, len(jobs))
	left := slices.Clone(jobs)
	for len(left) > 0 {
		i := slices.IndexFunc(left, func(j *store.Job) bool {
			return !slices.ContainsFunc(j.Needs, func(n string) bool { return waiting[n] > 0 })
		})
		if i < 0 {
			i = 0 // a cycle: keep file order
		}
		for _, k := range jobWaitKeys(left[i]) {
			waiting[k]--
		}
		out = append(out, left[i])
		left = slices.Delete(left, i, i+1)
	}
	return out
}

// jobBaseKey is the job's id in the workflow, which needs name.
func jobBaseKey(j *store.Job) string {
	if j.BaseKey != "" {
		return j.BaseKey
	}
	return j.JobKey
}

// jobWaitKeys are the ids a job stands for in needs: its own, and for a
// job of a called workflow ("build#1/test") every calling job above it
// ("build"), which a job needing the call waits for.
func jobWaitKeys(j *store.Job) []string {
	key := jobBaseKey(j)
	keys := []string{key}
	for i := range len(key) {
		if key[i] == '/' {
			caller := key[:i] // the calling row's key: its leg ("#n") is no id
			if h := strings.LastIndexByte(caller, '#'); h > strings.LastIndexByte(caller, '/') {
				caller = caller[:h]
			}
			keys = append(keys, caller)
		}
	}
	return keys
}

// newEnvView is what the page shows of a job's environment.
func newEnvView(e *workflow.Environment) *envView {
	if e == nil || e.Name == "" && e.URL == "" {
		return nil
	}
	v := &envView{Name: e.Name}
	if u, err := url.Parse(e.URL); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		v.URL = u.String()
	}
	return v
}

// annotationWhere is where an annotation points: file:line:col, or
// file:line-endline when it spans lines, as far as they are known.
func annotationWhere(a protocol.Annotation) string {
	if a.Line <= 0 {
		return a.File
	}
	where := strconv.Itoa(a.Line)
	if a.EndLine > a.Line {
		where += "-" + strconv.Itoa(a.EndLine)
	} else if a.Col > 0 {
		where += ":" + strconv.Itoa(a.Col)
	}
	if a.File == "" {
		return "line " + where
	}
	return a.File + ":" + where
}

func (s *server) handleRunView(w http.ResponseWriter, r *http.Request) error {
	v, repo, p, run, err := s.webRunFromPath(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.store.Now()
	tab := actionsTabURL("", repo)
	here := fmt.Sprintf("%s/runs/%d", tab, run.RunIndex)
	rv := runView{
		Repo: repo, TabURL: tab, URL: here, State: webState(run.Status, run.Conclusion, false), Name: run.WorkflowName,
		File: git.WorkflowName(run.WorkflowFile), Index: run.RunIndex, Attempt: run.RunAttempt,
		Event: run.Event, Branch: workflow.RefName(run.HeadRef), SHA: run.HeadSHA, ShortSHA: shortSHA(run.HeadSHA), Actor: run.Actor,
		Created: newWebTime(run.CreatedAt, now), Duration: span(run.StartedAt, run.CompletedAt, now),
		Open: run.Status != protocol.StatusCompleted, LiveURL: here + "/live",
		CanWrite: v.csrf != "" && v.mayWrite() && p >= store.PermWrite, CancelURL: here + "/cancel", RerunURL: here + "/rerun",
	}
	if run.ParentRunID != 0 {
		if pr, err := s.store.RunByID(ctx, run.ParentRunID); err == nil {
			rv.Parent = &runLink{Index: pr.RunIndex, URL: fmt.Sprintf("%s/runs/%d", tab, pr.RunIndex), State: webState(pr.Status, pr.Conclusion, false)}
		} else if !errors.Is(err, apperr.ErrNotFound) {
			return err
		}
	}
	children, err := s.store.ChildRuns(ctx, run.ID)
	if err != nil {
		return err
	}
	for _, c := range children {
		rv.Children = append(rv.Children, runLink{Index: c.RunIndex, URL: fmt.Sprintf("%s/runs/%d", tab, c.RunIndex), State: webState(c.Status, c.Conclusion, false)})
	}
	if rv.Artifacts, err = s.runArtifactViews(ctx, run.ID, here); err != nil {
		return err
	}
	jobs, err := s.store.RunJobs(ctx, run.ID)
	if err != nil {
		return err
	}
	for _, j := range orderJobs(jobs) {
		jv := jobView{
			ID: j.ID, Name: j.Name, State: webState(j.Status, j.Conclusion, j.CancelRequested),
			Duration: span(j.StartedAt, j.CompletedAt, now), Needs: j.Needs, RunsOn: j.RunsOn,
			CanCancel: j.Status != protocol.StatusCompleted && !j.CancelRequested,
			CancelURL: fmt.Sprintf("%s/jobs/%d/cancel", here, j.ID), LogURL: fmt.Sprintf("%s/jobs/%d/log", here, j.ID),
		}
		jv.Environment = newEnvView(j.Environment)
		anns, err := s.store.JobAnnotations(ctx, j.ID)
		if err != nil {
			return err
		}
		steps := map[int64]*store.Step{}
		for _, st := range j.Steps {
			steps[st.ID] = st
		}
		for _, a := range anns {
			av := annotationView{Level: a.Level, Label: webAnnotationLabels[a.Level], Title: a.Title, Message: a.Message, Where: annotationWhere(a)}
			if st := steps[a.StepID]; st != nil {
				av.Step, av.StepURL = st.Name, fmt.Sprintf("#step-%d", st.ID)
			}
			jv.Annotations = append(jv.Annotations, av)
		}
		for _, st := range j.Steps {
			if strings.TrimSpace(st.Summary) == "" {
				continue
			}
			h, err := logtext.RenderMarkdown([]byte(st.Summary))
			if err != nil { // over the cap, which the API refuses: say so rather than fail the page
				h = "<p>" + template.HTMLEscapeString(err.Error()) + "</p>"
			}
			jv.Summaries = append(jv.Summaries, summaryView{Step: st.Name, HTML: template.HTML(h)})
		}
		for _, st := range j.Steps {
			sv := stepView{
				ID: st.ID, Number: st.Number, Name: st.Name, State: webState(st.Status, st.Conclusion, false),
				Duration: span(st.StartedAt, st.CompletedAt, now), Truncated: st.LogTruncated,
			}
			sv.Open = sv.State == "running" || sv.State == "failure" || sv.State == "timed_out"
			// Only the tail the page shows is read; the raw log has the rest.
			mine, size, err := s.store.LogTail(ctx, st.ID, webLogPageCap)
			if err != nil {
				return err
			}
			sv.Omitted = max(0, st.LogSize-size)
			var a logtext.HTML
			for _, c := range mine {
				a.Write(c.Data)
				sv.Seq = c.Seq
			}
			a.End(st.Status == protocol.StatusCompleted)
			sv.Log, sv.LogState = template.HTML(a.Out.String()), a.State.Encode()
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
func parseLiveCursor(v string) (map[int64]int64, map[int64]logtext.State, error) {
	seqs, states := map[int64]int64{}, map[int64]logtext.State{}
	if v == "" {
		return seqs, states, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > 1000 {
		return nil, nil, apperr.Malformedf("after: too many steps")
	}
	for _, p := range parts {
		f := strings.Split(p, ":")
		if len(f) != 3 {
			return nil, nil, apperr.Malformedf("after: want STEP:SEQ:STATE entries")
		}
		id, err1 := strconv.ParseInt(f[0], 10, 64)
		seq, err2 := strconv.ParseInt(f[1], 10, 64)
		st, err3 := logtext.DecodeState(f[2])
		if err1 != nil || err2 != nil || err3 != nil || id <= 0 || seq < 0 {
			return nil, nil, apperr.Malformedf("after: bad entry %q", p)
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
	now := s.store.Now()
	jobs, err := s.store.RunJobs(ctx, run.ID)
	if err != nil {
		return err
	}
	// Logs are read after the states: a step shown completed has all its
	// log in this answer or the next.
	chunks, more, err := s.store.WebLogChunksAfter(ctx, run.ID, seqs, webLiveBudget)
	if err != nil {
		return err
	}
	state := func(id int64, st string, start, end time.Time) liveState {
		return liveState{ID: id, State: st, Label: webStateLabels[st], Duration: span(start, end, now)}
	}
	ans := liveAnswer{
		Run:  state(run.ID, webState(run.Status, run.Conclusion, false), run.StartedAt, run.CompletedAt),
		Done: run.Status == protocol.StatusCompleted, More: more, Jobs: []liveJob{}, Logs: []liveLog{},
	}
	completed := map[int64]bool{}
	for _, j := range jobs {
		lj := liveJob{liveState: state(j.ID, webState(j.Status, j.Conclusion, j.CancelRequested), j.StartedAt, j.CompletedAt), Steps: []liveState{}}
		for _, st := range j.Steps {
			lj.Steps = append(lj.Steps, state(st.ID, webState(st.Status, st.Conclusion, false), st.StartedAt, st.CompletedAt))
			completed[st.ID] = st.Status == protocol.StatusCompleted
		}
		ans.Jobs = append(ans.Jobs, lj)
	}
	for i := 0; i < len(chunks); {
		id := chunks[i].StepID
		a := logtext.HTML{State: states[id]}
		var seq int64
		for ; i < len(chunks) && chunks[i].StepID == id; i++ {
			a.Write(chunks[i].Data)
			seq = chunks[i].Seq
		}
		lastOfStep := i < len(chunks) || !more
		a.End(completed[id] && lastOfStep)
		ans.Logs = append(ans.Logs, liveLog{StepID: id, Seq: seq, HTML: a.Out.String(), State: a.State.Encode()})
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
	job, err := s.store.JobOf(r.Context(), run.RepoID, run.ID, id)
	if err != nil {
		return err
	}
	return s.serveJobLog(w, r, job.ID)
}

// ---- the buttons ----

// writableRunFromForm checks a button's post and loads its run, which the
// viewer must be allowed to write.
func (s *server) writableRunFromForm(w http.ResponseWriter, r *http.Request) (*webViewer, *store.Repo, *store.Run, error) {
	v, err := s.formViewer(w, r)
	if err != nil {
		return nil, nil, nil, err
	}
	if !v.mayWrite() {
		return nil, nil, nil, store.ErrLacksScope(store.ScopeWrite)
	}
	repo, p, err := s.readablePathRepo(r, v.user)
	if err != nil {
		return nil, nil, nil, err
	}
	if p < store.PermWrite {
		return nil, nil, nil, apperr.Forbiddenf("%s permission on %s required", store.PermWrite, repo.FullName())
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
		if _, err := s.store.JobOf(r.Context(), run.RepoID, run.ID, jobID); err != nil {
			return err
		}
	}
	if _, err := s.cancelJobs(r.Context(), run.ID, jobID); err != nil {
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
	nr, err := s.rerun(r.Context(), run, v.user)
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
	if !workflow.IsFile(git.WorkflowDir + file) {
		return apperr.ErrNotFound
	}
	// The file of either directory, .shithub's first.
	var newest *store.Run
	for _, dir := range git.WorkflowDirs {
		if newest, err = s.store.LatestRunOf(r.Context(), repo.ID, dir+file, ""); !errors.Is(err, apperr.ErrNotFound) {
			file = dir + file
			break
		}
	}
	if err != nil {
		return err // a workflow that never ran is not found
	}
	branch := r.URL.Query().Get("branch")
	if branch == "" {
		branch = "main"
	}
	status := "no status"
	color := "#6e7781"
	run, err := s.store.LatestRunOf(r.Context(), repo.ID, file, branch)
	switch {
	case errors.Is(err, apperr.ErrNotFound):
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
