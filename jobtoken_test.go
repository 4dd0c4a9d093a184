package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

func TestWorkflowJobRefs(t *testing.T) {
	head := "on: push\n"
	tests := []struct {
		name    string
		wf      string
		job     string
		secrets []string
		all     bool
	}{
		{"none", head + "jobs:\n  a:\n    steps:\n      - run: echo hi\n", "a", []string{}, false},
		{"run and env", head + "env:\n  W: ${{ secrets.WORKFLOW_LEVEL }}\njobs:\n  a:\n    env:\n      J: ${{ secrets.Job_Level }}\n    steps:\n" +
			"      - run: echo ${{ secrets.RUN }} ${{ secrets['INDEXED'] }}\n      - uses: x/y@v1\n        with:\n          token: ${{ secrets.WITH }}\n", "a",
			[]string{"INDEXED", "JOB_LEVEL", "RUN", "WITH", "WORKFLOW_LEVEL"}, false},
		{"other job's secrets are not this job's", head + "jobs:\n  a:\n    steps:\n      - run: echo ${{ secrets.A }}\n  b:\n    steps:\n      - run: echo ${{ secrets.B }}\n", "b",
			[]string{"B"}, false},
		{"if is a condition", head + "jobs:\n  a:\n    steps:\n      - if: secrets.IN_IF != ''\n        run: echo\n", "a", []string{"IN_IF"}, false},
		{"text without ${{ }} is not an expression", head + "jobs:\n  a:\n    steps:\n      - run: echo secrets.NOT_ONE\n", "a", []string{}, false},
		{"dynamic", head + "jobs:\n  a:\n    steps:\n      - run: echo ${{ secrets[matrix.name] }}\n", "a", []string{}, true},
		{"toJSON(secrets)", head + "jobs:\n  a:\n    steps:\n      - run: echo '${{ toJSON(secrets) }}'\n", "a", []string{}, true},
		{"unknown job", head + "jobs:\n  a:\n    steps:\n      - run: ${{ secrets.X }}\n", "zzz", nil, false},
		{"not YAML", "::: [", "a", nil, false},
		{"anchors", head + "x: &run\n  run: ${{ secrets.VIA_ANCHOR }}\njobs:\n  a:\n    steps:\n      - *run\n", "a", []string{"VIA_ANCHOR"}, false},
	}
	for _, tc := range tests {
		got := store.WorkflowJobRefs([]byte(tc.wf), tc.job)
		if !slices.Equal(got.Secrets, tc.secrets) || got.AllSecrets != tc.all {
			t.Errorf("%s: workflowJobRefs = %+v, want secrets %v all %v", tc.name, got, tc.secrets, tc.all)
		}
	}
}

