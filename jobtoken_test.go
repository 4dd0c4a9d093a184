package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestWorkflowJobRefs(t *testing.T) {
	head := "on: push\n"
	tests := []struct {
		name    string
		wf      string
		job     string
		secrets []string
		all     bool
		perms   tokenPerms
	}{
		{"none", head + "jobs:\n  a:\n    steps:\n      - run: echo hi\n", "a", []string{}, false, defaultTokenPerms},
		{"run and env", head + "env:\n  W: ${{ secrets.WORKFLOW_LEVEL }}\njobs:\n  a:\n    env:\n      J: ${{ secrets.Job_Level }}\n    steps:\n" +
			"      - run: echo ${{ secrets.RUN }} ${{ secrets['INDEXED'] }}\n      - uses: x/y@v1\n        with:\n          token: ${{ secrets.WITH }}\n", "a",
			[]string{"INDEXED", "JOB_LEVEL", "RUN", "WITH", "WORKFLOW_LEVEL"}, false, defaultTokenPerms},
		{"other job's secrets are not this job's", head + "jobs:\n  a:\n    steps:\n      - run: echo ${{ secrets.A }}\n  b:\n    steps:\n      - run: echo ${{ secrets.B }}\n", "b",
			[]string{"B"}, false, defaultTokenPerms},
		{"if is a condition", head + "jobs:\n  a:\n    steps:\n      - if: secrets.IN_IF != ''\n        run: echo\n", "a", []string{"IN_IF"}, false, defaultTokenPerms},
		{"text without ${{ }} is not an expression", head + "jobs:\n  a:\n    steps:\n      - run: echo secrets.NOT_ONE\n", "a", []string{}, false, defaultTokenPerms},
		{"dynamic", head + "jobs:\n  a:\n    steps:\n      - run: echo ${{ secrets[matrix.name] }}\n", "a", []string{}, true, defaultTokenPerms},
		{"toJSON(secrets)", head + "jobs:\n  a:\n    steps:\n      - run: echo '${{ toJSON(secrets) }}'\n", "a", []string{}, true, defaultTokenPerms},
		{"workflow permissions", "on: push\npermissions: write-all\njobs:\n  a:\n    steps:\n      - run: x\n", "a", []string{}, false, tokenPerms{"write", "write"}},
		{"job permissions win", "on: push\npermissions: read-all\njobs:\n  a:\n    permissions:\n      contents: write\n    steps:\n      - run: x\n", "a",
			[]string{}, false, tokenPerms{"write", "none"}},
		{"empty permissions", "on: push\npermissions: {}\njobs:\n  a:\n    steps:\n      - run: x\n", "a", []string{}, false, tokenPerms{"none", "none"}},
		{"unknown job", head + "jobs:\n  a:\n    steps:\n      - run: ${{ secrets.X }}\n", "zzz", nil, false, defaultTokenPerms},
		{"not YAML", "::: [", "a", nil, false, defaultTokenPerms},
		{"anchors", head + "x: &run\n  run: ${{ secrets.VIA_ANCHOR }}\njobs:\n  a:\n    steps:\n      - *run\n", "a", []string{"VIA_ANCHOR"}, false, defaultTokenPerms},
	}
	for _, tc := range tests {
		got := workflowJobRefs([]byte(tc.wf), tc.job)
		if !slices.Equal(got.Secrets, tc.secrets) || got.AllSecrets != tc.all || got.Permissions != tc.perms {
			t.Errorf("%s: workflowJobRefs = %+v, want secrets %v all %v perms %+v", tc.name, got, tc.secrets, tc.all, tc.perms)
		}
	}
}

