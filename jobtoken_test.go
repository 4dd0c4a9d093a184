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
