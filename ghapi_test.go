package main

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
)

// The required fields of GitHub's workflow-run and job, from GitHub's REST
// API description (github/rest-api-description, api.github.com 2022-11-28,
// components/schemas/workflow-run and job), with the JSON types each may
// have. Fields GitHub lists but does not require, and that clients read, are
// in the "also" lists.
var (
	ghRunRequired = map[string][]string{
		"id": {"integer"}, "node_id": {"string"}, "head_branch": {"string", "null"}, "run_number": {"integer"},
		"display_title": {"string"}, "event": {"string"}, "status": {"string", "null"}, "conclusion": {"string", "null"},
		"head_sha": {"string"}, "path": {"string"}, "workflow_id": {"integer"}, "url": {"string"}, "html_url": {"string"},
		"created_at": {"string"}, "updated_at": {"string"}, "head_commit": {"object", "null"}, "head_repository": {"object"},
		"repository": {"object"}, "jobs_url": {"string"}, "logs_url": {"string"}, "check_suite_url": {"string"},
		"cancel_url": {"string"}, "rerun_url": {"string"}, "artifacts_url": {"string"}, "workflow_url": {"string"},
		"pull_requests": {"array", "null"},
	}
	ghRunAlso = map[string][]string{
		"name": {"string", "null"}, "run_attempt": {"integer"}, "run_started_at": {"string"}, "actor": {"object"},
		"triggering_actor": {"object"}, "previous_attempt_url": {"string", "null"}, "referenced_workflows": {"array", "null"},
	}
	ghJobRequired = map[string][]string{
		"id": {"integer"}, "node_id": {"string"}, "run_id": {"integer"}, "run_url": {"string"}, "head_sha": {"string"},
		"workflow_name": {"string", "null"}, "head_branch": {"string", "null"}, "name": {"string"}, "url": {"string"},
		"html_url": {"string", "null"}, "status": {"string"}, "conclusion": {"string", "null"}, "created_at": {"string"},
		"started_at": {"string"}, "completed_at": {"string", "null"}, "check_run_url": {"string"}, "labels": {"array"},
		"runner_id": {"integer", "null"}, "runner_name": {"string", "null"}, "runner_group_id": {"integer", "null"},
		"runner_group_name": {"string", "null"},
	}
	ghJobAlso   = map[string][]string{"run_attempt": {"integer"}, "steps": {"array"}}
	ghStepReq   = map[string][]string{"name": {"string"}, "status": {"string"}, "conclusion": {"string", "null"}, "number": {"integer"}}
	ghUserReq   = map[string][]string{"login": {"string"}, "id": {"integer"}, "node_id": {"string"}, "url": {"string"}, "html_url": {"string"}, "type": {"string"}}
	ghRepoReq   = map[string][]string{"id": {"integer"}, "name": {"string"}, "full_name": {"string"}, "private": {"boolean"}, "owner": {"object"}, "html_url": {"string"}, "url": {"string"}, "default_branch": {"string"}}
	ghCommitReq = map[string][]string{"id": {"string"}, "tree_id": {"string"}, "message": {"string"}, "timestamp": {"string"}, "author": {"object", "null"}, "committer": {"object", "null"}}

	ghRunStatuses   = []string{"requested", "in_progress", "completed", "queued", "pending", "waiting"}
	ghJobStatuses   = []string{"queued", "in_progress", "completed", "waiting", "requested", "pending"}
	ghConclusionSet = []string{"success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required", "stale"}
)

// jsonKind is the JSON type of a decoded value (numbers as json.Number).
func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// checkFields checks that obj has every field of want with one of its
// types.
func checkFields(t *testing.T, what string, obj map[string]any, want map[string][]string) {
	t.Helper()
	for k, kinds := range want {
		v, ok := obj[k]
		if !ok {
			t.Errorf("%s lacks GitHub's field %q", what, k)
			continue
		}
		if !slices.Contains(kinds, jsonKind(v)) {
			t.Errorf("%s.%s is %s (%v), want %v", what, k, jsonKind(v), v, kinds)
		}
	}
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return m
}

// checkRunSchema checks a run object against GitHub's workflow-run.
func checkRunSchema(t *testing.T, b []byte) {
	t.Helper()
	run := decodeObject(t, b)
	checkFields(t, "run", run, ghRunRequired)
	checkFields(t, "run", run, ghRunAlso)
	if st, _ := run["status"].(string); !slices.Contains(ghRunStatuses, st) {
		t.Errorf("run status %q is not one of GitHub's %v", st, ghRunStatuses)
	}
	if c, ok := run["conclusion"].(string); ok && !slices.Contains(ghConclusionSet, c) {
		t.Errorf("run conclusion %q is not one of GitHub's", c)
	}
	for _, k := range []string{"actor", "triggering_actor"} {
		u, _ := run[k].(map[string]any)
		checkFields(t, "run."+k, u, ghUserReq)
	}
	for _, k := range []string{"repository", "head_repository"} {
		r, _ := run[k].(map[string]any)
		checkFields(t, "run."+k, r, ghRepoReq)
		o, _ := r["owner"].(map[string]any)
		checkFields(t, "run."+k+".owner", o, ghUserReq)
	}
	if c, ok := run["head_commit"].(map[string]any); ok {
		checkFields(t, "run.head_commit", c, ghCommitReq)
	}
	for _, k := range []string{"created_at", "updated_at", "run_started_at"} {
		if s, _ := run[k].(string); s != "" {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				t.Errorf("run.%s = %q is not ISO 8601: %v", k, s, err)
			}
		}
	}
}

