package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// webEnv is a server on a real Store in a temporary directory, with a
// clock that only moves when a test moves it.
type webEnv struct {
	t   *testing.T
	st  *store.Store
	srv *server
	now time.Time
	// onLogPage, when set, hears of every page of log chunks the store reads.
	onLogPage func(rows, bytes int)
	alice     *store.User // owns both repositories
	bob       *store.User // may read alice/secret
	carol     *store.User // may do nothing on alice/secret
	dave      *store.User // may write alice/secret
	pub       *store.Repo // alice/hello, public
	priv      *store.Repo // alice/secret, private
	runner    *store.Runner
}

func newWebTestServer(t *testing.T) *webEnv {
	t.Helper()
	e := &webEnv{t: t, now: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
	st, err := openStore(filepath.Join(t.TempDir(), "web.db"), store.Options{Now: func() time.Time { return e.now },
		OnLogPage: func(rows, bytes int) {
			if e.onLogPage != nil {
				e.onLogPage(rows, bytes)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	e.srv = newServer(st, slog.New(slog.NewTextHandler(io.Discard, nil)), "")
	ctx := context.Background()
	user := func(name string) *store.User {
		u, err := st.CreateUser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	e.alice, e.bob, e.carol, e.dave = user("alice"), user("bob"), user("carol"), user("dave")
	if e.pub, err = st.CreateRepo(ctx, e.alice, "hello", t.TempDir(), false); err != nil {
		t.Fatal(err)
	}
	if e.priv, err = st.CreateRepo(ctx, e.alice, "secret", t.TempDir(), true); err != nil {
		t.Fatal(err)
	}
	if err := st.Grant(ctx, e.priv, e.bob, store.PermRead); err != nil {
		t.Fatal(err)
	}
	if err := st.Grant(ctx, e.priv, e.dave, store.PermWrite); err != nil {
		t.Fatal(err)
	}
	if e.runner, _, err = st.CreateRunner(ctx, "r1", []string{"ubuntu-latest"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *webEnv) tick(d time.Duration) { e.now = e.now.Add(d) }

const webTestWorkflow = `name: CI
on: push
jobs:
  test:
    name: Test
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: make test
  build:
    name: Build
    runs-on: ubuntu-latest
    steps:
      - name: Compile
        run: make
`

const webTestSingleJob = `name: Lint
on: push
jobs:
  vet:
    runs-on: ubuntu-latest
    steps:
      - run: go vet ./...
`

// webMakeRun starts a push run of a workflow file's content.
func (e *webEnv) webMakeRun(repo *store.Repo, file, content, branch, sha string) *store.Run {
	e.t.Helper()
	wf, perr := workflow.Parse(file, []byte(content))
	runs, _, err := e.st.CreateRuns(context.Background(), nil, []store.RunSpec{{
		RepoID: repo.ID, File: git.WorkflowDir + file, Content: []byte(content), Workflow: wf, ParseErr: perr,
		HeadSHA: sha, HeadRef: "refs/heads/" + branch, Event: "push", ActorID: e.alice.ID,
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	return runs[0]
}

// webClaim has the runner take the next job.
func (e *webEnv) webClaim() *protocol.Job {
	e.t.Helper()
	j, err := e.st.ClaimJob(context.Background(), e.runner, e.runner.Labels)
	if err != nil || j == nil {
		e.t.Fatalf("claim: %v, %v", j, err)
	}
	return j
}

func (e *webEnv) webStep(job, step int64, status, conclusion string) {
	e.t.Helper()
	if err := e.st.SetStepStatus(context.Background(), e.runner.ID, job, step, status, conclusion); err != nil {
		e.t.Fatal(err)
	}
}

func (e *webEnv) webLog(job, step, seq int64, data string) {
	e.t.Helper()
	if err := e.st.AppendLog(context.Background(), e.runner.ID, job, step, seq, []byte(data)); err != nil {
		e.t.Fatal(err)
	}
}

type webOpt func(*http.Request)

func webCookie(v string) webOpt {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: webSessionCookie, Value: v}) }
}

func webHeader(k, v string) webOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do sends a request through the whole server; form, when not nil, is the
// urlencoded body.
func (e *webEnv) do(method, target string, form url.Values, opts ...webOpt) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

var webCSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// webSignIn signs user in with a new PAT and returns the session cookie's
// value and the session's CSRF token.
func (e *webEnv) webSignIn(user *store.User) (cookie, csrf string) {
	e.t.Helper()
	return e.webSignInScopes(user, store.ScopeRead, store.ScopeWrite)
}

// webSignInScopes is webSignIn with a PAT of the given scopes.
func (e *webEnv) webSignInScopes(user *store.User, scopes ...string) (cookie, csrf string) {
	e.t.Helper()
	_, secret, err := e.st.CreateToken(context.Background(), user, "web", scopes, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	w := e.do("POST", "/login", url.Values{"username": {user.Name}, "token": {secret}})
	if w.Code != http.StatusSeeOther {
		e.t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == webSessionCookie {
			cookie = c.Value
		}
	}
	m := webCSRFRE.FindStringSubmatch(e.do("GET", "/", nil, webCookie(cookie)).Body.String())
	if cookie == "" || m == nil {
		e.t.Fatal("no session after signing in")
	}
	return cookie, m[1]
}

// webNormalize replaces what differs between runs of a test: the CSP
// nonce and CSRF tokens.
func webNormalize(b string) []byte {
	b = regexp.MustCompile(`nonce="[^"]+"`).ReplaceAllString(b, `nonce="NONCE"`)
	b = webCSRFRE.ReplaceAllString(b, `name="csrf" value="CSRF"`)
	return []byte(b)
}

func webExpect(t *testing.T, w *httptest.ResponseRecorder, code int, contains ...string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d; body:\n%s", w.Code, code, w.Body)
	}
	for _, c := range contains {
		if !strings.Contains(w.Body.String(), c) {
			t.Errorf("body lacks %q", c)
		}
	}
}

func webLacks(t *testing.T, w *httptest.ResponseRecorder, s ...string) {
	t.Helper()
	for _, x := range s {
		if strings.Contains(w.Body.String(), x) {
			t.Errorf("body has %q", x)
		}
	}
}

const (
	webSHA1 = "1111111111111111111111111111111111111111"
	webSHA2 = "2222222222222222222222222222222222222222"
)

// webScenario is the runs the page tests share, on alice/hello: #1 CI on
// main (Build running with coloured log lines, Test waiting), #2 a workflow
// whose name and branch need escaping, completed successfully, and #3 a
// workflow that does not parse.
func webScenario(t *testing.T) (*webEnv, *protocol.Job) {
	e := newWebTestServer(t)
	e.webMakeRun(e.pub, "ci.yml", webTestWorkflow, "main", webSHA1)
	e.tick(time.Minute)
	job := e.webClaim()
	e.webStep(job.JobID, job.Steps[0].ID, "running", "")
	e.webLog(job.JobID, job.Steps[0].ID, 1, "Runner r1\n")
	e.tick(2 * time.Second)
	e.webStep(job.JobID, job.Steps[0].ID, "completed", "success")
	e.webStep(job.JobID, job.Steps[1].ID, "running", "")
	e.webLog(job.JobID, job.Steps[1].ID, 1, "\x1b[1m$ make\x1b[0m\n\x1b[33mwarning:\x1b[0m <b>&amp;</b> \"q\"\n")
	e.webLog(job.JobID, job.Steps[1].ID, 2, "##[error]it \x1b[31mbroke\x1b[0m\nhalf a li")

	e.tick(time.Hour)
	evil := strings.Replace(webTestSingleJob, "name: Lint", `name: "<script>alert(1)</script>"`, 1)
	r2 := e.webMakeRun(e.pub, "evil.yml", evil, `"&<`, webSHA2)
	j2 := e.webClaim()
	e.tick(90 * time.Second)
	if err := e.st.CompleteJob(context.Background(), e.runner.ID, j2.JobID, "completed", "success"); err != nil {
		t.Fatal(err)
	}
	if j2.RunID != r2.ID {
		t.Fatalf("claimed job of run %d, want %d", j2.RunID, r2.ID)
	}
	e.tick(time.Minute)
	e.webMakeRun(e.pub, "bad.yml", "name: Bad\non: push\njobs: 3\n", "main", webSHA2)
	e.tick(5 * time.Minute)
	return e, job
}

func TestWebActionsTab(t *testing.T) {
	e, _ := webScenario(t)
	w := e.do("GET", "/alice/hello/actions", nil)
	webExpect(t, w, 200,
		`<link rel="alternate" type="application/atom+xml" title="Workflow runs" href="/alice/hello/actions.atom">`,
		`href="/alice/hello/actions.atom"`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
		`<span class="branch">&#34;&amp;&lt;</span>`,
		`aria-label="In progress"`, `aria-label="Success"`, `aria-label="Failure"`,
		`<time datetime="2026-03-14T15:09:26Z" title="2026-03-14 15:09:26 UTC">1 hour ago</time>`,
	)
	webLacks(t, w, "<script>alert(1)", `"&<`)
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'nonce-") {
		t.Errorf("CSP %q", csp)
	}
	// Newest first.
	body := w.Body.String()
	if i3, i1 := strings.Index(body, "/actions/runs/3\""), strings.Index(body, "/actions/runs/1\""); i3 < 0 || i1 < 0 || i3 > i1 {
		t.Errorf("runs not newest first")
	}
	golden(t, "web/actions.html", webNormalize(body))
}

func TestWebActionsFilters(t *testing.T) {
	e, _ := webScenario(t)
	count := func(target string) int {
		t.Helper()
		w := e.do("GET", target, nil)
		webExpect(t, w, 200)
		return strings.Count(w.Body.String(), `class="title" href=`)
	}
	for target, want := range map[string]int{
		"/alice/hello/actions":                                  3,
		"/alice/hello/actions?workflow=ci.yml":                  1,
		"/alice/hello/actions?workflow=evil.yml":                1,
		"/alice/hello/actions?branch=main":                      2,
		"/alice/hello/actions?branch=" + url.QueryEscape(`"&<`): 1,
		"/alice/hello/actions?status=running":                   1,
		"/alice/hello/actions?status=success":                   1,
		"/alice/hello/actions?status=failure":                   1,
		"/alice/hello/actions?status=completed":                 2,
		"/alice/hello/actions?status=queued":                    0,
		"/alice/hello/actions?branch=main&status=failure":       1,
	} {
		if got := count(target); got != want {
			t.Errorf("%s: %d runs, want %d", target, got, want)
		}
	}
	w := e.do("GET", "/alice/hello/actions?branch=main", nil)
	webExpect(t, w, 200, `value="main"`, `Clear filters`, `2 workflow runs match the filters`)
	w = e.do("GET", "/alice/hello/actions?status=bogus", nil)
	webExpect(t, w, 400, "unknown status")
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Errorf("a bad filter is not an HTML page")
	}
	webExpect(t, e.do("GET", "/alice/hello/actions?page=0", nil), 400)
}

func TestWebActionsPagination(t *testing.T) {
	e := newWebTestServer(t)
	for i := 0; i < webRunsPerPage+5; i++ {
		e.webMakeRun(e.pub, "lint.yml", webTestSingleJob, "main", webSHA1)
		e.tick(time.Second)
	}
	w := e.do("GET", "/alice/hello/actions?branch=main", nil)
	webExpect(t, w, 200, "Page 1 of 2", `href="/alice/hello/actions?branch=main&amp;page=2" rel="next"`)
	webLacks(t, w, `rel="prev"`)
	if n := strings.Count(w.Body.String(), `class="title"`); n != webRunsPerPage {
		t.Errorf("page 1 has %d runs", n)
	}
	w = e.do("GET", "/alice/hello/actions?branch=main&page=2", nil)
	webExpect(t, w, 200, "Page 2 of 2", `rel="prev"`, "/actions/runs/1\"")
	if n := strings.Count(w.Body.String(), `class="title"`); n != 5 {
		t.Errorf("page 2 has %d runs", n)
	}
	webExpect(t, e.do("GET", "/alice/hello/actions?page=9", nil), 200, "No workflow runs")
}

func TestWebRunPage(t *testing.T) {
	e, job := webScenario(t)
	w := e.do("GET", "/alice/hello/actions/runs/1", nil)
	webExpect(t, w, 200,
		`data-live="/alice/hello/actions/runs/1/live"`,
		`<span class="a-b">$ make</span>`,
		`<span class="a-f3">warning:</span> &lt;b&gt;&amp;amp;&lt;/b&gt; &#34;q&#34;`,
		`<span class="l-error"><span class="l-tag">Error: </span>it <span class="a-f1">broke</span></span>`,
		`>Raw log</a>`,
		`<script nonce="`,
	)
	webLacks(t, w, "\x1b", "[0m", "##[error]", "Cancel run", "Cancel job", "Re-run")
	// Build (needed) comes before Test (which needs it), though Test is
	// first in the file.
	body := w.Body.String()
	if b, tt := strings.Index(body, ">Build</h2>"), strings.Index(body, ">Test</h2>"); b < 0 || tt < 0 || b > tt {
		t.Errorf("jobs not in needs order")
	}
	// The open step carries the state to continue its log from: mid-line.
	st := regexp.MustCompile(`data-step="` + webItoa(job.Steps[1].ID) + `" data-seq="2" data-ansi="([^"]*)"`).FindStringSubmatch(body)
	if st == nil || st[1] == "" {
		t.Errorf("no log state for the running step")
	}
	golden(t, "web/run.html", webNormalize(body))

	cookie, _ := e.webSignIn(e.alice)
	w = e.do("GET", "/alice/hello/actions/runs/1", nil, webCookie(cookie))
	webExpect(t, w, 200, ">Cancel run</button>", ">Cancel job</button>", "Signed in as <strong>alice</strong>")
	webLacks(t, w, "shithub_pat_", "Re-run</button>")
	golden(t, "web/run-writer.html", webNormalize(w.Body.String()))

	// A completed run has Re-run, no live script.
	w = e.do("GET", "/alice/hello/actions/runs/2", nil, webCookie(cookie))
	webExpect(t, w, 200, ">Re-run</button>", "&lt;script&gt;alert(1)&lt;/script&gt;", "1m 30s")
	webLacks(t, w, "data-live", "<script", "Cancel run")

	// A workflow that does not parse: its error is the log, open.
	w = e.do("GET", "/alice/hello/actions/runs/3", nil)
	webExpect(t, w, 200, "invalid workflow file", `data-state="failure" open`)
}

func webItoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestWebNotFound(t *testing.T) {
	e, _ := webScenario(t)
	for _, target := range []string{
		"/alice/nope/actions",
		"/nobody/hello/actions",
		"/alice/hello/actions/runs/99",
		"/alice/hello/actions/runs/abc",
		"/alice/hello/actions/runs/99/live",
		"/alice/hello/actions/workflows/nope.yml/badge.svg",
		"/alice/hello/actions/workflows/README.md/badge.svg",
		"/alice/hello/actions/runs/1/jobs/999/log",
	} {
		w := e.do("GET", target, nil)
		webExpect(t, w, 404, "<h1>Not Found</h1>", "<main")
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s: not an HTML page", target)
		}
	}
	// The API and the feed keep answering in their own formats.
	w := e.do("GET", "/api/v1/repos/alice/nope/actions/runs", nil)
	webExpect(t, w, 404, `"message": "not found"`)
	w = e.do("GET", "/alice/nope/actions.atom", nil)
	webExpect(t, w, 404, `"message": "not found"`)
	// The live script asks for JSON, and gets it.
	w = e.do("GET", "/alice/hello/actions/runs/99/live", nil, webHeader("Accept", "application/json"))
	webExpect(t, w, 404, `"message": "not found"`)

	w = e.do("GET", "/alice/nope/actions", nil)
	golden(t, "web/404.html", webNormalize(w.Body.String()))
}

func TestWebPrivateRepo(t *testing.T) {
	e := newWebTestServer(t)
	run := e.webMakeRun(e.priv, "ci.yml", webTestWorkflow, "main", webSHA1)
	job := e.webClaim()
	if job.RunID != run.ID {
		t.Fatal("claimed another run's job")
	}
	targets := []string{
		"/alice/secret/actions",
		"/alice/secret/actions/runs/1",
		"/alice/secret/actions/runs/1/live",
		"/alice/secret/actions/runs/1/jobs/" + webItoa(job.JobID) + "/log",
		"/alice/secret/actions/workflows/ci.yml/badge.svg",
	}
	carol, carolCSRF := e.webSignIn(e.carol)
	for _, target := range targets {
		webExpect(t, e.do("GET", target, nil), 404, "Not Found")
		webExpect(t, e.do("GET", target, nil, webCookie(carol)), 404, "Not Found")
	}
	bob, bobCSRF := e.webSignIn(e.bob)
	for _, target := range targets {
		if w := e.do("GET", target, nil, webCookie(bob)); w.Code != 200 {
			t.Errorf("%s: bob got %d", target, w.Code)
		}
	}
	// bob may read, not write: no buttons, and the posts are refused.
	w := e.do("GET", "/alice/secret/actions/runs/1", nil, webCookie(bob))
	webLacks(t, w, "Cancel run", "Cancel job", "Re-run")
	webExpect(t, e.do("POST", "/alice/secret/actions/runs/1/cancel", url.Values{"csrf": {bobCSRF}}, webCookie(bob)), 403, "write permission")
	webExpect(t, e.do("POST", "/alice/secret/actions/runs/1/cancel", url.Values{"csrf": {carolCSRF}}, webCookie(carol)), 404)
	// A PAT in Authorization reads too (scripts).
	_, secret, _ := e.st.CreateToken(context.Background(), e.bob, "script", []string{store.ScopeRead}, 0)
	webExpect(t, e.do("GET", "/alice/secret/actions", nil, webHeader("Authorization", "Bearer "+secret)), 200)
	webExpect(t, e.do("GET", "/alice/secret/actions", nil, webHeader("Authorization", "Bearer shithub_pat_nope")), 401, "bad credentials")
	// The home page lists what each may see.
	webExpect(t, e.do("GET", "/", nil), 200, "alice/hello")
	webLacks(t, e.do("GET", "/", nil), "alice/secret")
	webExpect(t, e.do("GET", "/", nil, webCookie(bob)), 200, "alice/secret", "Private")
	webLacks(t, e.do("GET", "/", nil, webCookie(carol)), "alice/secret")

	// The private badge is cached privately.
	w = e.do("GET", "/alice/secret/actions/workflows/ci.yml/badge.svg", nil, webCookie(bob))
	if cc := w.Header().Get("Cache-Control"); cc != "private, max-age=60" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestWebCancel(t *testing.T) {
	e := newWebTestServer(t)
	e.webMakeRun(e.priv, "ci.yml", webTestWorkflow, "main", webSHA1)
	job := e.webClaim()
	e.webStep(job.JobID, job.Steps[0].ID, "running", "")
	cookie, csrf := e.webSignIn(e.dave)
	_, other := e.webSignIn(e.alice)
	target := "/alice/secret/actions/runs/1/jobs/" + webItoa(job.JobID) + "/cancel"
	requested := func() bool {
		j, err := e.st.JobByID(context.Background(), job.JobID)
		if err != nil {
			t.Fatal(err)
		}
		return j.CancelRequested
	}

	webExpect(t, e.do("POST", target, url.Values{}, webCookie(cookie)), 403, "reload the page")
	webExpect(t, e.do("POST", target, url.Values{"csrf": {"wrong"}}, webCookie(cookie)), 403)
	webExpect(t, e.do("POST", target, url.Values{"csrf": {other}}, webCookie(cookie)), 403) // another session's token
	webExpect(t, e.do("POST", target, url.Values{"csrf": {csrf}}), 403, "sign in first")
	webExpect(t, e.do("POST", target, url.Values{"csrf": {csrf}}, webCookie(cookie), webHeader("Origin", "https://evil.example")), 403, "cross-origin")
	webExpect(t, e.do("POST", target, url.Values{"csrf": {csrf}}, webCookie(cookie), webHeader("Origin", "null")), 403)
	webExpect(t, e.do("POST", target, url.Values{"csrf": {csrf}}, webCookie(cookie), webHeader("Sec-Fetch-Site", "cross-site")), 403)
	webExpect(t, e.do("POST", target, url.Values{"csrf": {csrf}}, webCookie(cookie), webHeader("Authorization", "Bearer x")), 403, "not a token")
	if requested() {
		t.Fatal("a refused post cancelled the job")
	}
	// A job of another run is not found through this run.
	webExpect(t, e.do("POST", "/alice/secret/actions/runs/2/jobs/"+webItoa(job.JobID)+"/cancel", url.Values{"csrf": {csrf}}, webCookie(cookie)), 404)

	w := e.do("POST", target, url.Values{"csrf": {csrf}}, webCookie(cookie),
		webHeader("Origin", "http://example.com"), webHeader("Sec-Fetch-Site", "same-origin"))
	webExpect(t, w, 303)
	if loc := w.Header().Get("Location"); loc != "/alice/secret/actions/runs/1" {
		t.Errorf("Location %q", loc)
	}
	if !requested() {
		t.Fatal("the job was not asked to cancel")
	}
	w = e.do("GET", "/alice/secret/actions/runs/1", nil, webCookie(cookie))
	webExpect(t, w, 200, `aria-label="Cancelling"`)
	if n := strings.Count(w.Body.String(), "Cancel job</button>"); n != 1 { // only Test's, still queued
		t.Errorf("%d Cancel job buttons", n)
	}
	// The runner stops; the job and the run end cancelled, the job that
	// needed it skipped, as through the API.
	if err := e.st.CompleteJob(context.Background(), e.runner.ID, job.JobID, "completed", "cancelled"); err != nil {
		t.Fatal(err)
	}
	run, _ := e.st.RunByIndex(context.Background(), e.priv.ID, 1)
	jobs, _ := e.st.RunJobs(context.Background(), run.ID)
	got := map[string]string{}
	for _, j := range jobs {
		got[j.JobKey] = j.Status + "/" + j.Conclusion
	}
	if run.Conclusion != "cancelled" || got["build"] != "completed/cancelled" || got["test"] != "completed/skipped" {
		t.Errorf("run %s, jobs %v", run.Conclusion, got)
	}

	// Cancel run on a queued run ends it at once.
	e.webMakeRun(e.priv, "lint.yml", webTestSingleJob, "main", webSHA2)
	w = e.do("POST", "/alice/secret/actions/runs/2/cancel", url.Values{"csrf": {csrf}}, webCookie(cookie))
	webExpect(t, w, 303)
	run2, _ := e.st.RunByIndex(context.Background(), e.priv.ID, 2)
	if run2.Status != "completed" || run2.Conclusion != "cancelled" {
		t.Errorf("run 2 is %s/%s", run2.Status, run2.Conclusion)
	}
}

// TestWebReadOnlySession: a session signed in with a repo:read token gets
// no Cancel or Re-run buttons, and its posts are refused as the API
// refuses the token, even from the repository's owner.
func TestWebReadOnlySession(t *testing.T) {
	e := newWebTestServer(t)
	e.webMakeRun(e.priv, "lint.yml", webTestSingleJob, "main", webSHA2) // #1, completed
	done := e.webClaim()
	if err := e.st.CompleteJob(context.Background(), e.runner.ID, done.JobID, "completed", "success"); err != nil {
		t.Fatal(err)
	}
	e.webMakeRun(e.priv, "ci.yml", webTestWorkflow, "main", webSHA1) // #2, queued
	readCookie, readCSRF := e.webSignInScopes(e.alice, store.ScopeRead)
	writeCookie, _ := e.webSignInScopes(e.alice, store.ScopeRead, store.ScopeWrite)
	buttons := []string{"Cancel run</button>", "Cancel job</button>"}

	webExpect(t, e.do("GET", "/alice/secret/actions/runs/2", nil, webCookie(writeCookie)), 200, buttons...)
	webExpect(t, e.do("GET", "/alice/secret/actions/runs/1", nil, webCookie(writeCookie)), 200, "Re-run</button>")
	w := e.do("GET", "/alice/secret/actions/runs/2", nil, webCookie(readCookie))
	webExpect(t, w, 200, "Signed in as <strong>alice</strong>")
	webLacks(t, w, buttons...)
	webLacks(t, e.do("GET", "/alice/secret/actions/runs/1", nil, webCookie(readCookie)), "Re-run</button>")

	run, _ := e.st.RunByIndex(context.Background(), e.priv.ID, 2)
	jobs, _ := e.st.RunJobs(context.Background(), run.ID)
	for _, target := range []string{"/alice/secret/actions/runs/2/cancel",
		"/alice/secret/actions/runs/2/jobs/" + webItoa(jobs[0].ID) + "/cancel", "/alice/secret/actions/runs/1/rerun"} {
		webExpect(t, e.do("POST", target, url.Values{"csrf": {readCSRF}}, webCookie(readCookie)), 403, "lacks the repo:write scope")
	}
	if run, _ := e.st.RunByIndex(context.Background(), e.priv.ID, 2); run.Status == protocol.StatusCompleted {
		t.Errorf("a read-only session cancelled run 2")
	}
	if _, err := e.st.RunByIndex(context.Background(), e.priv.ID, 3); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("a read-only session re-ran run 1: %v", err)
	}
}

// TestWebCancelRunWithNeeds cancels a whole queued run whose jobs need one
// another, through the page and so through s.cancelJobs.
func TestWebCancelRunWithNeeds(t *testing.T) {
	e := newWebTestServer(t)
	e.webMakeRun(e.pub, "ci.yml", webTestWorkflow, "main", webSHA1)
	cookie, csrf := e.webSignIn(e.alice)
	webExpect(t, e.do("POST", "/alice/hello/actions/runs/1/cancel", url.Values{"csrf": {csrf}}, webCookie(cookie)), 303)
	run, err := e.st.RunByIndex(context.Background(), e.pub.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "completed" || run.Conclusion != "cancelled" {
		t.Errorf("run 1 after cancel is %s/%s, want completed/cancelled", run.Status, run.Conclusion)
	}
	jobs, _ := e.st.RunJobs(context.Background(), run.ID)
	for _, j := range jobs {
		if j.Status != "completed" || (j.Conclusion != "cancelled" && j.Conclusion != "skipped") {
			t.Errorf("job %s after cancel is %s/%s, want completed/cancelled or skipped", j.JobKey, j.Status, j.Conclusion)
		}
	}
}

func TestWebRerun(t *testing.T) {
	e, _ := webScenario(t)
	cookie, csrf := e.webSignIn(e.alice)
	// An open run cannot be re-run.
	webExpect(t, e.do("POST", "/alice/hello/actions/runs/1/rerun", url.Values{"csrf": {csrf}}, webCookie(cookie)), 409, "not rerunnable")
	webExpect(t, e.do("POST", "/alice/hello/actions/runs/2/rerun", url.Values{}, webCookie(cookie)), 403)
	w := e.do("POST", "/alice/hello/actions/runs/2/rerun", url.Values{"csrf": {csrf}}, webCookie(cookie))
	webExpect(t, w, 303)
	if loc := w.Header().Get("Location"); loc != "/alice/hello/actions/runs/4" {
		t.Fatalf("Location %q", loc)
	}
	w = e.do("GET", "/alice/hello/actions/runs/4", nil)
	webExpect(t, w, 200, `Re-run of</dt><dd><a href="/alice/hello/actions/runs/2">#2</a>`, "<dt>Attempt</dt><dd>2</dd>", "Queued")
	w = e.do("GET", "/alice/hello/actions/runs/2", nil)
	webExpect(t, w, 200, `Re-runs</dt><dd><a href="/alice/hello/actions/runs/4">#4</a>`)
	run, _ := e.st.RunByIndex(context.Background(), e.pub.ID, 4)
	if run.Actor != "alice" || run.RunAttempt != 2 {
		t.Errorf("re-run by %s, attempt %d", run.Actor, run.RunAttempt)
	}
}

func TestWebLogin(t *testing.T) {
	e := newWebTestServer(t)
	ctx := context.Background()
	_, good, _ := e.st.CreateToken(ctx, e.bob, "good", []string{store.ScopeRead}, 0)
	_, noScope, _ := e.st.CreateToken(ctx, e.bob, "none", nil, 0)
	_, short, _ := e.st.CreateToken(ctx, e.bob, "short", []string{store.ScopeRead}, time.Hour)
	revokedTok, revoked, _ := e.st.CreateToken(ctx, e.bob, "revoked", []string{store.ScopeRead}, 0)
	e.st.RevokeToken(ctx, revokedTok.ID)
	_, alices, _ := e.st.CreateToken(ctx, e.alice, "alice", []string{store.ScopeRead}, 0)

	webExpect(t, e.do("GET", "/login?next=/alice/hello/actions", nil), 200,
		`<label for="username">`, `<label for="token">`, `type="password"`, `name="next" value="/alice/hello/actions"`)

	login := func(name, token, next string, opts ...webOpt) *httptest.ResponseRecorder {
		return e.do("POST", "/login", url.Values{"username": {name}, "token": {token}, "next": {next}}, opts...)
	}
	w := login("bob", good, "/alice/hello/actions")
	webExpect(t, w, 303)
	if loc := w.Header().Get("Location"); loc != "/alice/hello/actions" {
		t.Errorf("Location %q", loc)
	}
	var c *http.Cookie
	for _, x := range w.Result().Cookies() {
		if x.Name == webSessionCookie {
			c = x
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" || c.MaxAge != int(webSessionTTL.Seconds()) {
		t.Fatalf("session cookie %+v", c)
	}
	// Only the id's SHA-256 is stored.
	var n int
	sum := sha256.Sum256([]byte(c.Value))
	e.st.DBForTest().QueryRow("SELECT COUNT(*) FROM sessions WHERE hash = ? AND user_id = ? AND expires_at = ?",
		sum[:], e.bob.ID, e.now.Add(webSessionTTL).UnixMilli()).Scan(&n)
	if n != 1 {
		t.Errorf("no hashed session row")
	}
	e.st.DBForTest().QueryRow("SELECT COUNT(*) FROM sessions WHERE hash = ?", c.Value).Scan(&n)
	if n != 0 {
		t.Errorf("the session id is stored in the clear")
	}
	webExpect(t, e.do("GET", "/", nil, webCookie(c.Value)), 200, "Signed in as <strong>bob</strong>")

	// Where a sign-in may return to.
	for next, want := range map[string]string{"": "/", "//evil.example/x": "/", "/\\evil.example": "/", "https://evil.example/": "/", "/a?b=c": "/a?b=c"} {
		if loc := login("bob", good, next).Header().Get("Location"); loc != want {
			t.Errorf("next %q: went to %q, want %q", next, loc, want)
		}
	}
	// Secure over TLS.
	r := httptest.NewRequest("POST", "https://example.com/login", strings.NewReader(url.Values{"username": {"bob"}, "token": {good}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, r)
	if cs := rec.Result().Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookie over TLS: %+v", cs)
	}
	// A login form posted from elsewhere.
	webExpect(t, login("bob", good, "/", webHeader("Origin", "https://evil.example")), 403)

	// Failures, from one address, then the limit.
	e.tick(time.Minute)
	for _, bad := range []struct{ name, token string }{
		{"bob", "shithub_pat_0000000000000000000000000000000"}, // unknown
		{"bob", alices},  // someone else's
		{"bob", noScope}, // no repo:read
		{"bob", revoked},
		{"nobody", good},
	} {
		w := login(bad.name, bad.token, "/")
		webExpect(t, w, 403, "Wrong user name or token")
		webLacks(t, w, bad.token)
		if len(w.Result().Cookies()) != 0 {
			t.Errorf("a failed sign-in set a cookie")
		}
	}
	w = login("bob", good, "/")
	webExpect(t, w, 429, "Too many failed sign-ins")
	if w.Header().Get("Retry-After") == "" {
		t.Errorf("no Retry-After")
	}
	// Another address is not held back.
	webExpect(t, login("bob", good, "/", func(r *http.Request) { r.RemoteAddr = "198.51.100.7:999" }), 303)
	// The window passes.
	e.tick(webLoginWindow)
	webExpect(t, login("bob", good, "/"), 303)

	// An expired token.
	e.tick(time.Hour)
	webExpect(t, login("bob", short, "/"), 403)
}

// TestWebLoginParallel: wrong sign-ins sent all at once from one address
// get no more tries than wrong sign-ins sent one by one.
func TestWebLoginParallel(t *testing.T) {
	e := newWebTestServer(t)
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bad := fmt.Sprintf("shithub_pat_%032d", i)
			codes <- e.do("POST", "/login", url.Values{"username": {"bob"}, "token": {bad}}).Code
		}()
	}
	wg.Wait()
	close(codes)
	tried := 0
	for c := range codes {
		if c != http.StatusTooManyRequests {
			tried++
		}
	}
	if tried != webLoginMaxFails {
		t.Errorf("%d of 40 parallel wrong sign-ins were tried, want %d", tried, webLoginMaxFails)
	}
}

// TestWebLoginBehindProxy: with --trust-proxy, clients behind the proxy are
// limited one by one; without it, X-Forwarded-For changes nothing.
func TestWebLoginBehindProxy(t *testing.T) {
	for _, trust := range []bool{false, true} {
		e := newWebTestServer(t)
		if trust {
			e.srv.trustProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}
		}
		from := func(client string) webOpt {
			return func(r *http.Request) { r.RemoteAddr = "10.0.0.1:5555"; r.Header.Set("X-Forwarded-For", client) }
		}
		for i := range webLoginMaxFails {
			// An attacker who sends a new X-Forwarded-For each time.
			e.do("POST", "/login", url.Values{"username": {"bob"}, "token": {"wrong"}}, from(fmt.Sprintf("203.0.113.%d", i)))
		}
		attacker := e.do("POST", "/login", url.Values{"username": {"bob"}, "token": {"wrong"}}, from("203.0.113.99")).Code
		if trust && attacker != http.StatusForbidden || !trust && attacker != http.StatusTooManyRequests {
			t.Errorf("trust %v: a 6th wrong sign-in through the proxy: %d", trust, attacker)
		}
		if trust {
			// The proxy says who the client is: one client is held back.
			for range webLoginMaxFails {
				e.do("POST", "/login", url.Values{"username": {"bob"}, "token": {"wrong"}}, from("198.51.100.7"))
			}
			if c := e.do("POST", "/login", url.Values{"username": {"bob"}, "token": {"wrong"}}, from("198.51.100.7")).Code; c != http.StatusTooManyRequests {
				t.Errorf("a client behind a trusted proxy after %d failures: %d, want 429", webLoginMaxFails, c)
			}
		}
	}
}

func TestWebLogoutAndExpiry(t *testing.T) {
	e := newWebTestServer(t)
	cookie, csrf := e.webSignIn(e.bob)
	webExpect(t, e.do("POST", "/logout", url.Values{}, webCookie(cookie)), 403)
	webExpect(t, e.do("POST", "/logout", url.Values{"csrf": {csrf}}, webCookie(cookie), webHeader("Sec-Fetch-Site", "cross-site")), 403)
	w := e.do("POST", "/logout", url.Values{"csrf": {csrf}}, webCookie(cookie))
	webExpect(t, w, 303)
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("the cookie was not cleared: %+v", cs)
	}
	w = e.do("GET", "/", nil, webCookie(cookie))
	webExpect(t, w, 200, ">Sign in</a>")
	webLacks(t, w, "Signed in")

	// Sessions end after their time.
	cookie, _ = e.webSignIn(e.bob)
	e.tick(webSessionTTL - time.Second)
	webExpect(t, e.do("GET", "/", nil, webCookie(cookie)), 200, "Signed in as")
	e.tick(time.Second)
	webExpect(t, e.do("GET", "/", nil, webCookie(cookie)), 200, ">Sign in</a>")

	// Revoking the token a session was signed in with ends the session.
	cookie, _ = e.webSignIn(e.bob)
	webExpect(t, e.do("GET", "/", nil, webCookie(cookie)), 200, "Signed in as")
	tokens, err := e.st.ListTokens(context.Background(), e.bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.RevokeToken(context.Background(), tokens[len(tokens)-1].ID); err != nil {
		t.Fatal(err)
	}
	w = e.do("GET", "/", nil, webCookie(cookie))
	webExpect(t, w, 200, ">Sign in</a>")
	webLacks(t, w, "Signed in")
}

func TestWebBadge(t *testing.T) {
	e, _ := webScenario(t)
	w := e.do("GET", "/alice/hello/actions/workflows/ci.yml/badge.svg", nil)
	webExpect(t, w, 200, `aria-label="CI: in progress"`)
	if ct := w.Header().Get("Content-Type"); ct != "image/svg+xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "max-age=60" {
		t.Errorf("Cache-Control %q", cc)
	}
	golden(t, "web/badge-ci.svg", w.Body.Bytes())
	// The escaping workflow ran on the branch "&<, not main.
	w = e.do("GET", "/alice/hello/actions/workflows/evil.yml/badge.svg", nil)
	webExpect(t, w, 200, "&lt;script&gt;alert(1)&lt;/script&gt;: no status")
	webLacks(t, w, "<script>")
	w = e.do("GET", "/alice/hello/actions/workflows/evil.yml/badge.svg?branch="+url.QueryEscape(`"&<`), nil)
	webExpect(t, w, 200, ": passing")
	golden(t, "web/badge-evil.svg", w.Body.Bytes())
	webExpect(t, e.do("GET", "/alice/hello/actions/workflows/bad.yml/badge.svg", nil), 200, "bad.yml: failing")
}

// webLive asks the live endpoint and decodes its answer.
func (e *webEnv) webLive(target, after string) liveAnswer {
	e.t.Helper()
	w := e.do("GET", target+"?after="+url.QueryEscape(after), nil, webHeader("Accept", "application/json"))
	if w.Code != 200 {
		e.t.Fatalf("live: %d %s", w.Code, w.Body)
	}
	var a liveAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

func TestWebLive(t *testing.T) {
	e, job := webScenario(t)
	step := job.Steps[1].ID
	const target = "/alice/hello/actions/runs/1/live"
	a := e.webLive(target, "")
	if a.Done || a.More || a.Run.State != "running" || len(a.Jobs) != 2 || len(a.Logs) != 2 {
		t.Fatalf("first answer: %+v", a)
	}
	cursors := map[int64]string{}
	cur := func(logs ...liveLog) string {
		for _, l := range logs {
			cursors[l.StepID] = webItoa(l.StepID) + ":" + webItoa(l.Seq) + ":" + l.State
		}
		var out []string
		for _, c := range cursors {
			out = append(out, c)
		}
		return strings.Join(out, ",")
	}
	after := cur(a.Logs...)
	if a.Logs[1].StepID != step || a.Logs[1].Seq != 2 || a.Logs[1].State == "" {
		t.Fatalf("log of the running step: %+v", a.Logs[1])
	}
	// Nothing new.
	if a := e.webLive(target, after); len(a.Logs) != 0 {
		t.Fatalf("repeated log: %+v", a.Logs)
	}
	// A colour sequence cut between two chunks, and a UTF-8 character.
	e.webLog(job.JobID, step, 3, "ne\n\x1b[3")
	a = e.webLive(target, after)
	if len(a.Logs) != 1 || a.Logs[0].HTML != "ne\n" {
		t.Fatalf("chunk 3: %+v", a.Logs)
	}
	after = cur(a.Logs...)
	e.webLog(job.JobID, step, 4, "2mgreen \xe2\x9c")
	a = e.webLive(target, after)
	if len(a.Logs) != 1 || a.Logs[0].HTML != `<span class="a-f2">green </span>` {
		t.Fatalf("chunk 4: %+v", a.Logs)
	}
	after = cur(a.Logs...)
	e.webLog(job.JobID, step, 5, "\x93 <ok>\x1b[0m\n")
	a = e.webLive(target, after)
	if len(a.Logs) != 1 || a.Logs[0].HTML != "<span class=\"a-f2\">✓ &lt;ok&gt;</span>\n" || a.Logs[0].State != "" {
		t.Fatalf("chunk 5: %+v", a.Logs)
	}
	// The job ends: states and done.
	e.tick(10 * time.Second)
	e.webStep(job.JobID, step, "completed", "success")
	if err := e.st.CompleteJob(context.Background(), e.runner.ID, job.JobID, "completed", "failure"); err != nil {
		t.Fatal(err)
	}
	a = e.webLive(target, cur(a.Logs...))
	if !a.Done || a.Run.State != "failure" || a.Run.Label != "Failure" {
		t.Errorf("after the end: %+v", a.Run)
	}
	states := map[int64]string{}
	for _, j := range a.Jobs {
		states[j.ID] = j.State + " " + j.Duration
	}
	if states[job.JobID] != "failure 1h 7m 42s" {
		t.Errorf("job states %v", states)
	}
	// Bad cursors are refused.
	w := e.do("GET", target+"?after=1:2", nil, webHeader("Accept", "application/json"))
	webExpect(t, w, 400, `"message"`)
	w = e.do("GET", target+"?after=1:2:%21%21", nil, webHeader("Accept", "application/json"))
	webExpect(t, w, 400)
}

func TestWebLiveBudget(t *testing.T) {
	e := newWebTestServer(t)
	e.webMakeRun(e.pub, "lint.yml", webTestSingleJob, "main", webSHA1)
	job := e.webClaim()
	step := job.Steps[1].ID
	e.webStep(job.JobID, step, "running", "")
	big := strings.Repeat("x", 100<<10) + "\n"
	for i := int64(1); i <= 5; i++ {
		e.webLog(job.JobID, step, i, big)
	}
	a := e.webLive("/alice/hello/actions/runs/1/live", "")
	if !a.More || len(a.Logs) != 1 || a.Logs[0].Seq != 3 {
		t.Fatalf("first answer: more %v, %d logs, seq %d", a.More, len(a.Logs), a.Logs[0].Seq)
	}
	a = e.webLive("/alice/hello/actions/runs/1/live", webItoa(step)+":3:")
	if a.More || len(a.Logs) != 1 || a.Logs[0].Seq != 5 || strings.Count(a.Logs[0].HTML, "\n") != 2 {
		t.Fatalf("second answer: more %v, %+v", a.More, len(a.Logs))
	}
}

func TestWebJobLog(t *testing.T) {
	e, job := webScenario(t)
	w := e.do("GET", "/alice/hello/actions/runs/1/jobs/"+webItoa(job.JobID)+"/log", nil)
	webExpect(t, w, 200, "##[group]Compile\n\x1b[1m$ make")
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	webExpect(t, e.do("GET", "/alice/hello/actions/runs/2/jobs/"+webItoa(job.JobID)+"/log", nil), 404)
}

// TestLogsStream: the raw log is read and sent a page of chunks at a time,
// and the run page reads only the tail it shows, so memory does not grow
// with a log's size.
func TestLogsStream(t *testing.T) {
	e := newWebTestServer(t)
	e.webMakeRun(e.pub, "lint.yml", webTestSingleJob, "main", webSHA1)
	job := e.webClaim()
	step := job.Steps[1].ID
	e.webStep(job.JobID, step, "running", "")
	const chunks, chunkSize = 48, 64 << 10 // 3 MiB, as a runner sends it
	var want strings.Builder
	for i := range chunks {
		data := fmt.Sprintf("%04d %s\n", i, strings.Repeat("x", chunkSize-6))
		want.WriteString(data)
		e.webLog(job.JobID, step, int64(i+1), data)
	}
	var pages, rows, bytes, maxRows int
	e.onLogPage = func(r, b int) { pages, rows, bytes, maxRows = pages+1, rows+r, bytes+b, max(maxRows, r) }
	reset := func() { pages, rows, bytes, maxRows = 0, 0, 0, 0 }

	for _, target := range []string{"/api/v1/repos/alice/hello/actions/jobs/" + webItoa(job.JobID) + "/logs",
		"/alice/hello/actions/runs/1/jobs/" + webItoa(job.JobID) + "/log"} {
		reset()
		w := e.do("GET", target, nil)
		if w.Code == http.StatusFound { // the API's log answers with a signed link
			loc, err := url.Parse(w.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			reset()
			w = e.do("GET", loc.RequestURI(), nil)
		}
		webExpect(t, w, 200)
		if !strings.Contains(w.Body.String(), "##[group]Run go vet ./...\n"+want.String()+"##[endgroup]\n") {
			t.Errorf("GET %s: the log is not whole (%d bytes)", target, w.Body.Len())
		}
		if maxRows > store.LogPageRows || rows != chunks || pages < chunks/store.LogPageRows {
			t.Errorf("GET %s: read %d rows in %d pages of up to %d rows; want %d rows in pages of at most %d",
				target, rows, pages, maxRows, chunks, store.LogPageRows)
		}
	}

	reset()
	w := e.do("GET", "/alice/hello/actions/runs/1", nil)
	webExpect(t, w, 200, fmt.Sprintf("%04d ", chunks-1))
	webLacks(t, w, "0000 xxx")
	if limit := webLogPageCap + store.LogPageRows*chunkSize; bytes > limit || maxRows > store.LogPageRows {
		t.Errorf("the run page read %d bytes in pages of up to %d rows; want at most %d bytes, the tail it shows", bytes, maxRows, limit)
	}
}

func TestOrderJobs(t *testing.T) {
	j := func(key string, needs ...string) *store.Job { return &store.Job{JobKey: key, Needs: needs} }
	got := []string{}
	for _, x := range orderJobs([]*store.Job{j("deploy", "test", "build"), j("test", "build"), j("lint"), j("build"), j("loop", "loop")}) {
		got = append(got, x.JobKey)
	}
	if strings.Join(got, ",") != "lint,build,test,deploy,loop" {
		t.Errorf("order %v", got)
	}
	// A job needing a call comes after the call's jobs ("caller/job").
	b := func(key string, needs ...string) *store.Job {
		return &store.Job{JobKey: key, BaseKey: key, Needs: needs}
	}
	got = nil
	for _, x := range orderJobs([]*store.Job{b("after", "call"), b("call#1/a"), b("call#2/b", "call#2/a"), b("call#2/a")}) {
		got = append(got, x.JobKey)
	}
	if strings.Join(got, ",") != "call#1/a,call#2/a,call#2/b,after" {
		t.Errorf("order with a call %v", got)
	}
}

const webMatrixWorkflow = `name: Matrix
on: push
jobs:
  deploy:
    needs: test
    if: always()
    runs-on: ubuntu-latest
    environment:
      name: production
      url: javascript:alert(1)
    steps:
      - run: ./deploy
  test:
    strategy:
      matrix:
        go: ['1.22', '1.23']
    runs-on: ubuntu-latest
    environment:
      name: staging <b>
      url: https://staging.example.com/?a=1&b="<x>"
    steps:
      - name: Unit tests
        run: go test ./...
`

// TestWebRunPageReports: matrix legs under their leg names and before the
// job that needs them, each job's environment (a url only when http or
// https), annotations with where they point and the step they came from,
// step summaries as safe HTML, and ::group:: sections collapsible.
func TestWebRunPageReports(t *testing.T) {
	e := newWebTestServer(t)
	ctx := context.Background()
	e.webMakeRun(e.pub, "matrix.yml", webMatrixWorkflow, "main", webSHA1)
	e.tick(time.Minute)
	job := e.webClaim()
	step := job.Steps[1].ID
	e.webStep(job.JobID, job.Steps[0].ID, "running", "")
	e.webStep(job.JobID, job.Steps[0].ID, "completed", "success")
	e.webStep(job.JobID, step, "running", "")
	e.webLog(job.JobID, step, 1, "before\n##[group]Download <modules>\nfetching a\nfetching b\n##[endgroup]\n##[group]Compile\n")
	e.webLog(job.JobID, step, 2, "cc -c x.c\n##[error]x.c:3: broken\n##[endgroup]\nafter\n")
	for _, a := range []protocol.Annotation{
		{StepID: step, Level: "error", Message: "undefined: <Foo>\nsecond line", File: "x.go", Line: 3, Col: 7, Title: "Build <failed>"},
		{StepID: step, Level: "warning", Message: "deprecated", File: "y.go", Line: 10, EndLine: 12},
		{StepID: step, Level: "notice", Message: "just so you know"},
	} {
		if kept, err := e.st.AddAnnotation(ctx, e.runner.ID, job.JobID, a); err != nil || !kept {
			t.Fatalf("annotation: %v, %v", kept, err)
		}
	}
	summary := "## Results <script>alert(1)</script>\n\n| test | ok |\n| --- | :-: |\n| a | **yes** |\n\n<img src=x onerror=alert(1)>\n[x](javascript:alert(1))\n"
	if err := e.st.SetStepSummary(ctx, e.runner.ID, job.JobID, step, summary); err != nil {
		t.Fatal(err)
	}
	e.tick(30 * time.Second)
	e.webStep(job.JobID, step, "completed", "failure")
	// The failed leg cancels the other (fail-fast); deploy runs always().
	if err := e.st.CompleteJob(ctx, e.runner.ID, job.JobID, "completed", "failure"); err != nil {
		t.Fatal(err)
	}

	w := e.do("GET", "/alice/hello/actions/runs/1", nil)
	webExpect(t, w, 200,
		`>test (1.22)</h2>`, `>test (1.23)</h2>`,
		`Environment: <strong>staging &lt;b&gt;</strong> · <a href="https://staging.example.com/?a=1&amp;b=%22%3cx%3e%22" rel="nofollow noopener noreferrer">`,
		`Environment: <strong>production</strong></p>`,
		// Annotations, escaped, with file, line and column, and their step.
		`<li class="ann ann-error"><span class="l-tag l-error">Error</span> <strong>Build &lt;failed&gt;</strong> <code>x.go:3:7</code> <span class="muted">in <a href="#step-`+webItoa(step)+`">Unit tests</a></span>`,
		`<div class="ann-msg">undefined: &lt;Foo&gt;`+"\n"+`second line</div>`,
		`<code>y.go:10-12</code>`,
		`<span class="l-tag l-notice">Notice</span> <span class="muted">in`,
		// The summary, rendered, with no raw HTML and no script link.
		`Summary of <strong>Unit tests</strong>`, `<h2>Results &lt;script&gt;alert(1)&lt;/script&gt;</h2>`,
		`<td class="align-center"><strong>yes</strong></td>`, `&lt;img src=x onerror=alert(1)&gt;`,
		// Groups: collapsible sections, closed, with their titles.
		`before`+"\n"+`<details class="group"><summary><span class="l-group">Download &lt;modules&gt;</span></summary>fetching a`+"\n"+`fetching b`+"\n"+`</details>`+
			`<details class="group"><summary><span class="l-group">Compile</span></summary>cc -c x.c`+"\n"+
			`<span class="l-error"><span class="l-tag">Error: </span>x.c:3: broken</span>`+"\n"+`</details>after`,
	)
	webLacks(t, w, "javascript:", "<script>alert", "<img", "##[group]", "##[endgroup]", `href="javascript`)
	body := w.Body.String()
	// Both legs come before the job that needs them, though it is first in the file.
	if l1, l2, d := strings.Index(body, ">test (1.22)</h2>"), strings.Index(body, ">test (1.23)</h2>"), strings.Index(body, ">deploy</h2>"); l1 < 0 || l2 < l1 || d < l2 {
		t.Errorf("jobs not in needs order: legs at %d and %d, deploy at %d", l1, l2, d)
	}
	golden(t, "web/run-reports.html", webNormalize(body))
}

// TestWebLiveGroups: a ::group:: section a live update continues comes as
// its continuation, which the page's script moves into the section; the
// state carries that the log is inside one.
func TestWebLiveGroups(t *testing.T) {
	e := newWebTestServer(t)
	e.webMakeRun(e.pub, "lint.yml", webTestSingleJob, "main", webSHA1)
	job := e.webClaim()
	step := job.Steps[1].ID
	e.webStep(job.JobID, step, "running", "")
	e.webLog(job.JobID, step, 1, "##[group]Install\nline 1\n##[group]Ti")
	const target = "/alice/hello/actions/runs/1/live"
	a := e.webLive(target, "")
	if len(a.Logs) != 1 || a.Logs[0].HTML != `<details class="group"><summary><span class="l-group">Install</span></summary>line 1`+"\n</details>" {
		t.Fatalf("first answer: %+v", a.Logs)
	}
	after := func(l liveLog) string { return webItoa(l.StepID) + ":" + webItoa(l.Seq) + ":" + l.State }
	// The title cut by the chunk was held back, whole in the next answer.
	e.webLog(job.JobID, step, 2, "tle\nline 2\n")
	a = e.webLive(target, after(a.Logs[0]))
	if len(a.Logs) != 1 || a.Logs[0].HTML != `<details class="group"><summary><span class="l-group">Title</span></summary>line 2`+"\n</details>" {
		t.Fatalf("second answer: %+v", a.Logs)
	}
	e.webLog(job.JobID, step, 3, "line \x1b[1m3\n##[endgroup]\nout\n")
	a = e.webLive(target, after(a.Logs[0]))
	if len(a.Logs) != 1 || a.Logs[0].HTML != `<div class="gcont">line <span class="a-b">3</span>`+"\n</div>"+`<span class="a-b">out</span>`+"\n" {
		t.Fatalf("third answer: %+v", a.Logs)
	}
	// The page of the same log has it in one piece.
	w := e.do("GET", "/alice/hello/actions/runs/1", nil)
	webExpect(t, w, 200, `<details class="group"><summary><span class="l-group">Title</span></summary>line 2`+"\nline <span class=\"a-b\">3</span>\n</details>")
}