// TestWorkflowJobPerms: the token's permissions from the parsed
// `permissions:`, the job's over the workflow's.
func TestWorkflowJobPerms(t *testing.T) {
	job := "jobs:\n  a:\n    runs-on: ubuntu-latest\n%s    steps:\n      - run: x\n"
	tests := []struct {
		name, wf, jobPerms string
		want               store.TokenPerms
	}{
		{"default", "on: push\n", "", store.DefaultTokenPerms},
		{"write-all", "on: push\npermissions: write-all\n", "", store.TokenPerms{Contents: "write", Actions: "write"}},
		{"read-all", "on: push\npermissions: read-all\n", "", store.TokenPerms{Contents: "read", Actions: "read"}},
		{"job wins", "on: push\npermissions: read-all\n", "    permissions:\n      contents: write\n", store.TokenPerms{Contents: "write", Actions: "none"}},
		{"empty", "on: push\npermissions: {}\n", "", store.TokenPerms{Contents: "none", Actions: "none"}},
		{"other scopes", "on: push\npermissions:\n  actions: write\n  packages: read\n", "", store.TokenPerms{Contents: "none", Actions: "write"}},
		{"does not parse", "on: push\npermissions: bogus\n", "", store.DefaultTokenPerms},
	}
	for _, tc := range tests {
		wf := tc.wf + fmt.Sprintf(job, tc.jobPerms)
		if got := store.WorkflowJobPerms(".shithub/workflows/w.yml", []byte(wf), "a"); got != tc.want {
			t.Errorf("%s: %+v, want %+v\n%s", tc.name, got, tc.want, wf)
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
		if _, err := ts.store.SetSecret(ctx, store.SecretScope{RepoID: ts.pub.ID}, name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.store.WriteVariable(ctx, store.SecretScope{RepoID: ts.pub.ID}, store.VarUpsert, "REGION", "", "eu"); err != nil {
		t.Fatal(err)
	}
	wf := "name: W\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets.used }} ${{ secrets.MISSING }}\n"
	job := ts.claimWorkflow(ts.pub, wf)
	d, err := ts.store.JobDelivery(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, []string{"GITHUB_TOKEN", "USED"}) || d.Secrets["USED"] != "u-value" {
		t.Fatalf("delivered secrets %v", got)
	}
	if d.Vars["REGION"] != "eu" || d.Perms != store.DefaultTokenPerms || !strings.HasPrefix(d.Token, store.JobTokenPrefix) {
		t.Fatalf("delivery: vars %v perms %+v", d.Vars, d.Perms)
	}
	// The same job's delivery is the same token every time.
	if d2, _ := ts.store.JobDelivery(ctx, job.JobID); d2.Token != d.Token {
		t.Fatal("the token changed")
	}
	// The claim carries them in its contexts.
	secrets, _ := job.Contexts["secrets"].(map[string]any)
	vars, _ := job.Contexts["vars"].(map[string]any)
	gh, _ := job.Contexts["github"].(map[string]any)
	if len(secrets) != 2 || secrets["USED"] != "u-value" || secrets["GITHUB_TOKEN"] != d.Token || vars["REGION"] != "eu" || gh["token"] != d.Token {
		t.Fatalf("claim contexts: secrets %v vars %v token %v", secrets, vars, gh["token"])
	}

	// A pull request whose head is not known to be this repository's.
	parsed, err := workflow.Parse("w.yml", []byte(wf))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.store.CreateRuns(ctx, nil, []store.RunSpec{{
		RepoID: ts.pub.ID, File: ".shithub/workflows/w.yml", Content: []byte(wf), Workflow: parsed,
		HeadSHA: ts.sha, HeadRef: "refs/pull/1/merge", Event: "pull_request", ActorID: ts.users["dave"].ID,
	}}); err != nil {
		t.Fatal(err)
	}
	pr := ts.heartbeat()
	d, err = ts.store.JobDelivery(ctx, pr.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, []string{"GITHUB_TOKEN"}) || d.Perms != (store.TokenPerms{Contents: "read", Actions: "read"}) {
		t.Fatalf("fork pull request: secrets %v perms %+v", got, d.Perms)
	}
	// A pull request from a branch of the repository itself gets them.
	same := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "alice/pub"}}}}
	if _, _, err := ts.store.CreateRuns(ctx, nil, []store.RunSpec{{
		RepoID: ts.pub.ID, File: ".shithub/workflows/w.yml", Content: []byte(wf), Workflow: parsed,
		HeadSHA: ts.sha, HeadRef: "refs/pull/2/merge", Event: "pull_request", ActorID: ts.users["bob"].ID, Payload: same,
	}}); err != nil {
		t.Fatal(err)
	}
	pr2 := ts.heartbeat()
	if d, err = ts.store.JobDelivery(ctx, pr2.JobID); err != nil || d.Secrets["USED"] != "u-value" {
		t.Fatalf("same-repository pull request: %v, %v", d, err)
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
		if got := store.IsForkPullRequest(tc.event, tc.payload, "alice/pub"); got != tc.want {
			t.Errorf("isForkPullRequest(%s, %v) = %v, want %v", tc.event, tc.payload, got, tc.want)
		}
	}
}

