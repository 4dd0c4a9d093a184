package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// testServer is a server on a temporary database with a fixed clock and a
// cast: alice owns alice/pub (public) and alice/priv (private); bob may
// write both, carol may read both, dave is an outsider.
type testServer struct {
	t      *testing.T
	store  *store.Store
	srv    *server
	clock  *testClock
	users  map[string]*store.User
	tokens map[string]string // user (or "user:read") → PAT
	pub    *store.Repo
	priv   *store.Repo
	runner *store.Runner
	rtoken string // runner token of runner
	git    string // a real git repository holding a workflow; both repos use it
	sha    string // its main commit
}

// testClock is an injectable clock that tests move by hand.
type testClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testWorkflow has two jobs, the second needing the first, and both
// triggers.
const testWorkflow = `name: CI
on:
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [low, high]
        default: low
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo building
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo testing
`

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerWith(t, store.Options{})
}

// newTestServerWith is newTestServer on a store opened with o; the clock
// and the server URL are the test server's own.
func newTestServerWith(t *testing.T, o store.Options) *testServer {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	o.Now, o.ServerURL = clock.Now, "https://ci.example"
	st, err := openStore(filepath.Join(t.TempDir(), "test.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := &testServer{
		t: t, store: st, clock: clock,
		srv:   newServer(st, slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ci.example"),
		users: map[string]*store.User{}, tokens: map[string]string{},
	}
	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		u, err := st.CreateUser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ts.users[name] = u
		_, secret, err := st.CreateToken(ctx, u, "", []string{store.ScopeRead, store.ScopeWrite}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[name] = secret
		_, secret, err = st.CreateToken(ctx, u, "", []string{store.ScopeRead}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[name+":read"] = secret
	}
	ts.git, ts.sha = newGitRepo(t, map[string]string{".shithub/workflows/ci.yml": testWorkflow, "README": "hi\n"})
	if ts.pub, err = st.CreateRepo(ctx, ts.users["alice"], "pub", filepath.Join(ts.git, ".git"), false); err != nil {
		t.Fatal(err)
	}
	if ts.priv, err = st.CreateRepo(ctx, ts.users["alice"], "priv", filepath.Join(ts.git, ".git"), true); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*store.Repo{ts.pub, ts.priv} {
		if err := st.Grant(ctx, r, ts.users["bob"], store.PermWrite); err != nil {
			t.Fatal(err)
		}
		if err := st.Grant(ctx, r, ts.users["carol"], store.PermRead); err != nil {
			t.Fatal(err)
		}
	}
	if ts.runner, ts.rtoken, err = st.CreateRunner(ctx, "r1", []string{"ubuntu-latest"}); err != nil {
		t.Fatal(err)
	}
	return ts
}

// newRun makes a push run of the test workflow on repo directly in the
// Store and returns it with its jobs (build, then test).
func (ts *testServer) newRun(repo *store.Repo) (*store.Run, []*store.Job) {
	ts.t.Helper()
	ctx := context.Background()
	wf, err := workflow.Parse("ci.yml", []byte(testWorkflow))
	if err != nil {
		ts.t.Fatal(err)
	}
	runs, _, err := ts.store.CreateRuns(ctx, nil, []store.RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/ci.yml", Content: []byte(testWorkflow), Workflow: wf,
		HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	jobs, err := ts.store.RunJobs(ctx, runs[0].ID)
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0], jobs
}

// request is one HTTP exchange with the server.
type request struct {
	method, path string
	auth         string // the Authorization header, verbatim
	body         string
	header       map[string]string
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (ts *testServer) do(rq request) response {
	ts.t.Helper()
	req := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	if rq.auth != "" {
		req.Header.Set("Authorization", rq.auth)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	ts.srv.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func bearer(tok string) string { return "Bearer " + tok }

// want checks a response's status and decodes its JSON body into v (when
// not nil).
func (ts *testServer) want(rq request, code int, v any) response {
	ts.t.Helper()
	res := ts.do(rq)
	if res.code != code {
		ts.t.Fatalf("%s %s: status = %d, want %d; body %s", rq.method, rq.path, res.code, code, res.body)
	}
	if v != nil {
		if err := json.Unmarshal(res.body, v); err != nil {
			ts.t.Fatalf("%s %s: decoding %s: %v", rq.method, rq.path, res.body, err)
		}
	}
	return res
}

// runner API helpers, as a runner would call them.
func (ts *testServer) heartbeat() *protocol.Job {
	ts.t.Helper()
	res := ts.do(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: bearer(ts.rtoken), body: `{"labels":["ubuntu-latest"],"capacity":1}`})
	switch res.code {
	case http.StatusNoContent:
		return nil
	case http.StatusOK:
		var j protocol.Job
		if err := json.Unmarshal(res.body, &j); err != nil {
			ts.t.Fatal(err)
		}
		return &j
	}
	ts.t.Fatalf("POST /api/v1/runners/heartbeat: status = %d; body %s", res.code, res.body)
	return nil
}

func (ts *testServer) jobStatus(id int64, conclusion string, code int) {
	ts.t.Helper()
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/status", id), auth: bearer(ts.rtoken),
		body: `{"status":"completed","conclusion":"` + conclusion + `"}`}, code, nil)
}

func (ts *testServer) run(id int64) *store.Run {
	ts.t.Helper()
	r, err := ts.store.RunByID(context.Background(), id)
	if err != nil {
		ts.t.Fatal(err)
	}
	return r
}

func (ts *testServer) job(id int64) *store.Job {
	ts.t.Helper()
	j, err := ts.store.JobByID(context.Background(), id)
	if err != nil {
		ts.t.Fatal(err)
	}
	return j
}

// jsonKeys returns the sorted top-level keys of a JSON object.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// follow GETs path (with auth), which must answer 302 to a signed log URL,
// then GETs that URL with no token, which must answer 200.
func (ts *testServer) follow(path, auth string) response {
	ts.t.Helper()
	res := ts.do(request{method: "GET", path: path, auth: auth})
	if res.code != http.StatusFound {
		ts.t.Fatalf("GET %s: status = %d, want 302; body %s", path, res.code, res.body)
	}
	loc := res.header.Get("Location")
	rel, ok := strings.CutPrefix(loc, "https://ci.example")
	if !ok {
		ts.t.Fatalf("GET %s: Location = %q, want a URL under https://ci.example", path, loc)
	}
	got := ts.do(request{method: "GET", path: rel})
	if got.code != http.StatusOK {
		ts.t.Fatalf("GET %s (from %s): status = %d, want 200; body %s", loc, path, got.code, got.body)
	}
	return got
}

// str is a nullable JSON string's value, "" for null.
func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
