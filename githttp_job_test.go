package main

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// pushWorkflow asks for contents: write, as a workflow that pushes back
// does.
const pushWorkflow = `on: [push, pull_request]
permissions:
  contents: write
jobs:
  push:
    runs-on: ubuntu-latest
    steps:
      - run: git push
`

// TestGitHTTPJobTokenPush is the attacker's side of a GITHUB_TOKEN push
// (checkout persists the token in the job's .git/config, so every job
// holds one): a token pushes only its own repository, only with contents:
// write, never from a fork's pull request whatever its workflow asks for;
// each refusal says why. The positive control lands and starts no run.
func TestGitHTTPJobTokenPush(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	hs := httptest.NewServer(ts.srv)
	defer hs.Close()
	work := t.TempDir()

	// alice/site, public, and alice/other, public too: a job of site
	// reads other, and must not push it.
	newRepo := func(name string) *store.Repo {
		bare := filepath.Join(work, name+".git")
		if out, err := gitClient(t, work, "clone", "-q", "--bare", ts.git, bare); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		r, err := ts.store.CreateRepo(ctx, ts.users["alice"], name, bare, false)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	site, other := newRepo("site"), newRepo("other")

	// tokenFor makes a run of pushWorkflow on repo for event, claims its
	// job as a runner would (the permissions from the workflow, capped for
	// a fork's pull request) and returns the job's token.
	tokenFor := func(repo *store.Repo, event string, payload map[string]any) string {
		t.Helper()
		wf, err := workflow.Parse("x.yml", []byte(pushWorkflow))
		if err != nil {
			t.Fatal(err)
		}
		ref := "refs/heads/main"
		if event == "pull_request" {
			ref = "refs/pull/1/merge"
		}
		runs, _, err := ts.store.CreateRuns(ctx, nil, []store.RunSpec{{
			RepoID: repo.ID, File: ".shithub/workflows/x.yml", Content: []byte(pushWorkflow), Workflow: wf,
			HeadSHA: ts.sha, HeadRef: ref, Event: event, Payload: payload, ActorID: ts.users["alice"].ID,
		}})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := ts.store.RunJobs(ctx, runs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		err = ts.store.WithTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec("UPDATE jobs SET status = 'running', runner_id = ?, started_at = ? WHERE id = ?", ts.runner.ID, ts.store.NowMS(), jobs[0].ID); err != nil {
				return err
			}
			return ts.store.IssueJobCredentials(ctx, tx, jobs[0].ID, ts.store.NowMS())
		})
		if err != nil {
			t.Fatal(err)
		}
		d, err := ts.store.JobDelivery(ctx, jobs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return d.Token
	}
	fork := map[string]any{"pull_request": map[string]any{"number": 1,
		"head": map[string]any{"ref": "evil", "repo": map[string]any{"full_name": "mallory/site"}}}}

	clone := filepath.Join(work, "clone")
	if out, err := gitClient(t, work, "clone", "-q", ts.git, clone); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	os.WriteFile(filepath.Join(clone, "PUSHED"), []byte("by a job\n"), 0o644)
	gitClient(t, clone, "add", "PUSHED")
	gitClient(t, clone, "commit", "-qm", "pushed by a job")
	push := func(tok, repo string) (string, error) {
		u := &url.URL{Scheme: "http", Host: strings.TrimPrefix(hs.URL, "http://"), Path: "/" + repo + ".git",
			User: url.UserPassword("x-access-token", tok)}
		return gitClient(t, clone, "push", u.String(), "HEAD:refs/heads/main")
	}
	siteWrite := tokenFor(site, "push", nil)
	for _, tc := range []struct {
		name, token, repo, want string
	}{
		{"a token of site pushes other", siteWrite, "alice/other", "may push only its own repository, alice/site"},
		{"a fork's pull request asks for contents: write", tokenFor(site, "pull_request", fork), "alice/site", "may not push"},
		{"a fork's pull request pushes another repository", tokenFor(site, "pull_request", fork), "alice/other", "may push only its own repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := push(tc.token, tc.repo)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("push = %v, want refused saying %q:\n%s", err, tc.want, out)
			}
		})
	}
	for _, r := range []*store.Repo{site, other} {
		if got, _ := gitClient(t, work, "--git-dir", r.GitDir, "log", "-1", "--format=%s", "main"); strings.Contains(got, "pushed by a job") {
			t.Errorf("%s received the refused push", r.FullName())
		}
	}

	// The control: the same-repository push of a contents: write token
	// lands, and starts no run.
	before, _, _ := ts.store.ListRuns(ctx, site.ID, store.RunFilter{}, 1, 100)
	if out, err := push(siteWrite, "alice/site"); err != nil {
		t.Fatalf("the job's own push: %v\n%s", err, out)
	}
	if got, _ := gitClient(t, work, "--git-dir", site.GitDir, "log", "-1", "--format=%s", "main"); strings.TrimSpace(got) != "pushed by a job" {
		t.Errorf("site's main = %q, want the job's commit", got)
	}
	if after, _, _ := ts.store.ListRuns(ctx, site.ID, store.RunFilter{}, 1, 100); len(after) != len(before) {
		t.Errorf("the job's push started runs: %d before, %d after", len(before), len(after))
	}
}