// TestJobTokenAPI: a GITHUB_TOKEN works as a PAT on its job's repository
// alone, with its permissions, and is refused (401) once its job ends.
func TestJobTokenAPI(t *testing.T) {
	ts := newTestServer(t)
	_, jobs := ts.newRun(ts.priv)
	tok := ts.claimToken(jobs[0].ID, store.TokenPerms{Contents: "read", Actions: "read"})
	auth := bearer(tok)
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: auth}, 200, nil)

	// Another private repository of the same owner is not found.
	if _, err := ts.store.CreateRepo(context.Background(), ts.users["alice"], "other", ts.priv.GitDir, true); err != nil {
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
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: bearer(store.JobTokenPrefix + strings.Repeat("A", 32))}, 401, nil)

	// actions: write may cancel its own run's jobs, and nothing elsewhere.
	_, jobs2 := ts.newRun(ts.priv)
	tok2 := ts.claimToken(jobs2[0].ID, store.TokenPerms{Contents: "read", Actions: "write"})
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs2[1].ID), auth: bearer(tok2)}, 202, nil)
	_, pubJobs := ts.newRun(ts.pub)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", pubJobs[1].ID), auth: bearer(tok2)}, 404, nil)
	// A push notification made with a GITHUB_TOKEN starts nothing.
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/priv/actions/events/push", auth: bearer(tok2),
		body: `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"` + ts.sha + `"}`}, 403, nil)
}

// FuzzWorkflowJobRefs: any workflow text gives an answer, never a panic;
// the names are sorted secret names.
func FuzzWorkflowJobRefs(f *testing.F) {
	f.Add([]byte("on: push\npermissions: write-all\njobs:\n  a:\n    steps:\n      - run: ${{ secrets.X }}\n"), "a")
	f.Add([]byte("jobs:\n  a: &x\n    if: secrets[matrix.k]\n  b: *x\n"), "b")
	f.Add([]byte("::: ["), "a")
	f.Fuzz(func(t *testing.T, wf []byte, job string) {
		r := store.WorkflowJobRefs(wf, job)
		if !slices.IsSorted(r.Secrets) {
			t.Fatalf("secrets not sorted: %v", r.Secrets)
		}
		for _, n := range r.Secrets {
			if n != strings.ToUpper(n) {
				t.Fatalf("secret name %q not upper case", n)
			}
		}
	})
}

// TestClaimEnvWithSecrets: env that reads secrets or vars, evaluated when
// the job became ready without them, is evaluated again in the claim; the
// database keeps the value without the secret.
func TestClaimEnvWithSecrets(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := ts.store.SetSecret(ctx, store.SecretScope{RepoID: ts.pub.ID}, "PASSWORD", []byte("env-secret")); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.WriteVariable(ctx, store.SecretScope{OwnerID: ts.users["alice"].ID}, store.VarUpsert, "REGION", "", "eu"); err != nil {
		t.Fatal(err)
	}
	wf := "name: W\non: push\nenv:\n  WF: wf-${{ vars.REGION }}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    env:\n      PASSWORD: ${{ secrets.PASSWORD }}\n      PLAIN: plain\n" +
		"    steps:\n      - run: echo\n"
	job := ts.claimWorkflow(ts.pub, wf)
	envCtx, _ := job.Contexts["env"].(map[string]any)
	if job.Env["PASSWORD"] != "env-secret" || job.Env["WF"] != "wf-eu" || job.Env["PLAIN"] != "plain" || envCtx["PASSWORD"] != "env-secret" {
		t.Fatalf("claim env %v, env context %v", job.Env, envCtx)
	}
	var stored string
	if err := ts.store.DBForTest().QueryRow("SELECT env FROM jobs WHERE id = ?", job.JobID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "env-secret") {
		t.Fatalf("jobs.env holds the secret: %s", stored)
	}
}