// checkJobSchema checks a job object against GitHub's job.
func checkJobSchema(t *testing.T, b []byte) {
	t.Helper()
	job := decodeObject(t, b)
	checkFields(t, "job", job, ghJobRequired)
	checkFields(t, "job", job, ghJobAlso)
	if st, _ := job["status"].(string); !slices.Contains(ghJobStatuses, st) {
		t.Errorf("job status %q is not one of GitHub's %v", st, ghJobStatuses)
	}
	if c, ok := job["conclusion"].(string); ok && !slices.Contains(ghConclusionSet, c) {
		t.Errorf("job conclusion %q is not one of GitHub's", c)
	}
	steps, _ := job["steps"].([]any)
	if len(steps) == 0 {
		t.Errorf("job has no steps")
	}
	for i, s := range steps {
		st, _ := s.(map[string]any)
		checkFields(t, fmt.Sprintf("job.steps[%d]", i), st, ghStepReq)
	}
}

// TestGoldenGitHubRunAndJob: a run pushed through the API and one of its
// jobs, half done, are golden files, and every field GitHub's schema
// requires is there with its type.
func TestGoldenGitHubRunAndJob(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var pushed runsJSON
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["bob"]),
		body: fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, git.ZeroSHA, ts.sha)}, 201, &pushed)
	ts.clock.Add(3 * time.Second)
	j := ts.heartbeat()
	ts.clock.Add(2 * time.Second)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", j.JobID, j.Steps[0].ID), auth: bearer(ts.rtoken),
		body: `{"status":"completed","conclusion":"success"}`}, 200, nil)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", j.JobID, j.Steps[1].ID), auth: bearer(ts.rtoken),
		body: `{"status":"running"}`}, 200, nil)

	run := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d", j.RunID)}, 200, nil)
	golden(t, "github/run.json", run.body)
	checkRunSchema(t, run.body)
	job := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d", j.JobID)}, 200, nil)
	golden(t, "github/job.json", job.body)
	checkJobSchema(t, job.body)

	// The other shapes: every run of a list, every job of a run (the
	// queued one too), a completed run after a re-run.
	var list struct {
		WorkflowRuns []json.RawMessage `json:"workflow_runs"`
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs"}, 200, &list)
	for _, r := range list.WorkflowRuns {
		checkRunSchema(t, r)
	}
	var jobs struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/jobs", j.RunID)}, 200, &jobs)
	if len(jobs.Jobs) != 2 {
		t.Fatalf("jobs = %d, want 2", len(jobs.Jobs))
	}
	for _, jb := range jobs.Jobs {
		checkJobSchema(t, jb)
	}
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", j.RunID), auth: bearer(ts.tokens["bob"])}, 202, nil)
	ts.jobStatus(j.JobID, protocol.ConclusionCancelled, 200)
	res := ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", j.RunID), auth: bearer(ts.tokens["bob"])}, 201, nil)
	var rr rerunResponse
	json.Unmarshal(res.body, &rr)
	for _, id := range []int64{j.RunID, rr.RunID} {
		r := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d", id)}, 200, nil)
		checkRunSchema(t, r.body)
	}
}

