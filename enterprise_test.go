package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEnterpriseLayout: GitHub's REST dialect answers under /api/v3 (GitHub
// Enterprise Server's layout) exactly as under /api/v1, but for the URLs
// in its answers, which name the prefix the client came in through. What
// is not GitHub's (the runner protocol, the product's own trigger and
// lifecycle routes) stays under /api/v1 only.
func TestEnterpriseLayout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	run, jobs := ts.newRun(ts.priv)
	j := ts.heartbeat()
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/annotations", j.JobID), auth: bearer(ts.rtoken),
		body: fmt.Sprintf(`{"step_id":%d,"level":"warning","message":"careful","file":"a.go","line":2}`, j.Steps[0].ID)}, 202, nil)
	alice := bearer(ts.tokens["alice"])
	repo := "/repos/alice/priv"
	for _, p := range []string{
		"/", repo, "/users/alice",
		repo + "/actions/runs", repo + "/actions/runs?per_page=1&page=1",
		fmt.Sprintf("%s/actions/runs/%d", repo, run.ID),
		fmt.Sprintf("%s/actions/runs/%d/jobs", repo, run.ID),
		fmt.Sprintf("%s/actions/runs/%d/attempts/1", repo, run.ID),
		fmt.Sprintf("%s/actions/runs/%d/attempts/1/jobs", repo, run.ID),
		fmt.Sprintf("%s/actions/runs/%d/artifacts", repo, run.ID),
		fmt.Sprintf("%s/actions/jobs/%d", repo, jobs[0].ID),
		fmt.Sprintf("%s/check-runs/%d/annotations", repo, jobs[0].ID),
		repo + "/actions/workflows", repo + "/actions/workflows/ci.yml", repo + "/actions/workflows/ci.yml/runs",
		repo + "/actions/secrets", repo + "/actions/secrets/public-key", repo + "/actions/variables",
		repo + "/actions/permissions/access",
		repo + "/actions/runs/999999", // errors too
	} {
		v1 := ts.do(request{method: "GET", path: "/api/v1" + p, auth: alice})
		v3 := ts.do(request{method: "GET", path: "/api/v3" + p, auth: alice})
		if v1.code != v3.code || v1.header.Get("Content-Type") != v3.header.Get("Content-Type") {
			t.Errorf("GET %s: v1 %d, v3 %d", p, v1.code, v3.code)
		}
		if strings.Contains(string(v3.body), "/api/v1") || strings.Contains(v3.header.Get("Link"), "/api/v1") {
			t.Errorf("GET /api/v3%s names /api/v1: %s %s", p, v3.header.Get("Link"), v3.body)
		}
		if got := strings.ReplaceAll(string(v3.body), "/api/v3", "/api/v1"); got != string(v1.body) {
			t.Errorf("GET %s: v3's answer differs from v1's by more than the prefix:\nv1 %s\nv3 %s", p, v1.body, v3.body)
		}
		if got := strings.ReplaceAll(v3.header.Get("Link"), "/api/v3", "/api/v1"); got != v1.header.Get("Link") {
			t.Errorf("GET %s: Link v1 %q, v3 %q", p, v1.header.Get("Link"), v3.header.Get("Link"))
		}
	}
	// The log redirect stays under /api/v3, and its target answers there.
	res := ts.do(request{method: "GET", path: fmt.Sprintf("/api/v3%s/actions/jobs/%d/logs", repo, jobs[0].ID), auth: alice})
	loc := res.header.Get("Location")
	if res.code != http.StatusFound || !strings.HasPrefix(loc, "https://ci.example/api/v3/signed-logs/job/") {
		t.Fatalf("job logs under v3: %d to %q", res.code, loc)
	}
	ts.want(request{method: "GET", path: strings.TrimPrefix(loc, "https://ci.example")}, 200, nil)
	// Writes, in GitHub's paths: a cancel under /api/v3.
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v3%s/actions/runs/%d/cancel", repo, run.ID), auth: alice}, 202, nil)
	ts.jobStatus(j.JobID, "cancelled", 200)
	res = ts.want(request{method: "POST", path: fmt.Sprintf("/api/v3%s/actions/runs/%d/rerun", repo, run.ID), auth: alice}, 201, nil)
	if loc := res.header.Get("Location"); !strings.HasPrefix(loc, "https://ci.example/api/v3/repos/alice/priv/actions/runs/") {
		t.Errorf("rerun under v3: Location %q", loc)
	}

	// Not GitHub's: not under /api/v3.
	for _, rq := range []request{
		{method: "POST", path: "/api/v3/runners/heartbeat", auth: bearer(ts.rtoken), body: `{"labels":["ubuntu-latest"],"capacity":1}`},
		{method: "POST", path: fmt.Sprintf("/api/v3/jobs/%d/logs", j.JobID), auth: bearer(ts.rtoken), body: `{}`},
		{method: "POST", path: fmt.Sprintf("/api/v3/runs/%d/cancel", run.ID), auth: alice},
		{method: "POST", path: "/api/v3/repos/alice/priv/actions/events/push", auth: alice, body: `{}`},
		{method: "GET", path: "/api/v4/repos/alice/priv"},
	} {
		if res := ts.do(rq); res.code != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", rq.method, rq.path, res.code)
		}
	}
}

