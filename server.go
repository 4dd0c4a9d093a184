// The server: its struct, the one route table for the API, the runner
// protocol, the feed and the pages, and the helpers every handler shares
// (wrap, the one error-to-response mapping, JSON, URLs).

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/jobsvc"
	"shithub-actions/internal/store"
)

// server serves the API, the feed and the pages.
type server struct {
	store   *store.Store
	log     *slog.Logger
	baseURL string   // from --base-url; "" means derive it from each request
	jobURL  string   // from --job-url: the URL jobs reach the server at; "" means baseURL, or each request's
	exec    notifier // the in-process executor; nil when none runs
	mux     *http.ServeMux

	localRunnerID int64 // the in-process pool's runner row; its jobs are never "lost"
	feeds         feedCache
	lists         listCache // the runs list's answers (listcache.go)
	metricsToken  string    // from --metrics-token; "" leaves /metrics open
	heads         headCache
	health        healthProbe
	// trustProxies are the reverse proxies (--trust-proxy) whose
	// X-Forwarded-For names the client; nil trusts no one's.
	trustProxies []netip.Prefix
	// queueTimeout is how long a job no runner has the labels for stays
	// queued before it fails (--queue-timeout).
	queueTimeout time.Duration

	web *webUI // the pages (web.go)

	logs logSigner // signs the log download URLs (ghapi.go)

	runtime  *actionsRuntime // artifact and cache services for jobs; nil until enableRuntime
	prefixes []prefixRoute   // routes by path prefix, tried before mux
}

// notifier is what the server tells its in-process executor.
type notifier interface {
	Wake()              // a job may have become claimable
	Cancel(jobID int64) // a running job was asked to cancel
}

// maxBody caps request bodies; a log chunk (1 MiB, base64) is the largest.
const maxBody = 2 << 20

// defaultQueueTimeout is --queue-timeout's default.
const defaultQueueTimeout = 24 * time.Hour

// maxLogChunk is the most one log request may carry, decoded.
const maxLogChunk = 1 << 20

func newServer(storeFn *store.Store, logger *slog.Logger, baseURL string) *server {
	s := &server{store: storeFn, log: logger, baseURL: strings.TrimSuffix(baseURL, "/"), mux: http.NewServeMux(),
		queueTimeout: defaultQueueTimeout}
	s.web = newWebUI(func() time.Time { return s.store.Now() })
	s.routes()
	return s
}