// TestListRunsPlans: the runs list and its count use an index for every
// filter and every pair of filters, never a scan of runs or a sort.
func TestListRunsPlans(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for range 3 {
		ts.newRun(ts.pub)
	}
	filters := map[string]store.RunFilter{
		"none":         {},
		"workflow":     {WorkflowFile: "ci.yml"},
		"workflow id":  {WorkflowID: 1},
		"branch":       {Branch: "main"},
		"actor":        {Actor: "alice"},
		"event":        {Event: "push"},
		"status":       {Status: protocol.StatusQueued},
		"conclusion":   {Conclusion: protocol.ConclusionFailure},
		"head_sha":     {HeadSHA: ts.sha},
		"created from": {CreatedFrom: 1},
		"created to":   {CreatedTo: 1 << 50},
		"created":      {CreatedFrom: 1, CreatedTo: 1 << 50},
	}
	names := []string{}
	for n := range filters {
		names = append(names, n)
	}
	slices.Sort(names)
	// Pairs too: a filter with another must still find an index.
	for _, a := range names {
		for _, b := range names {
			if a < b && a != "none" && b != "none" {
				f := filters[a]
				g := filters[b]
				merged := f
				for _, set := range []func(){
					func() { merged.WorkflowFile = max(f.WorkflowFile, g.WorkflowFile) },
					func() { merged.WorkflowID = max(f.WorkflowID, g.WorkflowID) },
					func() { merged.Branch = max(f.Branch, g.Branch) },
					func() { merged.Actor = max(f.Actor, g.Actor) },
					func() { merged.Event = max(f.Event, g.Event) },
					func() { merged.Status = max(f.Status, g.Status) },
					func() { merged.Conclusion = max(f.Conclusion, g.Conclusion) },
					func() { merged.HeadSHA = max(f.HeadSHA, g.HeadSHA) },
					func() { merged.CreatedFrom = max(f.CreatedFrom, g.CreatedFrom) },
					func() { merged.CreatedTo = max(f.CreatedTo, g.CreatedTo) },
				} {
					set()
				}
				filters[a+"+"+b] = merged
			}
		}
	}
	// Each filter that can drive a list, and the index it walks.
	driverIndex := map[string]string{
		"workflow": "runs_repo_workflow", "branch": "runs_repo_ref", "actor": "runs_repo_actor", "event": "runs_repo_event",
		"status": "runs_repo_status", "conclusion": "runs_repo_conclusion", "sha": "runs_repo_sha",
		"workflow+status": "runs_repo_workflow_status", "workflow+conclusion": "runs_repo_workflow_conclusion",
	}
	for name, f := range filters {
		if f.Counted() {
			continue // no filter, or a workflow alone: paged through run_blocks (TestReadPathPlans)
		}
		// With two filters, the list walks the index of the one pickDriver
		// chose, whichever that is.
		for _, d := range slices.Sorted(maps.Keys(driverIndex)) {
			g, none := f, f
			g.Driver, none.Driver = d, "nothing"
			cond, _ := g.Where(ts.pub.ID)
			all, _ := none.Where(ts.pub.ID)
			if n := strings.Count(all, "+"); n < 2 || strings.Count(cond, "+") != n-len(strings.Split(d, "+")) {
				continue // one filter alone, or d is not among f's
			}
			_, plan := historyScans(t, ts.store.DBForTest(), "SELECT r.created_at, r.id FROM runs r WHERE "+cond+" ORDER BY r.created_at DESC, r.id DESC LIMIT 1 OFFSET ?")
			if p := strings.Join(plan, " | "); !strings.Contains(p, "INDEX "+driverIndex[d]+" ") || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("filter %s driven by %s: plan %q, want %s and no sort", name, d, p, driverIndex[d])
			}
		}
		cond, args := f.Where(ts.pub.ID)
		queries := map[string][]any{
			"SELECT r.created_at, r.id FROM runs r WHERE " + cond + " ORDER BY r.created_at DESC, r.id DESC LIMIT 1 OFFSET ?":                  append(slices.Clone(args), 30),
			"SELECT " + store.RunCols + " WHERE " + cond + " AND (r.created_at, r.id) <= (?, ?) ORDER BY r.created_at DESC, r.id DESC LIMIT ?": append(slices.Clone(args), 0, 0, 30),
			"SELECT COUNT(*) FROM (SELECT 1 FROM runs r WHERE " + cond + " LIMIT ?)":                                                           append(slices.Clone(args), 1000),
		}
		for q, qargs := range queries {
			rows, err := ts.store.DBForTest().Query("EXPLAIN QUERY PLAN "+q, qargs...)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				rows.Scan(&id, &parent, &notused, &detail)
				plan = append(plan, detail)
			}
			rows.Close()
			p := strings.Join(plan, "; ")
			if strings.Contains(p, "SCAN r") || strings.Contains(p, "SCAN runs") || strings.Contains(p, "TEMP B-TREE") || !strings.Contains(p, "USING") {
				t.Errorf("filter %s: plan %q scans runs or sorts", name, p)
			}
		}
		// And the filter means what it says.
		if _, _, err := ts.store.ListRuns(context.Background(), ts.pub.ID, f, 1, 30); err != nil {
			t.Errorf("filter %s: %v", name, err)
		}
	}
}

