package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/store"
)

func TestPullRequestEvent(t *testing.T) {
	ts := newTestServer(t)
	head := commitFiles(t, ts.git, map[string]string{
		"src/main.go": "package main\n",
		".shithub/workflows/pr.yml": `name: PR
on:
  pull_request:
    branches: [main]
    paths: ['src/**']
jobs:
  t:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ github.event.pull_request.title }} ${{ github.head_ref }}
`,
		".shithub/workflows/docs.yml":   "on:\n  pull_request:\n    paths: ['docs/**']\njobs:\n  t:\n    runs-on: x\n    steps: [{run: x}]\n",
		".shithub/workflows/closed.yml": "on:\n  pull_request:\n    types: [closed]\njobs:\n  t:\n    runs-on: x\n    steps: [{run: x}]\n",
	})
	body := func(action, base string) string {
		return fmt.Sprintf(`{"action":%q,"number":7,"head_sha":%q,"head_ref":"feature","base_ref":%q,"base_sha":%q,"title":"Add main"}`, action, head, base, ts.sha)
	}
	path := "/api/v1/repos/alice/pub/actions/events/pull_request"
	var out runsJSON
	ts.want(request{method: "POST", path: path, auth: bearer(ts.tokens["bob"]), body: body("opened", "main")}, 201, &out)
	if len(out.WorkflowRuns) != 1 || out.WorkflowRuns[0].WorkflowName != "PR" || out.WorkflowRuns[0].Event != "pull_request" ||
		out.WorkflowRuns[0].HeadRef != "refs/pull/7/merge" || out.WorkflowRuns[0].HeadSHA != head {
		t.Fatalf("opened = %+v, want one PR run on refs/pull/7/merge", out)
	}
	c := ts.heartbeat()
	gh := c.Contexts["github"].(map[string]any)
	pr := gh["event"].(map[string]any)["pull_request"].(map[string]any)
	if gh["head_ref"] != "feature" || gh["base_ref"] != "main" || pr["title"] != "Add main" || pr["number"] != float64(7) {
		t.Errorf("github context = %v", gh)
	}
	ts.want(request{method: "POST", path: path, auth: bearer(ts.tokens["bob"]), body: body("opened", "dev")}, 201, &out)
	if len(out.WorkflowRuns) != 0 {
		t.Errorf("PR into dev made %d runs, want 0 (branches: [main])", len(out.WorkflowRuns))
	}
	ts.want(request{method: "POST", path: path, auth: bearer(ts.tokens["bob"]), body: body("closed", "main")}, 201, &out)
	if len(out.WorkflowRuns) != 1 || !strings.HasSuffix(out.WorkflowRuns[0].WorkflowFile, "closed.yml") {
		t.Errorf("closed = %+v, want the closed.yml run only", out)
	}
	for _, tc := range []struct {
		auth, body string
		code       int
	}{
		{bearer(ts.tokens["bob"]), `{"action":"merged","number":7,"head_sha":"` + head + `","head_ref":"f","base_ref":"main"}`, 422},
		{bearer(ts.tokens["bob"]), `{"action":"opened","number":0,"head_sha":"` + head + `","head_ref":"f","base_ref":"main"}`, 422},
		{bearer(ts.tokens["bob"]), `{"action":"opened","number":1,"head_sha":"xyz","head_ref":"f","base_ref":"main"}`, 422},
		{bearer(ts.tokens["bob:read"]), body("opened", "main"), 403},
		{bearer(ts.tokens["carol"]), body("opened", "main"), 403}, // reads, may not write: as for push
		{"", body("opened", "main"), 401},
	} {
		ts.want(request{method: "POST", path: path, auth: tc.auth, body: tc.body}, tc.code, nil)
	}
	ts.want(request{method: "POST", path: strings.Replace(path, "/pub/", "/priv/", 1), auth: bearer(ts.tokens["dave"]), body: body("opened", "main")}, 404, nil)
}

func TestScheduler(t *testing.T) {
	ts := newTestServer(t)
	commitFiles(t, ts.git, map[string]string{".shithub/workflows/nightly.yml": "on:\n  schedule:\n    - cron: '*/15 * * * *'\n    - cron: '0 3 * * 1'\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n"})
	count := func() int {
		var n int
		ts.store.DBForTest().QueryRow("SELECT COUNT(*) FROM runs WHERE event = 'schedule'").Scan(&n)
		return n
	}
	ctx := context.Background()
	// Two servers (two schedulers) at the same minute: one run per schedule.
	a := &scheduler{store: ts.store, cache: map[int64]scheduleCache{}}
	b := &scheduler{store: ts.store, cache: map[int64]scheduleCache{}}
	ts.clock.now = time.Date(2026, 11, 23, 12, 15, 5, 0, time.UTC)
	n1, err := a.tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := b.tick(ctx)
	// Two repositories share the git directory: each has the schedule.
	if n1 != 2 || n2 != 0 || count() != 2 {
		t.Fatalf("12:15: started %d and %d runs (%d in all), want 2 then 0", n1, n2, count())
	}
	ts.clock.now = ts.clock.now.Add(30 * time.Second) // same minute, as after a restart
	if n, _ := a.tick(ctx); n != 0 {
		t.Errorf("12:15 again: started %d runs, want 0", n)
	}
	ts.clock.now = time.Date(2026, 11, 23, 12, 16, 0, 0, time.UTC)
	if n, _ := a.tick(ctx); n != 0 {
		t.Errorf("12:16: started %d runs, want 0", n)
	}
	ts.clock.now = time.Date(2026, 11, 23, 12, 30, 0, 0, time.UTC)
	if n, _ := b.tick(ctx); n != 2 {
		t.Errorf("12:30: started %d runs, want 2", n)
	}
	runs, _, err := ts.store.ListRuns(ctx, ts.pub.ID, store.RunFilter{Event: "schedule"}, 1, 10)
	if err != nil || len(runs) != 2 || runs[0].HeadRef != "refs/heads/main" || runs[0].EventPayload["schedule"] != "*/15 * * * *" {
		t.Errorf("scheduled runs = %+v, %v", runs, err)
	}
}

func TestWorkflowCheckCLI(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(good, []byte("on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n"), 0o644)
	os.WriteFile(bad, []byte("on: [push, bogus]\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x, shel: y}]\n"), 0o644)
	db := filepath.Join(dir, "x.db")
	code, out, _ := cliRun(t, db, "", "workflow", "check", good)
	if code != 0 || out != "" {
		t.Errorf("check good: exit %d, output %q", code, out)
	}
	code, out, _ = cliRun(t, db, "", "workflow", "check", good, bad)
	want := bad + ":1:12: unknown event \"bogus\" in on\n" + bad + ":5:22: unknown key \"shel\" in step 1 of job \"a\"\n"
	if code != 1 || out != want {
		t.Errorf("check bad: exit %d, output %q, want 1 and %q", code, out, want)
	}
	if code, _, errOut := cliRun(t, db, "", "workflow", "check", filepath.Join(dir, "missing.yml")); code != 2 || errOut == "" {
		t.Errorf("check missing file: exit %d, stderr %q, want 2", code, errOut)
	}
	if code, _, _ := cliRun(t, db, "", "workflow", "check"); code != 2 {
		t.Errorf("check with no file: exit %d, want 2", code)
	}
}
