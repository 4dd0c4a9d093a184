package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// reachCast adds to newTestServer's: alice/open (private, opened by alice to
// her repositories' jobs), dave/app (public) and eve, who may write
// alice/pub only (the collaborator of the issue), with tokens of every
// kind.
type reachCast struct {
	*testServer
	open, daveApp             *store.Repo
	noScope, expired, revoked string // alice's tokens
	eveToken                  string // repo:read, write on alice/pub only
	vaultDir                  string // alice/open's git directory, holding SECRET
	openSHA                   string
}

func newReachCast(t *testing.T) *reachCast {
	t.Helper()
	ctx := context.Background()
	c := &reachCast{testServer: newTestServer(t)}
	st := c.store
	dir, sha := newGitRepo(t, map[string]string{"SECRET": "the crown jewels\n"})
	c.vaultDir, c.openSHA = filepath.Join(dir, ".git"), sha
	var err error
	if c.open, err = st.CreateRepo(ctx, c.users["alice"], "open", c.vaultDir, true); err != nil {
		t.Fatal(err)
	}
	if err := st.SetActionsAccess(ctx, c.open.ID, store.AccessUser); err != nil {
		t.Fatal(err)
	}
	if c.daveApp, err = st.CreateRepo(ctx, c.users["dave"], "app", filepath.Join(c.git, ".git"), false); err != nil {
		t.Fatal(err)
	}
	eve, err := st.CreateUser(ctx, "eve")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Grant(ctx, c.pub, eve, store.PermWrite); err != nil {
		t.Fatal(err)
	}
	if _, c.eveToken, err = st.CreateToken(ctx, eve, "", []string{store.ScopeRead}, 0); err != nil {
		t.Fatal(err)
	}
	alice := c.users["alice"]
	if _, c.noScope, err = st.CreateToken(ctx, alice, "", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, c.expired, err = st.CreateToken(ctx, alice, "", []string{store.ScopeRead}, time.Hour); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := st.CreateToken(ctx, alice, "", []string{store.ScopeRead}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.revoked = secret
	if err := st.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	c.clock.Add(2 * time.Hour) // c.expired is past its hour
	return c
}

// TestReachRepo is the rule (reach.go) as a table: who reaches which
// repository of this server, and how a refusal reads.
func TestReachRepo(t *testing.T) {
	t.Parallel()
	c := newReachCast(t)
	ctx := context.Background()
	job := func(r *store.Repo) store.RepoReach { return store.RepoReach{From: r} }
	fork := func(r *store.Repo) store.RepoReach { return store.RepoReach{From: r, Untrusted: true} }
	withToken := func(rr store.RepoReach, tok string) store.RepoReach { rr.Token = tok; return rr }
	for _, tc := range []struct {
		name   string
		from   store.RepoReach
		target string
		code   apperr.Code // 0: reached
		msg    string
	}{
		{name: "own private repository", from: job(c.priv), target: "alice/priv"},
		{name: "own private repository from a fork's pull request", from: fork(c.priv), target: "alice/priv"},
		{name: "public repository of another owner", from: job(c.daveApp), target: "alice/pub"},
		{name: "public repository from a fork's pull request", from: fork(c.pub), target: "dave/app"},
		{name: "private, same owner, not opened", from: job(c.pub), target: "alice/priv", code: apperr.NotFound},
		{name: "private, same owner, opened", from: job(c.pub), target: "alice/open"},
		{name: "private, opened, other owner", from: job(c.daveApp), target: "alice/open", code: apperr.NotFound},
		{name: "private, opened, from a fork's pull request", from: fork(c.pub), target: "alice/open", code: apperr.NotFound},
		{name: "private, with a token that may read it, from a fork's pull request", from: withToken(fork(c.pub), c.tokens["alice:read"]), target: "alice/priv", code: apperr.NotFound},
		{name: "token with repo:read of the owner", from: withToken(job(c.daveApp), c.tokens["alice:read"]), target: "alice/priv"},
		{name: "token with repo:write of a reader", from: withToken(job(c.daveApp), c.tokens["carol"]), target: "alice/priv"},
		{name: "token without repo:read", from: withToken(job(c.pub), c.noScope), target: "alice/priv", code: apperr.Forbidden,
			msg: "input token: token lacks the repo:read scope"},
		{name: "token of a user who may not read it", from: withToken(job(c.daveApp), c.tokens["dave:read"]), target: "alice/priv", code: apperr.NotFound},
		{name: "token of a writer of alice/pub only", from: withToken(job(c.pub), c.eveToken), target: "alice/priv", code: apperr.NotFound},
		{name: "expired token", from: withToken(job(c.pub), c.expired), target: "alice/priv", code: apperr.Unauthenticated, msg: "input token: token expired"},
		{name: "revoked token", from: withToken(job(c.pub), c.revoked), target: "alice/priv", code: apperr.Unauthenticated, msg: "input token: token revoked"},
		{name: "not a token", from: withToken(job(c.pub), "hunter2"), target: "alice/priv", code: apperr.Unauthenticated, msg: "input token: bad credentials"},
		{name: "a GITHUB_TOKEN reaches no more than the job", from: withToken(job(c.pub), store.JobTokenPrefix+strings.Repeat("a", 32)), target: "alice/priv", code: apperr.NotFound},
		{name: "no such repository", from: job(c.pub), target: "alice/nothere", code: apperr.NotFound},
		{name: "the command line: public", from: store.RepoReach{}, target: "alice/pub"},
		{name: "the command line: private", from: store.RepoReach{}, target: "alice/open", code: apperr.NotFound},
	} {
		owner, name, _ := strings.Cut(tc.target, "/")
		repo, err := c.store.ReachRepo(ctx, tc.from, owner, name)
		switch {
		case tc.code == 0 && err != nil:
			t.Errorf("%s: %v, want %s reached", tc.name, err, tc.target)
		case tc.code == 0 && repo.FullName() != tc.target:
			t.Errorf("%s: reached %s, want %s", tc.name, repo.FullName(), tc.target)
		case tc.code != 0 && errorCode(err) != tc.code:
			t.Errorf("%s: %v (code %d), want code %d", tc.name, err, errorCode(err), tc.code)
		case tc.msg != "" && (err == nil || err.Error() != tc.msg):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.msg)
		case tc.code == apperr.NotFound && err.Error() != store.ErrUnreachable(tc.target).Error():
			// One wording whether the repository exists or not.
			t.Errorf("%s: %q, want %q", tc.name, err, store.ErrUnreachable(tc.target))
		}
	}
}

// reachWorkflow has one job, so each run's job is the next claimed.
const reachWorkflow = `on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo building
`

// claimRun makes a run on repo as a fork's pull request (event
// pull_request, the head in another repository) or as a push, and claims
// its job.
func (c *reachCast) claimRun(t *testing.T, repo *store.Repo, event string) *protocol.Job {
	t.Helper()
	ctx := context.Background()
	wf, err := workflow.Parse("ci.yml", []byte(reachWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{}
	if event == "pull_request" {
		payload = map[string]any{"action": "opened", "number": 1, "pull_request": map[string]any{
			"number": 1, "head": map[string]any{"ref": "evil", "sha": c.sha, "repo": map[string]any{"full_name": "mallory/pub"}},
			"base": map[string]any{"ref": "main", "sha": c.sha}}}
	}
	if _, _, err := c.store.CreateRuns(ctx, nil, []store.RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/ci.yml", Content: []byte(reachWorkflow), Workflow: wf,
		HeadSHA: c.sha, HeadRef: "refs/heads/main", Event: event, Payload: payload, ActorID: c.users["alice"].ID,
	}}); err != nil {
		t.Fatal(err)
	}
	job := c.heartbeat()
	if job == nil {
		t.Fatal("no job to claim")
	}
	return job
}

// TestReachEntryPoints checks the rule where jobs reach other
// repositories: the runner's git endpoint (remote runners), the server's
// own checkout, and the action store's resolver. A fork's pull request on
// alice/pub reaches neither the opened alice/open nor alice/priv, even
// when the runner sends a token of alice's that may read them; a push
// reaches the opened one, and the other with the token only.
func TestReachEntryPoints(t *testing.T) {
	t.Parallel()
	c := newReachCast(t)
	ctx := context.Background()
	local := &localSource{store: c.store, runner: c.runner}
	gitRefs := func(job *protocol.Job, repo, token string) response {
		rq := request{method: "GET", auth: bearer(c.rtoken),
			path: fmt.Sprintf("/api/v1/jobs/%d/git/%s/info/refs?service=git-upload-pack", job.JobID, repo)}
		if token != "" {
			rq.header = map[string]string{executor.CheckoutTokenHeader: token}
		}
		return c.do(rq)
	}
	type want struct{ open, priv, privToken bool }
	for _, tc := range []struct {
		event string
		want  want
	}{
		{"pull_request", want{}},
		{"push", want{open: true, privToken: true}},
	} {
		job := c.claimRun(t, c.pub, tc.event)
		for _, ask := range []struct {
			repo, token string
			want        bool
		}{
			{"alice/open", "", tc.want.open},
			{"alice/open", c.tokens["alice:read"], tc.want.open || tc.want.privToken},
			{"alice/priv", "", tc.want.priv},
			{"alice/priv", c.tokens["alice:read"], tc.want.privToken},
		} {
			what := fmt.Sprintf("%s job asking for %s (token %v)", tc.event, ask.repo, ask.token != "")
			res := gitRefs(job, ask.repo, ask.token)
			if ask.want && res.code != http.StatusOK {
				t.Errorf("git endpoint, %s: %d %s, want 200", what, res.code, res.body)
			}
			if !ask.want && (res.code != http.StatusNotFound || strings.Contains(string(res.body), "refs/heads")) {
				t.Errorf("git endpoint, %s: %d %.200s, want 404", what, res.code, res.body)
			}
			spec := executor.DefaultCheckout
			spec.Repository, spec.Token = ask.repo, ask.token
			err := local.Checkout(ctx, job, filepath.Join(t.TempDir(), "repo"), spec)
			if ask.want && err != nil {
				t.Errorf("local checkout, %s: %v", what, err)
			}
			if !ask.want && !errors.Is(err, apperr.ErrNotFound) {
				t.Errorf("local checkout, %s: %v, want not found", what, err)
			}
			if ask.token != "" {
				continue // uses: takes no token
			}
			owner, name, _ := strings.Cut(ask.repo, "/")
			_, err = c.store.ActionRepo(ctx, owner, name, job.JobID)
			if ask.want != (err == nil) || (err != nil && !errors.Is(err, apperr.ErrNotFound)) {
				t.Errorf("action store, %s: %v, want reached %v", what, err, ask.want)
			}
		}
		c.jobStatus(job.JobID, protocol.ConclusionSuccess, http.StatusOK)
	}
}

// TestActionsAccessAPI sets and reads the access level as GitHub's REST
// API does: admin only, and a repository the caller may not read is not
// found.
func TestActionsAccessAPI(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	path := "/api/v1/repos/alice/priv/actions/permissions/access"
	var got struct {
		AccessLevel string `json:"access_level"`
	}
	ts.want(request{method: "GET", path: path, auth: bearer(ts.tokens["alice:read"])}, http.StatusOK, &got)
	if got.AccessLevel != store.AccessNone {
		t.Errorf("access_level = %q, want none", got.AccessLevel)
	}
	for _, tc := range []struct {
		who, body string
		code      int
	}{
		{"alice:read", `{"access_level":"user"}`, http.StatusForbidden}, // lacks repo:write
		{"bob", `{"access_level":"user"}`, http.StatusForbidden},        // write, not admin
		{"dave", `{"access_level":"user"}`, http.StatusNotFound},        // may not read it
		{"alice", `{"access_level":"everyone"}`, http.StatusUnprocessableEntity},
		{"alice", `{}`, http.StatusUnprocessableEntity},
		{"alice", `{"access_level":"user"}`, http.StatusNoContent},
	} {
		if res := ts.do(request{method: "PUT", path: path, auth: bearer(ts.tokens[tc.who]), body: tc.body}); res.code != tc.code {
			t.Errorf("PUT by %s with %s: %d %s, want %d", tc.who, tc.body, res.code, res.body, tc.code)
		}
	}
	ts.want(request{method: "GET", path: path, auth: bearer(ts.tokens["alice"])}, http.StatusOK, &got)
	if got.AccessLevel != store.AccessUser {
		t.Errorf("access_level = %q after PUT user", got.AccessLevel)
	}
	if res := ts.do(request{method: "GET", path: path, auth: bearer(ts.tokens["carol"])}); res.code != http.StatusForbidden {
		t.Errorf("GET by a reader: %d, want 403", res.code)
	}
}

// TestCLIRepoAccess opens a private repository to its owner's other
// repositories and closes it again from the command line.
func TestCLIRepoAccess(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "x.db")
	gitFn, _ := newGitRepo(t, map[string]string{"README": "x\n"})
	cli := func(args ...string) (string, error) {
		var out, errb strings.Builder
		err := run(context.Background(), append([]string{"--db", db}, args...), strings.NewReader(""), &out, &errb)
		return out.String(), err
	}
	for _, args := range [][]string{{"user", "create", "alice"}, {"repo", "create", "alice/priv", "--git", gitFn, "--private"}} {
		if _, err := cli(args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		out  string
		err  bool
	}{
		{args: []string{"repo", "access", "alice/priv"}, out: "alice/priv: access none ("},
		{args: []string{"repo", "access", "alice/priv", "user"}, out: "alice/priv: access user (jobs of alice's other repositories reach it too"},
		{args: []string{"repo", "access", "alice/priv"}, out: "alice/priv: access user ("},
		{args: []string{"repo", "access", "alice/priv", "none"}, out: "alice/priv: access none ("},
		{args: []string{"repo", "access", "alice/priv", "all"}, err: true},
		{args: []string{"repo", "access", "alice/nothere", "user"}, err: true},
	} {
		out, err := cli(tc.args...)
		if (err != nil) != tc.err || !strings.HasPrefix(out, tc.out) {
			t.Errorf("%v: %q, %v", tc.args, out, err)
		}
	}
}