// TestGitHubRunFilters covers GitHub's query parameters of the runs list.
func TestGitHubRunFilters(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	// #1 push by alice on main, #2 dispatch by bob (completed failure),
	// #3 push by alice a day later.
	ts.newRun(ts.pub)
	ts.clock.Add(time.Hour)
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/workflows/ci.yml/dispatches", auth: bearer(ts.tokens["bob"]),
		body: `{"ref":"main"}`}, 204, nil)
	ts.heartbeat() // #1's build
	ts.clock.Add(24 * time.Hour)
	r3, _ := ts.newRun(ts.pub)
	var list runsJSON
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?event=workflow_dispatch"}, 200, &list)
	r2 := list.WorkflowRuns[0]
	if _, err := ts.store.CancelJobs(context.Background(), r2.ID, 0); err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("0", 39) + "1"
	tests := []struct {
		query string
		want  []int64 // run numbers
	}{
		{"", []int64{3, 2, 1}},
		{"actor=bob", []int64{2}},
		{"actor=nobody", nil},
		{"branch=main", []int64{3, 2, 1}},
		{"branch=dev", nil},
		{"event=push", []int64{3, 1}},
		{"status=queued", []int64{3}},
		{"status=in_progress", []int64{1}},
		{"status=running", []int64{1}},
		{"status=completed", []int64{2}},
		{"status=cancelled", []int64{2}},
		{"status=success", nil},
		{"status=waiting", nil},
		{"conclusion=cancelled", []int64{2}},
		{"head_sha=" + ts.sha, []int64{3, 2, 1}},
		{"head_sha=" + other, nil},
		{"created=2026-11-23", []int64{2, 1}},
		{"created=2026-11-24", []int64{3}},
		{"created=>2026-11-23", []int64{3}},
		{"created=>=2026-11-23", []int64{3, 2, 1}},
		{"created=<2026-11-24", []int64{2, 1}},
		{"created=<=2026-11-23", []int64{2, 1}},
		{"created=2026-11-23T12:30:00Z..*", []int64{3, 2}},
		{"created=*..2026-11-23T12:00:00Z", []int64{1}},
		{"created=2026-11-01..2026-11-30", []int64{3, 2, 1}},
		{"created=>2026-11-23T13:00:00%2B01:00", []int64{3, 2}},
		{"exclude_pull_requests=true&check_suite_id=42", []int64{3, 2, 1}},
		{"workflow_file=ci.yml&per_page=500", []int64{3, 2, 1}},
		{"per_page=2&page=2", []int64{1}},
	}
	for _, tt := range tests {
		var l runsJSON
		ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?" + tt.query}, 200, &l)
		var got []int64
		for _, r := range l.WorkflowRuns {
			got = append(got, r.RunNumber)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("GET …/runs?%s: runs %v, want %v", tt.query, got, tt.want)
		}
		if tt.query != "per_page=2&page=2" && l.TotalCount != len(tt.want) {
			t.Errorf("GET …/runs?%s: total_count %d, want %d", tt.query, l.TotalCount, len(tt.want))
		}
	}
	for _, q := range []string{"status=great", "created=yesterday", "created=2026-13-01", "exclude_pull_requests=maybe", "check_suite_id=x", "per_page=0"} {
		if res := ts.do(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?" + q}); res.code != 400 {
			t.Errorf("GET …/runs?%s: status = %d, want 400", q, res.code)
		}
	}
	// The runs of one workflow, by id and by file.
	var byWF runsJSON
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/workflows/%d/runs?status=queued", r3.WorkflowID)}, 200, &byWF)
	if byWF.TotalCount != 1 || byWF.WorkflowRuns[0].RunNumber != 3 {
		t.Errorf("runs of workflow %d = %+v", r3.WorkflowID, byWF)
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/workflows/ci.yml/runs"}, 200, &byWF)
	if byWF.TotalCount != 3 {
		t.Errorf("runs of ci.yml: total %d, want 3", byWF.TotalCount)
	}
}