func TestParseTokenPerms(t *testing.T) {
	tests := []struct {
		in   any
		want tokenPerms
		err  bool
	}{
		{nil, defaultTokenPerms, false},
		{"read-all", tokenPerms{"read", "read"}, false},
		{"write-all", tokenPerms{"write", "write"}, false},
		{"admin", tokenPerms{}, true},
		{map[string]any{"actions": "write", "packages": "read"}, tokenPerms{"none", "write"}, false},
		{map[string]any{"contents": "owner"}, tokenPerms{}, true},
		{[]any{"x"}, tokenPerms{}, true},
	}
	for _, tc := range tests {
		got, err := parseTokenPerms(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseTokenPerms(%v) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestJobDelivery: a job receives the secrets it references and no
// others, plus GITHUB_TOKEN and the variables; a fork's pull request
// receives no secrets and a read-only token.
func TestJobDelivery(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	for name, v := range map[string]string{"USED": "u-value", "UNUSED": "x-value"} {
		if _, err := ts.store.setSecret(ctx, secretScope{RepoID: ts.pub.ID}, name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.store.writeVariable(ctx, secretScope{RepoID: ts.pub.ID}, varUpsert, "REGION", "", "eu"); err != nil {
		t.Fatal(err)
	}
	wf := "name: W\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets.used }} ${{ secrets.MISSING }}\n"
	job := ts.claimWorkflow(ts.pub, wf)
	d, err := ts.store.jobDelivery(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, []string{"GITHUB_TOKEN", "USED"}) || d.Secrets["USED"] != "u-value" {
		t.Fatalf("delivered secrets %v", got)
	}
	if d.Vars["REGION"] != "eu" || d.Perms != defaultTokenPerms || !strings.HasPrefix(d.Token, jobTokenPrefix) {
		t.Fatalf("delivery: vars %v perms %+v", d.Vars, d.Perms)
	}
	// The same job's delivery is the same token every time.
	if d2, _ := ts.store.jobDelivery(ctx, job.JobID); d2.Token != d.Token {
		t.Fatal("the token changed")
	}

	// A pull request whose head is not known to be this repository's.
	parsed, err := parseWorkflow("w.yml", []byte(wf))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.store.createRuns(ctx, nil, []runSpec{{
		RepoID: ts.pub.ID, File: ".shithub/workflows/w.yml", Content: []byte(wf), Workflow: parsed,
		HeadSHA: ts.sha, HeadRef: "refs/pull/1/merge", Event: "pull_request", ActorID: ts.users["dave"].ID,
	}}); err != nil {
		t.Fatal(err)
	}
	pr := ts.heartbeat()
	d, err = ts.store.jobDelivery(ctx, pr.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, []string{"GITHUB_TOKEN"}) || d.Perms != (tokenPerms{"read", "read"}) {
		t.Fatalf("fork pull request: secrets %v perms %+v", got, d.Perms)
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestIsForkPullRequest(t *testing.T) {
	same := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "alice/pub"}}}}
	other := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "dave/pub"}}}}
	tests := []struct {
		event   string
		payload map[string]any
		want    bool
	}{
		{"push", nil, false},
		{"pull_request", same, false},
		{"pull_request", other, true},
		{"pull_request", nil, true},
		{"pull_request_target", other, false},
		{"pull_request_review", other, true},
	}
	for _, tc := range tests {
		if got := isForkPullRequest(tc.event, tc.payload, "alice/pub"); got != tc.want {
			t.Errorf("isForkPullRequest(%s, %v) = %v, want %v", tc.event, tc.payload, got, tc.want)
		}
	}
}

// TestJobTokenAPI: a GITHUB_TOKEN works as a PAT on its job's repository
// alone, with its permissions, and is refused (401) once its job ends.
func TestJobTokenAPI(t *testing.T) {
	ts := newTestServer(t)
	_, jobs := ts.newRun(ts.priv)
	tok := ts.claimToken(jobs[0].ID, tokenPerms{"read", "read"})
	auth := bearer(tok)
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: auth}, 200, nil)

	// Another private repository of the same owner is not found.
	if _, err := ts.store.createRepo(context.Background(), ts.users["alice"], "other", ts.priv.GitDir, true); err != nil {
		t.Fatal(err)
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/other/actions/runs", auth: auth}, 404, nil)
	// actions: read cannot cancel.
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs[1].ID), auth: auth}, 403, nil)
	// A GITHUB_TOKEN is no runner token and no sign-in.
	ts.want(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: auth, body: `{}`}, 401, nil)

	// The job ends: from that moment the token is refused.
	ts.jobStatus(jobs[0].ID, "success", 200)
	res := ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: auth}, 401, nil)
	if !strings.Contains(string(res.body), "job has ended") {
		t.Fatalf("after the job: %s", res.body)
	}
	// A made-up token of the right shape is just a bad one.
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: bearer(jobTokenPrefix + strings.Repeat("A", 32))}, 401, nil)

	// actions: write may cancel its own run's jobs, and nothing elsewhere.
	_, jobs2 := ts.newRun(ts.priv)
	tok2 := ts.claimToken(jobs2[0].ID, tokenPerms{"read", "write"})
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs2[1].ID), auth: bearer(tok2)}, 202, nil)
	_, pubJobs := ts.newRun(ts.pub)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", pubJobs[1].ID), auth: bearer(tok2)}, 404, nil)
	// A push notification made with a GITHUB_TOKEN starts nothing.
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/priv/actions/events/push", auth: bearer(tok2),
		body: `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"` + ts.sha + `"}`}, 403, nil)
}

// FuzzWorkflowJobRefs: any workflow text gives an answer, never a panic;
// the permissions are always levels.
func FuzzWorkflowJobRefs(f *testing.F) {
	f.Add([]byte("on: push\npermissions: write-all\njobs:\n  a:\n    steps:\n      - run: ${{ secrets.X }}\n"), "a")
	f.Add([]byte("jobs:\n  a: &x\n    if: secrets[matrix.k]\n  b: *x\n"), "b")
	f.Add([]byte("::: ["), "a")
	f.Fuzz(func(t *testing.T, wf []byte, job string) {
		r := workflowJobRefs(wf, job)
		for _, l := range []string{r.Permissions.Contents, r.Permissions.Actions} {
			if l != "none" && l != "read" && l != "write" {
				t.Fatalf("permission level %q", l)
			}
		}
	})
}

// TestWorkflowJobRefsAliasBomb: a file whose aliases expand to billions of
// nodes is read with a bounded walk.
func TestWorkflowJobRefsAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("on: push\na0: &a0 [\"${{ secrets.X }}\"]\n")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("jobs:\n  a:\n    steps:\n      - run: *a29\n")
	// Unbounded, this walks 4^29 nodes: the test would not end.
	r := workflowJobRefs([]byte(b.String()), "a")
	if !slices.Equal(r.Secrets, []string{"X"}) {
		t.Fatalf("secrets %v", r.Secrets)
	}
}