// TestAPIRoot: GET /api/v1/ and /api/v3/ answer as GitHub's root does,
// anonymously, and refuse a bad token (gh auth login checks one there).
func TestAPIRoot(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, prefix := range []string{"/api/v1", "/api/v3"} {
		var root map[string]string
		ts.want(request{method: "GET", path: prefix + "/"}, 200, &root)
		if root["repository_url"] != "https://ci.example"+prefix+"/repos/{owner}/{repo}" || root["graphql_url"] != "https://ci.example/api/graphql" {
			t.Errorf("GET %s/ = %v", prefix, root)
		}
		res := ts.want(request{method: "GET", path: prefix + "/", auth: bearer(ts.tokens["alice:read"])}, 200, nil)
		if res.header.Get("X-OAuth-Scopes") != "" {
			t.Errorf("GET %s/ sent X-OAuth-Scopes %q: gh would read GitHub's scopes in it", prefix, res.header.Get("X-OAuth-Scopes"))
		}
		ts.want(request{method: "GET", path: prefix + "/", auth: bearer("shithub_pat_wrong")}, 401, nil)
		ts.want(request{method: "POST", path: prefix + "/"}, 405, nil)
	}
}

// TestCheckRunAnnotations: a job's annotations at its check_run_url, in
// GitHub's check-annotation shape, readable as the job is.
func TestCheckRunAnnotations(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	_, jobs := ts.newRun(ts.priv)
	j := ts.heartbeat()
	for _, a := range []string{
		`{"step_id":%d,"level":"error","message":"boom","file":"main.go","line":3,"col":5,"end_line":3,"end_column":9,"title":"vet"}`,
		`{"step_id":%d,"level":"warning","message":"two lines","file":"a.go","line":4,"col":2,"end_line":6,"end_column":1}`,
		`{"step_id":%d,"level":"notice","message":"no file"}`,
	} {
		ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/annotations", j.JobID), auth: bearer(ts.rtoken),
			body: fmt.Sprintf(a, j.Steps[0].ID)}, 202, nil)
	}
	carol := bearer(ts.tokens["carol:read"])
	var job jobJSON
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v3/repos/alice/priv/actions/jobs/%d", jobs[0].ID), auth: carol}, 200, &job)
	path := strings.TrimPrefix(job.CheckRunURL, "https://ci.example") + "/annotations"
	if path != fmt.Sprintf("/api/v3/repos/alice/priv/check-runs/%d/annotations", jobs[0].ID) {
		t.Fatalf("check_run_url = %q", job.CheckRunURL)
	}
	res := ts.want(request{method: "GET", path: path, auth: carol}, 200, nil)
	var got []map[string]any
	json.Unmarshal(res.body, &got)
	want := []map[string]any{
		{"path": "main.go", "blob_href": "", "start_line": 3.0, "start_column": 5.0, "end_line": 3.0, "end_column": 9.0,
			"annotation_level": "failure", "title": "vet", "message": "boom", "raw_details": nil},
		{"path": "a.go", "blob_href": "", "start_line": 4.0, "start_column": nil, "end_line": 6.0, "end_column": nil,
			"annotation_level": "warning", "title": "", "message": "two lines", "raw_details": nil},
		{"path": ".github", "blob_href": "", "start_line": 1.0, "start_column": nil, "end_line": 1.0, "end_column": nil,
			"annotation_level": "notice", "title": "", "message": "no file", "raw_details": nil},
	}
	if gotJSON, wantJSON := fmt.Sprint(got), fmt.Sprint(want); gotJSON != wantJSON {
		t.Errorf("annotations:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// Pages, GitHub's way.
	res = ts.want(request{method: "GET", path: path + "?per_page=2&page=2", auth: carol}, 200, nil)
	if json.Unmarshal(res.body, &got); len(got) != 1 || got[0]["message"] != "no file" || !strings.Contains(res.header.Get("Link"), `rel="first"`) {
		t.Errorf("page 2: %s, Link %q", res.body, res.header.Get("Link"))
	}
	ts.want(request{method: "GET", path: path + "?per_page=0", auth: carol}, 400, nil)
	// The attacker's view: no read permission, another repository's job,
	// no such job: all not found.
	ts.want(request{method: "GET", path: path}, 404, nil)
	ts.want(request{method: "GET", path: path, auth: bearer(ts.tokens["dave"])}, 404, nil)
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/check-runs/%d/annotations", jobs[0].ID), auth: carol}, 404, nil)
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/check-runs/999999/annotations", auth: carol}, 404, nil)
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/check-runs/x/annotations", auth: carol}, 404, nil)
	// A job with none: an empty list, not null.
	res = ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/priv/check-runs/%d/annotations", jobs[1].ID), auth: carol}, 200, nil)
	if strings.TrimSpace(string(res.body)) != "[]" {
		t.Errorf("no annotations: %s, want []", res.body)
	}
}