// TestGitHubSearchLimit: with GitHub's search filters a list reaches at
// most 1,000 runs, as GitHub's; without them the count is exact.
func TestGitHubSearchLimit(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	run, _ := ts.newRun(ts.pub)
	// 1,004 more runs, fast: copies of the first row.
	if err := ts.store.WithTx(ctx, func(tx *sql.Tx) error {
		for i := range 1004 {
			if _, err := tx.Exec(`INSERT INTO runs (uuid, repo_id, run_index, workflow_file, workflow_name, workflow_content, head_sha, head_ref,
				event, actor_id, status, created_at, updated_at, workflow_id) SELECT ?, repo_id, ?, workflow_file, workflow_name, workflow_content,
				head_sha, head_ref, event, actor_id, status, created_at + ?, updated_at, workflow_id FROM runs WHERE id = ?`,
				fmt.Sprint("u", i), i+2, i+1, run.ID); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var l runsJSON
	res := ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?per_page=100"}, 200, &l)
	if l.TotalCount != 1005 || !strings.Contains(res.header.Get("Link"), "page=11") {
		t.Errorf("unfiltered: total %d, Link %q; want 1005 and a last page 11", l.TotalCount, res.header.Get("Link"))
	}
	res = ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?per_page=100&event=push"}, 200, &l)
	if l.TotalCount != 1000 || !strings.Contains(res.header.Get("Link"), `page=10&per_page=100>; rel="last"`) {
		t.Errorf("filtered: total %d, Link %q; want 1000 and a last page 10", l.TotalCount, res.header.Get("Link"))
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?per_page=100&event=push&page=11"}, 200, &l)
	if len(l.WorkflowRuns) != 0 {
		t.Errorf("filtered page 11 has %d runs, want none", len(l.WorkflowRuns))
	}
	// The kept count follows inserts (and deletes) by trigger.
	if _, err := ts.store.WriteDBForTest().Exec("DELETE FROM runs WHERE run_index = 1005"); err != nil {
		t.Fatal(err)
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?workflow_file=ci.yml"}, 200, &l)
	if l.TotalCount != 1004 {
		t.Errorf("after a delete: total %d, want 1004", l.TotalCount)
	}
}

func TestParseCreated(t *testing.T) {
	day := func(s string) int64 { tm, _ := time.Parse(time.DateOnly, s); return tm.UnixMilli() }
	at := func(s string) int64 { tm, _ := time.Parse(time.RFC3339, s); return tm.UnixMilli() }
	tests := []struct {
		in       string
		from, to int64
		bad      bool
	}{
		{in: "2024-01-31", from: day("2024-01-31"), to: day("2024-02-01")},
		{in: ">2024-01-31", from: day("2024-02-01")},
		{in: ">=2024-01-31", from: day("2024-01-31")},
		{in: "<2024-01-31", to: day("2024-01-31")},
		{in: "<=2024-01-31", to: day("2024-02-01")},
		{in: "2024-01-01..2024-01-31", from: day("2024-01-01"), to: day("2024-02-01")},
		{in: "2024-01-01..*", from: day("2024-01-01")},
		{in: "*..2024-01-01", to: day("2024-01-02")},
		{in: "*..*"},
		{in: "2024-01-01T10:00:00Z", from: at("2024-01-01T10:00:00Z"), to: at("2024-01-01T10:00:01Z")},
		{in: ">2024-01-01T10:00:00+02:00", from: at("2024-01-01T08:00:01Z")},
		{in: "2024-01-01T10:00", from: at("2024-01-01T10:00:00Z"), to: at("2024-01-01T10:01:00Z")},
		{in: "", bad: true},
		{in: "yesterday", bad: true},
		{in: ">", bad: true},
		{in: "2024-02-30", bad: true},
		{in: "2024-02-01..2024-01-01", bad: true},
		{in: "2024-01-01..", bad: true},
		{in: ">=<2024-01-01", bad: true},
	}
	for _, tt := range tests {
		from, to, err := parseCreated(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseCreated(%q) = %d, %d; want an error", tt.in, from, to)
			}
			continue
		}
		if err != nil || from != tt.from || to != tt.to {
			t.Errorf("parseCreated(%q) = %d, %d, %v; want %d, %d", tt.in, from, to, err, tt.from, tt.to)
		}
	}
}

func FuzzParseCreated(f *testing.F) {
	for _, s := range []string{"2024-01-31", ">=2024-01-01", "2024-01-01..*", "*..2024-01-01T10:00:00Z", "<=2024-01-01T10:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := parseCreated(s)
		if err != nil {
			if errorCode(err) != apperr.Malformed {
				t.Fatalf("parseCreated(%q): %v is not a malformed-input error", s, err)
			}
			return
		}
		if from != 0 && to != 0 && from >= to {
			t.Fatalf("parseCreated(%q) = [%d, %d): empty range", s, from, to)
		}
	})
}

// TestGitHubLifecycle: GitHub's cancel and re-run paths, their answers and
// who may call them.
func TestGitHubLifecycle(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	run, jobs := ts.newRun(ts.pub)
	privRun, _ := ts.newRun(ts.priv)
	runPath := func(repo string, id int64, what string) string {
		return fmt.Sprintf("/api/v1/repos/alice/%s/actions/runs/%d/%s", repo, id, what)
	}
	// Who may: readers, outsiders and other repositories' ids get 404.
	for _, tt := range []struct {
		path, auth string
		code       int
	}{
		{runPath("pub", run.ID, "cancel"), "", 401},
		{runPath("pub", run.ID, "cancel"), bearer(ts.tokens["carol"]), 404},
		{runPath("pub", run.ID, "cancel"), bearer(ts.tokens["dave"]), 404},
		{runPath("pub", run.ID, "cancel"), bearer(ts.tokens["bob:read"]), 403},
		{runPath("pub", privRun.ID, "cancel"), bearer(ts.tokens["bob"]), 404},
		{runPath("priv", privRun.ID, "rerun"), bearer(ts.tokens["carol"]), 404},
		{fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/rerun", jobs[0].ID), bearer(ts.tokens["carol"]), 404},
		{runPath("pub", run.ID, "rerun"), bearer(ts.tokens["bob"]), 409}, // not completed
	} {
		if res := ts.do(request{method: "POST", path: tt.path, auth: tt.auth}); res.code != tt.code {
			t.Errorf("POST %s: status = %d, want %d; %s", tt.path, res.code, tt.code, res.body)
		}
	}
	if _, err := ts.store.CancelJobs(context.Background(), privRun.ID, 0); err != nil {
		t.Fatal(err)
	}
	// The build job runs and succeeds; test runs and fails.
	j := ts.heartbeat()
	logPath := fmt.Sprintf("/api/v1/jobs/%d/logs", j.JobID)
	ts.want(request{method: "POST", path: logPath, auth: bearer(ts.rtoken), body: fmt.Sprintf(`{"step_id":%d,"seq":1,"data":"YnVpbHQK"}`, j.Steps[2].ID)}, 202, nil)
	ts.jobStatus(j.JobID, protocol.ConclusionSuccess, 200)
	j2 := ts.heartbeat()
	if j2 == nil || j2.JobID != jobs[1].ID {
		t.Fatalf("second claim = %+v, want the test job", j2)
	}
	ts.jobStatus(j2.JobID, protocol.ConclusionFailure, 200)
	// Cancelling a completed run is GitHub's 409.
	ts.want(request{method: "POST", path: runPath("pub", run.ID, "cancel"), auth: bearer(ts.tokens["bob"])}, 409, nil)

	// Re-run the failed jobs: build is kept with its log, test runs again.
	res := ts.want(request{method: "POST", path: runPath("pub", run.ID, "rerun-failed-jobs"), auth: bearer(ts.tokens["bob"]), body: `{"enable_debug_logging":true}`}, 201, nil)
	if string(bytes.TrimSpace(res.body)) != "{}" {
		t.Errorf("rerun-failed-jobs body = %s, want {}", res.body)
	}
	var nr runJSON
	loc := strings.TrimPrefix(res.header.Get("Location"), "https://ci.example")
	ts.want(request{method: "GET", path: loc}, 200, &nr)
	if nr.RunAttempt != 2 || str(nr.PreviousAttemptURL) != fmt.Sprintf("https://ci.example/api/v1/repos/alice/pub/actions/runs/%d", run.ID) ||
		*nr.ParentRunID != run.ID || nr.Status != "queued" || nr.TriggeringActor.Login != "bob" {
		t.Errorf("re-run of failed jobs = %+v", nr)
	}
	var nj struct{ Jobs []jobJSON }
	ts.want(request{method: "GET", path: runPath("pub", nr.ID, "jobs")}, 200, &nj)
	if len(nj.Jobs) != 2 || str(nj.Jobs[0].Conclusion) != protocol.ConclusionSuccess || nj.Jobs[0].RunnerName == nil || *nj.Jobs[0].RunnerName != "r1" ||
		nj.Jobs[1].Status != "queued" || nj.Jobs[1].Conclusion != nil {
		t.Fatalf("re-run's jobs = %+v; want build kept (success), test queued", nj.Jobs)
	}
	if log := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", nj.Jobs[0].ID), "").body; !strings.Contains(string(log), "built") {
		t.Errorf("kept job's log = %q, want the first attempt's", log)
	}
	// The kept job is not claimed again; the re-run job is.
	if c := ts.heartbeat(); c == nil || c.JobID != nj.Jobs[1].ID {
		t.Fatalf("claim after rerun-failed-jobs = %+v, want job %d", c, nj.Jobs[1].ID)
	}
	ts.jobStatus(nj.Jobs[1].ID, protocol.ConclusionSuccess, 200)
	if r := ts.run(nr.ID); r.Conclusion != protocol.ConclusionSuccess {
		t.Errorf("re-run = %s, want success", r.Conclusion)
	}
	// Nothing failed now: nothing to re-run.
	ts.want(request{method: "POST", path: runPath("pub", nr.ID, "rerun-failed-jobs"), auth: bearer(ts.tokens["bob"])}, 409, nil)

	// Re-run one job: it and the jobs that need it.
	res = ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/rerun", jobs[1].ID), auth: bearer(ts.tokens["alice"])}, 201, nil)
	jr := ts.run(ts.runIDFrom(res))
	jrJobs, _ := ts.store.RunJobs(context.Background(), jr.ID)
	if jr.ParentRunID != run.ID || jr.RunAttempt != 2 || jrJobs[0].Conclusion != protocol.ConclusionSuccess || jrJobs[1].Status != protocol.StatusQueued {
		t.Errorf("job re-run = %+v with jobs %s/%s, %s", jr, jrJobs[0].Status, jrJobs[0].Conclusion, jrJobs[1].Status)
	}
	res = ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/rerun", jobs[0].ID), auth: bearer(ts.tokens["alice"])}, 201, nil)
	jr2Jobs, _ := ts.store.RunJobs(context.Background(), ts.runIDFrom(res))
	if jr2Jobs[0].Status != protocol.StatusQueued || jr2Jobs[1].Status != protocol.StatusQueued {
		t.Errorf("re-run of build: jobs %s, %s; want both queued (test needs build)", jr2Jobs[0].Status, jr2Jobs[1].Status)
	}
	// The whole run, GitHub's way; then its attempts.
	res = ts.want(request{method: "POST", path: runPath("pub", nr.ID, "rerun"), auth: bearer(ts.tokens["bob"])}, 201, nil)
	third := ts.runIDFrom(res)
	var a1 runJSON
	ts.want(request{method: "GET", path: runPath("pub", third, "attempts/1")}, 200, &a1)
	if a1.ID != run.ID {
		t.Errorf("attempt 1 of run %d = run %d, want %d", third, a1.ID, run.ID)
	}
	ts.want(request{method: "GET", path: runPath("pub", run.ID, "attempts/2")}, 404, nil)
	var all struct {
		TotalCount int `json:"total_count"`
	}
	ts.want(request{method: "GET", path: runPath("pub", third, "jobs?filter=all")}, 200, &all)
	if all.TotalCount != 6 {
		t.Errorf("jobs of every attempt = %d, want 6", all.TotalCount)
	}
	// Force-cancel and cancel of a queued run: 202 {} and the run ends.
	for _, what := range []string{"force-cancel", "cancel"} {
		r, _ := ts.newRun(ts.pub)
		res := ts.want(request{method: "POST", path: runPath("pub", r.ID, what), auth: bearer(ts.tokens["bob"])}, 202, nil)
		if string(bytes.TrimSpace(res.body)) != "{}" {
			t.Errorf("%s body = %s, want {}", what, res.body)
		}
		if got := ts.run(r.ID); got.Status != protocol.StatusCompleted || got.Conclusion != protocol.ConclusionCancelled {
			t.Errorf("after %s: run %s/%s, want completed/cancelled", what, got.Status, got.Conclusion)
		}
	}
}

// runIDFrom reads the new run's id from a GitHub re-run's Location.
func (ts *testServer) runIDFrom(res response) int64 {
	ts.t.Helper()
	var id int64
	loc := res.header.Get("Location")
	if _, err := fmt.Sscanf(loc[strings.LastIndex(loc, "/")+1:], "%d", &id); err != nil {
		ts.t.Fatalf("Location %q: %v", loc, err)
	}
	return id
}

// TestGitHubWorkflows: list, get, enable and disable; a disabled workflow
// starts no runs and says so.
func TestGitHubWorkflows(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	sha := commitFiles(t, ts.git, map[string]string{".shithub/workflows/lint.yml": "name: Lint\non: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: echo}]\n"})
	var list struct {
		TotalCount int            `json:"total_count"`
		Workflows  []workflowJSON `json:"workflows"`
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/workflows"}, 200, &list)
	if list.TotalCount != 2 || list.Workflows[0].Name != "CI" || list.Workflows[1].Path != ".shithub/workflows/lint.yml" || list.Workflows[1].State != "active" {
		t.Fatalf("workflows = %+v", list)
	}
	lint := list.Workflows[1]
	if lint.BadgeURL != "https://ci.example/alice/pub/actions/workflows/lint.yml/badge.svg" || lint.URL != fmt.Sprintf("https://ci.example/api/v1/repos/alice/pub/actions/workflows/%d", lint.ID) {
		t.Errorf("lint = %+v", lint)
	}
	var got workflowJSON
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/workflows/lint.yml"}, 200, &got)
	if got.ID != lint.ID {
		t.Errorf("by file: id %d, want %d (stable)", got.ID, lint.ID)
	}
	for _, tt := range []struct {
		method, path, auth string
		code               int
	}{
		{"GET", "/api/v1/repos/alice/pub/actions/workflows/nope.yml", "", 404},
		{"GET", "/api/v1/repos/alice/pub/actions/workflows/999", "", 404},
		{"GET", "/api/v1/repos/alice/priv/actions/workflows", "", 404},
		{"PUT", "/api/v1/repos/alice/pub/actions/workflows/lint.yml/disable", "", 401},
		{"PUT", "/api/v1/repos/alice/pub/actions/workflows/lint.yml/disable", bearer(ts.tokens["carol"]), 404},
		{"PUT", "/api/v1/repos/alice/pub/actions/workflows/lint.yml/disable", bearer(ts.tokens["bob"]), 204},
		{"PUT", "/api/v1/repos/alice/pub/actions/workflows/lint.yml/disable", bearer(ts.tokens["bob"]), 204},
		{"PUT", fmt.Sprintf("/api/v1/repos/alice/pub/actions/workflows/%d/disable", list.Workflows[0].ID), bearer(ts.tokens["bob"]), 204},
	} {
		if res := ts.do(request{method: tt.method, path: tt.path, auth: tt.auth}); res.code != tt.code {
			t.Errorf("%s %s: status = %d, want %d; %s", tt.method, tt.path, res.code, tt.code, res.body)
		}
	}
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/workflows/%d", lint.ID)}, 200, &got)
	if got.State != "disabled_manually" {
		t.Errorf("state = %q, want disabled_manually", got.State)
	}
	// A push starts neither, and says so.
	var pushed runsJSON
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["bob"]),
		body: fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, git.ZeroSHA, sha)}, 201, &pushed)
	if len(pushed.WorkflowRuns) != 0 || !slices.Equal(pushed.DisabledWorkflows, []string{".shithub/workflows/ci.yml", ".shithub/workflows/lint.yml"}) {
		t.Errorf("push to disabled workflows = %+v", pushed)
	}
	res := ts.do(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/workflows/ci.yml/dispatches", auth: bearer(ts.tokens["bob"]), body: `{"ref":"main"}`})
	if res.code != 409 || !strings.Contains(string(res.body), "disabled") {
		t.Errorf("dispatch of a disabled workflow: %d %s, want 409 saying so", res.code, res.body)
	}
	// A re-run of a disabled workflow's run is refused too.
	ts.want(request{method: "PUT", path: "/api/v1/repos/alice/pub/actions/workflows/ci.yml/enable", auth: bearer(ts.tokens["bob"])}, 204, nil)
	r, _ := ts.newRun(ts.pub)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", r.ID), auth: bearer(ts.tokens["bob"])}, 202, nil)
	ts.want(request{method: "PUT", path: "/api/v1/repos/alice/pub/actions/workflows/ci.yml/disable", auth: bearer(ts.tokens["bob"])}, 204, nil)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", r.ID), auth: bearer(ts.tokens["bob"])}, 409, nil)
	ts.want(request{method: "PUT", path: "/api/v1/repos/alice/pub/actions/workflows/ci.yml/enable", auth: bearer(ts.tokens["bob"])}, 204, nil)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", r.ID), auth: bearer(ts.tokens["bob"])}, 201, nil)
}

// TestGitHubRepoAndLogs: the repository object; log links work without a
// token, only while fresh and only as signed; the run's logs are a zip.
func TestGitHubRepoAndLogs(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var repo ghRepo
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub", header: map[string]string{"X-GitHub-Api-Version": "2022-11-28"}}, 200, &repo)
	if repo.FullName != "alice/pub" || repo.DefaultBranch != "main" || repo.Owner.Login != "alice" || repo.Private || repo.URL != "https://ci.example/api/v1/repos/alice/pub" {
		t.Errorf("repository = %+v", repo)
	}
	var owner ghUser
	ts.want(request{method: "GET", path: strings.TrimPrefix(repo.Owner.URL, "https://ci.example")}, 200, &owner)
	if owner != repo.Owner {
		t.Errorf("GET %s = %+v, want %+v", repo.Owner.URL, owner, repo.Owner)
	}
	ts.want(request{method: "GET", path: "/api/v1/users/nobody"}, 404, nil)
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv"}, 404, nil)
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv", auth: bearer(ts.tokens["carol:read"])}, 200, nil)

	run, jobs := ts.newRun(ts.priv)
	j := ts.heartbeat()
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/logs", j.JobID), auth: bearer(ts.rtoken),
		body: fmt.Sprintf(`{"step_id":%d,"seq":1,"data":"c2VjcmV0IGxvZwo="}`, j.Steps[2].ID)}, 202, nil)
	jobLogs := fmt.Sprintf("/api/v1/repos/alice/priv/actions/jobs/%d/logs", jobs[0].ID)
	ts.want(request{method: "GET", path: jobLogs}, 404, nil) // private: no link without read
	if body := ts.follow(jobLogs, bearer(ts.tokens["carol:read"])).body; !strings.Contains(string(body), "secret log") {
		t.Errorf("job log = %q", body)
	}
	res := ts.do(request{method: "GET", path: jobLogs, auth: bearer(ts.tokens["carol:read"])})
	link := strings.TrimPrefix(res.header.Get("Location"), "https://ci.example")
	for name, bad := range map[string]string{
		"tampered id":        strings.Replace(link, fmt.Sprintf("/job/%d?", jobs[0].ID), fmt.Sprintf("/job/%d?", jobs[1].ID), 1),
		"tampered kind":      strings.Replace(link, "/job/", "/run/", 1),
		"tampered signature": link[:len(link)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(link, "0")],
		"no signature":       link[:strings.Index(link, "&signature")],
		"later expiry":       strings.Replace(link, "expires=1", "expires=2", 1),
	} {
		if res := ts.do(request{method: "GET", path: bad}); res.code != 403 {
			t.Errorf("%s: GET %s: status = %d, want 403", name, bad, res.code)
		}
	}
	ts.clock.Add(logLinkTTL)
	if res := ts.do(request{method: "GET", path: link}); res.code != 403 || !strings.Contains(string(res.body), "expired") {
		t.Errorf("expired link: %d %s, want 403 saying it expired", res.code, res.body)
	}
	// The run's logs: a zip, GitHub's layout.
	body := ts.follow(fmt.Sprintf("/api/v1/repos/alice/priv/actions/runs/%d/logs", run.ID), bearer(ts.tokens["carol:read"])).body
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("run logs: %v", err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		files[f.Name] = b.String()
	}
	if !strings.Contains(files["0_build.txt"], "##[group]Run echo building\nsecret log\n##[endgroup]") ||
		files["build/3_Run echo building.txt"] != "secret log\n" || files["1_test.txt"] == "" {
		t.Errorf("zip = %q", files)
	}
	// Artifacts: none, ever.
	var arts struct {
		TotalCount int   `json:"total_count"`
		Artifacts  []any `json:"artifacts"`
	}
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/priv/actions/runs/%d/artifacts", run.ID), auth: bearer(ts.tokens["carol:read"])}, 200, &arts)
	if arts.TotalCount != 0 || arts.Artifacts == nil {
		t.Errorf("artifacts = %+v", arts)
	}
}

// The GitHub routes answer JSON errors under /api/ like the rest.
func TestGitHubRoutesJSONErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, p := range []string{"/api/v1/repos/alice/pub/actions/jobs/999", "/api/v1/repos/alice/pub/actions/runs/999/logs", "/api/v1/signed-logs/job/1"} {
		res := ts.do(request{method: "GET", path: p})
		var body struct{ Message string }
		if res.code < 400 || json.Unmarshal(res.body, &body) != nil || body.Message == "" {
			t.Errorf("GET %s: %d %s, want a JSON error", p, res.code, res.body)
		}
	}
	if res := ts.do(request{method: "GET", path: "/api/v1/signed-logs/other/1?expires=1&signature=x"}); res.code != http.StatusNotFound {
		t.Errorf("unknown signed kind: %d, want 404", res.code)
	}
}