// routes is the one route table: the API, the runner protocol, the feed
// and the pages.
func (s *server) routes() {
	// The lifecycle API (../shared/spec/actions-workflow-api.md).
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.wrap(s.handleJobCancel))
	s.mux.HandleFunc("POST /api/v1/runs/{id}/rerun", s.wrap(s.handleRunRerun))
	s.mux.HandleFunc("POST /api/v1/runs/{id}/cancel", s.wrap(s.handleRunCancel))

	// Triggers.
	s.mux.HandleFunc("POST /api/v1/repos/{owner}/{repo}/actions/events/push", s.wrap(s.handlePush))
	s.mux.HandleFunc("POST /api/v1/repos/{owner}/{repo}/actions/events/pull_request", s.wrap(s.handlePullRequest))
	s.dialect("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", s.handleDispatch)

	// GitHub's REST dialect (ghapi.go, secrets_api.go): each route is
	// served under /api/v1 and under GitHub Enterprise Server's /api/v3
	// (dialect), where gh and go-github's WithEnterpriseURLs look.
	s.dialect("GET /{$}", s.handleAPIRoot)
	s.mux.HandleFunc("POST /api/graphql", s.wrap(s.handleGraphQL))
	s.dialect("POST /graphql", s.handleGraphQL)
	s.dialect("GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations", s.handleCheckRunAnnotations)

	// Reading, in GitHub's REST dialect (ghapi.go).
	s.dialect("GET /repos/{owner}/{repo}", s.handleRepoGet)
	s.dialect("GET /users/{username}", s.handleUserGet)
	s.dialect("GET /repos/{owner}/{repo}/actions/runs", s.handleRunList)
	s.dialect("GET /repos/{owner}/{repo}/actions/runs/{run_id}", s.handleRunGet)
	s.dialect("GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs", s.handleRunJobs)
	s.dialect("GET /repos/{owner}/{repo}/actions/runs/{run_id}/logs", s.handleRunLogs)
	s.dialect("GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}", s.handleRunAttempt)
	s.dialect("GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs", s.handleRunAttemptJobs)
	s.dialect("GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/logs", s.handleRunAttemptLogs)
	s.dialect("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", s.handleJobGet)
	s.dialect("GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs", s.handleJobLogs)
	s.dialect("GET /repos/{owner}/{repo}/actions/workflows", s.handleWorkflowList)
	s.dialect("GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}", s.handleWorkflowGet)
	s.dialect("GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", s.handleWorkflowRuns)
	s.dialect("GET /signed-logs/{kind}/{id}", s.handleSignedLogs)
	s.mux.HandleFunc("GET /{owner}/{repo}/actions.atom", s.wrap(s.handleFeed))

	// GitHub's lifecycle and workflow paths (ghapi.go), on the spec's code
	// paths (s.cancelJobs, s.rerun) with GitHub's answers.
	s.dialect("POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel", s.handleGHRunCancel)
	s.dialect("POST /repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel", s.handleGHRunCancel)
	s.dialect("POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun", s.handleGHRunRerun)
	s.dialect("POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs", s.handleGHRunRerunFailed)
	s.dialect("POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun", s.handleGHJobRerun)
	s.dialect("PUT /repos/{owner}/{repo}/actions/workflows/{workflow_id}/enable", s.handleWorkflowEnable)
	s.dialect("PUT /repos/{owner}/{repo}/actions/workflows/{workflow_id}/disable", s.handleWorkflowDisable)

	// Secrets and variables (secrets_api.go).
	s.dialect("GET /repos/{owner}/{repo}/actions/secrets/public-key", s.handleSecretsPublicKey)
	s.dialect("GET /repos/{owner}/{repo}/actions/secrets", s.handleSecretList)
	s.dialect("GET /repos/{owner}/{repo}/actions/secrets/{name}", s.handleSecretGet)
	s.dialect("PUT /repos/{owner}/{repo}/actions/secrets/{name}", s.handleSecretPut)
	s.dialect("DELETE /repos/{owner}/{repo}/actions/secrets/{name}", s.handleSecretDelete)
	s.dialect("GET /repos/{owner}/{repo}/actions/variables", s.handleVariableList)
	s.dialect("POST /repos/{owner}/{repo}/actions/variables", s.handleVariableCreate)
	s.dialect("GET /repos/{owner}/{repo}/actions/variables/{name}", s.handleVariableGet)
	s.dialect("PATCH /repos/{owner}/{repo}/actions/variables/{name}", s.handleVariableUpdate)
	s.dialect("DELETE /repos/{owner}/{repo}/actions/variables/{name}", s.handleVariableDelete)

	// Who may reach a private repository from Actions (reach.go).
	s.dialect("GET /repos/{owner}/{repo}/actions/permissions/access", s.handleAccessGet)
	s.dialect("PUT /repos/{owner}/{repo}/actions/permissions/access", s.handleAccessPut)

	// The runner protocol.
	s.mux.HandleFunc("POST /api/v1/runners/heartbeat", s.wrap(s.handleHeartbeat))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/cancel-check", s.wrap(s.handleJobCancelCheck))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/logs", s.wrap(s.handleJobLogAppend))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/steps/{step_id}/status", s.wrap(s.handleStepStatus))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/status", s.wrap(s.handleJobStatus))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/annotations", s.wrap(s.handleJobAnnotation))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/steps/{step_id}/summary", s.wrap(s.handleStepSummary))
	s.mux.HandleFunc("/api/v1/jobs/{id}/git/{path...}", s.wrap(s.handleJobGit))

	// Git over HTTP (githttp.go).
	s.mux.HandleFunc("GET /{owner}/{repo}/info/refs", s.wrap(s.handleGitInfoRefs))
	s.mux.HandleFunc("POST /{owner}/{repo}/git-upload-pack", s.wrap(s.handleGitUploadPack))
	s.mux.HandleFunc("POST /{owner}/{repo}/git-receive-pack", s.wrap(s.handleGitReceivePack))

	// The pages.
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

	// Operations.
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /metrics", s.wrap(s.handleMetrics))
	s.mux.HandleFunc("GET /{owner}/{repo}/actions/runs/{run_index}/artifacts/{artifact_id}", s.wrap(s.handleWebArtifact))

	// Artifacts through GitHub's REST paths.
	s.dialect("GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts", s.handleRunArtifacts)
	s.dialect("GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}", s.handleArtifactGet)
	s.dialect("GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip", s.handleArtifactZip)

	// The services jobs' actions call (@actions/artifact, @actions/cache),
	// at the host's root, since the toolkit keeps only the origin of
	// ACTIONS_RESULTS_URL. Prefixes, ahead of the mux: their paths would
	// clash with /{owner}/{repo}/... there.
	s.prefixes = []prefixRoute{
		{jobsvc.ArtifactTwirpPrefix, s.handleRuntime},
		{jobsvc.CacheTwirpPrefix, s.handleRuntime},
		{jobsvc.ArtifactBlobPrefix, s.handleRuntime},
		{jobsvc.CacheBlobPrefix, s.handleRuntime},
		{jobsvc.CacheV1Prefix, s.handleRuntime},
	}
}

