package store

import (
	"context"
	"fmt"
	"shithub-actions/internal/workflow"
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
		got := WorkflowJobRefs([]byte(tc.wf), tc.job)
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
		want               TokenPerms
	}{
		{"default", "on: push\n", "", DefaultTokenPerms},
		{"write-all", "on: push\npermissions: write-all\n", "", TokenPerms{Contents: "write", Actions: "write"}},
		{"read-all", "on: push\npermissions: read-all\n", "", TokenPerms{Contents: "read", Actions: "read"}},
		{"job wins", "on: push\npermissions: read-all\n", "    permissions:\n      contents: write\n", TokenPerms{Contents: "write", Actions: "none"}},
		{"empty", "on: push\npermissions: {}\n", "", TokenPerms{Contents: "none", Actions: "none"}},
		{"other scopes", "on: push\npermissions:\n  actions: write\n  packages: read\n", "", TokenPerms{Contents: "none", Actions: "write"}},
		{"does not parse", "on: push\npermissions: bogus\n", "", DefaultTokenPerms},
	}
	for _, tc := range tests {
		wf := tc.wf + fmt.Sprintf(job, tc.jobPerms)
		if got := workflowJobPerms(".shithub/workflows/w.yml", []byte(wf), "a"); got != tc.want {
			t.Errorf("%s: %+v, want %+v\n%s", tc.name, got, tc.want, wf)
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

// TestClaimEnvWithSecrets: env that reads secrets or vars, evaluated when
// the job became ready without them, is evaluated again in the claim; the
// database keeps the value without the secret.
func TestClaimEnvWithSecrets(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	if _, err := ts.SetSecret(ctx, SecretScope{RepoID: ts.pub.ID}, "PASSWORD", []byte("env-secret")); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.WriteVariable(ctx, SecretScope{OwnerID: ts.users["alice"].ID}, VarUpsert, "REGION", "", "eu"); err != nil {
		t.Fatal(err)
	}
	wf := "name: W\non: push\nenv:\n  WF: wf-${{ vars.REGION }}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    env:\n      PASSWORD: ${{ secrets.PASSWORD }}\n      PLAIN: plain\n" +
		"      GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n      GITHUB_SHA: mine\n" +
		"    steps:\n      - run: echo\n"
	job := ts.claimWorkflow(ts.pub, wf)
	envCtx, _ := job.Contexts["env"].(map[string]any)
	if job.Env["PASSWORD"] != "env-secret" || job.Env["WF"] != "wf-eu" || job.Env["PLAIN"] != "plain" || envCtx["PASSWORD"] != "env-secret" {
		t.Fatalf("claim env %v, env context %v", job.Env, envCtx)
	}
	// GITHUB_TOKEN is no runner variable: the job's own env sets it (gh and
	// scripts read it so); GITHUB_SHA stays the runner's.
	gh, _ := job.Contexts["github"].(map[string]any)
	if tok, _ := gh["token"].(string); tok == "" || job.Env["GITHUB_TOKEN"] != tok || job.Env["GITHUB_SHA"] == "mine" {
		t.Fatalf("claim env GITHUB_TOKEN %q (token %q), GITHUB_SHA %q", job.Env["GITHUB_TOKEN"], tok, job.Env["GITHUB_SHA"])
	}
	var stored string
	if err := ts.db.QueryRow("SELECT env FROM jobs WHERE id = ?", job.JobID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "env-secret") {
		t.Fatalf("jobs.env holds the secret: %s", stored)
	}
}

// TestJobDelivery: a job receives the secrets it references and no
// others, plus GITHUB_TOKEN and the variables; a fork's pull request
// receives no secrets and a read-only token.
func TestJobDelivery(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	for name, v := range map[string]string{"USED": "u-value", "UNUSED": "x-value"} {
		if _, err := ts.SetSecret(ctx, SecretScope{RepoID: ts.pub.ID}, name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.WriteVariable(ctx, SecretScope{RepoID: ts.pub.ID}, VarUpsert, "REGION", "", "eu"); err != nil {
		t.Fatal(err)
	}
	wf := "name: W\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets.used }} ${{ secrets.MISSING }}\n"
	job := ts.claimWorkflow(ts.pub, wf)
	d, err := ts.JobDelivery(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, []string{"GITHUB_TOKEN", "USED"}) || d.Secrets["USED"] != "u-value" {
		t.Fatalf("delivered secrets %v", got)
	}
	if d.Vars["REGION"] != "eu" || d.Perms != DefaultTokenPerms || !strings.HasPrefix(d.Token, JobTokenPrefix) {
		t.Fatalf("delivery: vars %v perms %+v", d.Vars, d.Perms)
	}
	// The same job's delivery is the same token every time.
	if d2, _ := ts.JobDelivery(ctx, job.JobID); d2.Token != d.Token {
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
	if _, _, err := ts.CreateRuns(ctx, nil, []RunSpec{{
		RepoID: ts.pub.ID, File: ".shithub/workflows/w.yml", Content: []byte(wf), Workflow: parsed,
		HeadSHA: ts.sha, HeadRef: "refs/pull/1/merge", Event: "pull_request", ActorID: ts.users["dave"].ID,
	}}); err != nil {
		t.Fatal(err)
	}
	pr := ts.heartbeat()
	d, err = ts.JobDelivery(ctx, pr.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, []string{"GITHUB_TOKEN"}) || d.Perms != (TokenPerms{Contents: "read", Actions: "read"}) {
		t.Fatalf("fork pull request: secrets %v perms %+v", got, d.Perms)
	}
	// A pull request from a branch of the repository itself gets them.
	same := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "alice/pub"}}}}
	if _, _, err := ts.CreateRuns(ctx, nil, []RunSpec{{
		RepoID: ts.pub.ID, File: ".shithub/workflows/w.yml", Content: []byte(wf), Workflow: parsed,
		HeadSHA: ts.sha, HeadRef: "refs/pull/2/merge", Event: "pull_request", ActorID: ts.users["bob"].ID, Payload: same,
	}}); err != nil {
		t.Fatal(err)
	}
	pr2 := ts.heartbeat()
	if d, err = ts.JobDelivery(ctx, pr2.JobID); err != nil || d.Secrets["USED"] != "u-value" {
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