// apiPrefixes are where GitHub's REST dialect is mounted: the product's
// own /api/v1, and /api/v3, GitHub Enterprise Server's layout that gh and
// go-github's WithEnterpriseURLs use. Answers name the prefix the request
// came in through (apiBase).
var apiPrefixes = []string{"/api/v1", "/api/v3"}

// dialect registers a route of GitHub's REST dialect, pattern being
// "METHOD /path" below the API prefix, under every one of apiPrefixes.
func (s *server) dialect(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	method, path, _ := strings.Cut(pattern, " ")
	for _, p := range apiPrefixes {
		s.mux.HandleFunc(method+" "+p+path, s.wrap(h))
	}
}

// apiBase is the absolute URL of the REST API under the prefix r came in
// through (/api/v3 for GitHub Enterprise clients, else /api/v1), so that
// the URLs in an answer lead a client back the way it came.
func (s *server) apiBase(r *http.Request) string {
	for _, p := range apiPrefixes {
		if r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/") {
			return s.base(r) + p
		}
	}
	return s.base(r) + apiPrefixes[0]
}

// prefixRoute sends every request under prefix to h.
type prefixRoute struct {
	prefix string
	h      http.HandlerFunc
}

// ServeHTTP logs each request and makes every error under /api/ JSON,
// including the mux's own 404 and 405.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	switch {
	case isGitRequest(r):
		r.Body = http.MaxBytesReader(sw, r.Body, maxGitBody) // a push carries a pack
	case !isRuntimeBlob(r.URL.Path):
		r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
	}
	_, pattern := s.mux.Handler(r)
	if h := s.prefixHandler(r.URL.Path); h != nil {
		pattern = "runtime"
		h(sw, r)
	} else if pattern == "" && strings.HasPrefix(r.URL.Path, "/api/") {
		s.apiNoRoute(sw, r)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	s.store.Metrics().Request(pattern, sw.status, time.Since(start))
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "dur", time.Since(start).Round(time.Microsecond))
}

// apiNoRoute answers an /api/ request no route matched, in JSON: 405 with
// the Allow header when the path has routes under other methods, else 404.
func (s *server) apiNoRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPost, http.MethodPut} {
		probe := *r
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
}

// prefixHandler is the prefix route of path, or nil.
func (s *server) prefixHandler(path string) http.HandlerFunc {
	for _, p := range s.prefixes {
		if strings.HasPrefix(path, p.prefix) {
			return p.h
		}
	}
	return nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets live pages stream through the logging wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// wrap turns a handler that returns an error into an http.HandlerFunc.
func (s *server) wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.error(w, r, err)
		}
	}
}

// error is the one place an error becomes a response: the domain's codes
// map to their status (httpStatus); anything else is logged and the client
// hears only "internal error".
func (s *server) error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := apperr.HTTPStatus(errorCode(err)), errorMessage(err)
	if code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if isGitRequest(r) {
		// git asks for credentials only after a Basic challenge, and shows
		// a text answer.
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="shithub-actions"`)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		io.WriteString(w, gitErrorBody(msg))
		return
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="shithub-actions"`)
	}
	if s.web != nil && isPageRequest(r) {
		s.webError(w, r, code, msg)
		return
	}
	writeJSON(w, code, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// jsonBody is what writeJSON would write for v, for answers kept in a cache.
func jsonBody(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeJSONBody writes a body made by jsonBody.
func writeJSONBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(body)
}

// decodeJSON reads a request body into v, strictly: unknown fields and
// trailing data are errors a client should hear about.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return apperr.Malformedf("request body must be a JSON object")
		}
		return apperr.Malformedf("invalid JSON body: %v", err)
	}
	if dec.More() {
		return apperr.Malformedf("invalid JSON body: trailing data")
	}
	return nil
}

// pathID parses a numeric path value; anything else is not found, as an
// id that does not exist would be.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.ErrNotFound
	}
	return id, nil
}

// base is the absolute URL prefix links are made from.
func (s *server) base(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// timePtr renders a time as RFC 3339 UTC at second precision, nil for
// unset.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Second)
	return &t
}

// actionsTabURL is repo's Actions tab under base ("" gives a path).
func actionsTabURL(base string, repo *store.Repo) string {
	return base + "/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/actions"
}

// runPage is the page of run number idx of repo under base.
func runPage(base string, repo *store.Repo, idx int64) string {
	return fmt.Sprintf("%s/runs/%d", actionsTabURL(base, repo), idx)
}

func (s *server) Wake() {
	if s.exec != nil {
		s.exec.Wake()
	}
}

// repoFor loads the repository named in the path and checks that user may
// act on it at level p. A repository the user may not read is not found.
func (s *server) repoFor(r *http.Request, user *store.User, p store.Perm) (*store.Repo, error) {
	repo, got, err := s.readablePathRepo(r, user)
	if err != nil {
		return nil, err
	}
	if got < p {
		return nil, apperr.Forbiddenf("%s permission on %s required", p, repo.FullName())
	}
	return repo, nil
}

// readablePathRepo loads the repository named in the path with user's
// permission on it; one the user may not read is not found.
func (s *server) readablePathRepo(r *http.Request, user *store.User) (*store.Repo, store.Perm, error) {
	repo, err := s.store.RepoByName(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		return nil, store.PermNone, err
	}
	p, err := s.store.Permission(r.Context(), repo, user)
	if err != nil {
		return nil, store.PermNone, err
	}
	if p < store.PermRead {
		return nil, store.PermNone, apperr.ErrNotFound
	}
	return repo, p, nil
}

// readableRepo authenticates an optional PAT (which must carry repo:read
// when present) and loads the path's repository if the caller may read it.
func (s *server) readableRepo(r *http.Request) (*store.Repo, *store.User, error) {
	user, tok, err := s.authUser(r)
	if err != nil {
		return nil, nil, err
	}
	if tok != nil && !tok.HasScope(store.ScopeRead) {
		return nil, nil, store.ErrLacksScope(store.ScopeRead)
	}
	repo, err := s.repoFor(r, user, store.PermRead)
	return repo, user, err
}

// queryInt parses an optional integer query parameter within [lo, hi].
func queryInt(v string, def, lo, hi int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, apperr.Malformedf("%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// linkHeader builds GitHub's pagination Link header (RFC 8288).
func linkHeader(base string, q url.Values, page, perPage, total int) string {
	last := max(1, (total+perPage-1)/perPage)
	var links []string
	add := func(p int, rel string) {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(perPage))
		links = append(links, fmt.Sprintf(`<%s?%s>; rel="%s"`, base, v.Encode(), rel))
	}
	if page < last {
		add(page+1, "next")
		add(last, "last")
	}
	if page > 1 {
		add(1, "first")
		add(min(page-1, last), "prev")
	}
	return strings.Join(links, ", ")
}

// reap ends, every half minute, running jobs that nobody will finish.
func (s *server) reap(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.reapOnce(ctx)
	}
}

// reapOnce ends running jobs nobody will finish, puts back claims never
// acknowledged, and fails jobs no runner can take.
func (s *server) reapOnce(ctx context.Context) {
	if n, err := s.store.ReapJobs(ctx, s.localRunnerID, time.Minute, 2*time.Minute); err != nil {
		s.log.Error("reaping jobs", "err", err)
	} else if n > 0 {
		s.log.Warn("ended abandoned jobs", "count", n)
	}
	if ids, err := s.store.RequeueUnacked(ctx, s.localRunnerID, store.ClaimAckTimeout); err != nil {
		s.log.Error("requeueing unacknowledged claims", "err", err)
	} else if len(ids) > 0 {
		s.log.Warn("claims never acknowledged: the jobs are queued again", "jobs", ids)
		s.Wake()
	}
	var pool int64
	if s.exec != nil {
		pool = s.localRunnerID
	}
	if ids, err := s.store.FailUnservable(ctx, pool, s.queueTimeout); err != nil {
		s.log.Error("failing jobs no runner can take", "err", err)
	} else if len(ids) > 0 {
		s.log.Warn("failed jobs no runner can take", "jobs", ids)
	}
}
