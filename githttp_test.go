package main

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"shithub-actions/internal/store"
)

// gitClient runs the real git against the test server, never prompting.
func gitClient(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=",
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestGitHTTP fetches and pushes through the git endpoint with the real git
// client: anonymous, PATs of each permission, and GITHUB_TOKENs, and checks
// which pushes start runs.
func TestGitHTTP(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	hs := httptest.NewServer(ts.srv)
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")
	work := t.TempDir()

	// A bare, private repository to push to.
	bare := filepath.Join(work, "site.git")
	if out, err := gitClient(t, work, "clone", "-q", "--bare", ts.git, bare); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	site, err := ts.store.CreateRepo(ctx, ts.users["alice"], "site", bare, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.store.Grant(ctx, site, ts.users["bob"], store.PermWrite); err != nil {
		t.Fatal(err)
	}
	if err := ts.store.Grant(ctx, site, ts.users["carol"], store.PermRead); err != nil {
		t.Fatal(err)
	}
	repoURL := func(user, secret, path string) string {
		u := &url.URL{Scheme: "http", Host: host, Path: path}
		if secret != "" {
			u.User = url.UserPassword(user, secret)
		}
		return u.String()
	}
	clone := func(name, u string) error {
		t.Helper()
		out, err := gitClient(t, work, "clone", "-q", u, filepath.Join(work, name))
		if err != nil {
			t.Logf("clone %s: %s", name, out)
		}
		return err
	}

	// Fetching.
	if err := clone("pub-anon", repoURL("", "", "/alice/pub.git")); err != nil {
		t.Fatal("anonymous clone of a public repository failed")
	}
	if err := clone("priv-anon", repoURL("", "", "/alice/site.git")); err == nil {
		t.Fatal("anonymous clone of a private repository worked")
	}
	if err := clone("priv-dave", repoURL("dave", ts.tokens["dave"], "/alice/site.git")); err == nil {
		t.Fatal("an outsider cloned a private repository")
	}
	if err := clone("priv-carol", repoURL("carol", ts.tokens["carol:read"], "/alice/site")); err != nil {
		t.Fatal("a reader could not clone (without .git)")
	}
	if err := clone("site", repoURL("x-access-token", ts.tokens["bob"], "/alice/site.git")); err != nil {
		t.Fatal("a writer could not clone")
	}

	// Pushing: a commit that changes the workflow's trigger branch.
	dir := filepath.Join(work, "site")
	push := func(secret, ref string) (string, error) {
		t.Helper()
		return gitClient(t, dir, "push", repoURL("x-access-token", secret, "/alice/site.git"), "HEAD:"+ref)
	}
	if err := os.WriteFile(filepath.Join(dir, "CHANGES"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := gitClient(t, dir, "commit", "-qam", "x", "--allow-empty"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	gitClient(t, dir, "add", "CHANGES")
	gitClient(t, dir, "commit", "-qm", "changes")
	if out, err := push(ts.tokens["carol"], "refs/heads/main"); err == nil {
		t.Fatalf("a reader pushed: %s", out)
	}
	if out, err := push(ts.tokens["bob:read"], "refs/heads/main"); err == nil || !strings.Contains(out, "repo:write") {
		t.Fatalf("a token without repo:write pushed: %v %s", err, out)
	}
	if out, err := push(ts.tokens["bob"], "refs/heads/main"); err != nil {
		t.Fatalf("a writer could not push: %s", out)
	}
	runs, _, err := ts.store.ListRuns(ctx, site.ID, store.RunFilter{}, 1, 10)
	if err != nil || len(runs) != 1 || runs[0].Actor != "bob" || runs[0].Event != "push" {
		t.Fatalf("runs after bob's push: %d, %v", len(runs), err)
	}

	// A job of that run, with a GITHUB_TOKEN of contents: read, then write.
	jobs, err := ts.store.RunJobs(ctx, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	readTok := ts.claimToken(jobs[0].ID, store.TokenPerms{Contents: "read", Actions: "read"})
	if err := clone("job-read", repoURL("x-access-token", readTok, "/alice/site.git")); err != nil {
		t.Fatal("a GITHUB_TOKEN could not fetch its own repository")
	}
	if err := clone("job-other", repoURL("x-access-token", readTok, "/alice/priv.git")); err == nil {
		t.Fatal("a GITHUB_TOKEN fetched another private repository")
	}
	gitClient(t, dir, "commit", "-qm", "by the job", "--allow-empty")
	if out, err := push(readTok, "refs/heads/main"); err == nil || !strings.Contains(out, "contents: write") {
		t.Fatalf("a contents: read token pushed: %v %s", err, out)
	}
	ts.jobStatus(jobs[0].ID, "success", 200)
	writeTok := ts.claimToken(jobs[1].ID, store.TokenPerms{Contents: "write", Actions: "read"})
	if out, err := push(writeTok, "refs/heads/main"); err != nil {
		t.Fatalf("a contents: write token could not push: %s", out)
	}
	if runs2, _, _ := ts.store.ListRuns(ctx, site.ID, store.RunFilter{}, 1, 10); len(runs2) != 1 {
		t.Fatalf("a GITHUB_TOKEN's push started runs: %d runs", len(runs2))
	}
	// Its job ends: the token no longer fetches.
	ts.jobStatus(jobs[1].ID, "success", 200)
	if err := clone("job-ended", repoURL("x-access-token", writeTok, "/alice/site.git")); err == nil {
		t.Fatal("a GITHUB_TOKEN fetched after its job ended")
	}
	// A PAT's push of a new branch tip starts runs again.
	gitClient(t, dir, "commit", "-qm", "by bob", "--allow-empty")
	if out, err := push(ts.tokens["bob"], "refs/heads/main"); err != nil {
		t.Fatalf("%s", out)
	}
	if runs3, _, _ := ts.store.ListRuns(ctx, site.ID, store.RunFilter{}, 1, 10); len(runs3) != 2 {
		t.Fatalf("after bob's second push: %d runs, want 2", len(runs3))
	}
}

// TestGitHTTPErrors: answers git can act on, without git.
func TestGitHTTPErrors(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		method, path, auth string
		code               int
		challenge          bool
	}{
		{"GET", "/alice/priv.git/info/refs?service=git-upload-pack", "", 401, true},
		{"GET", "/alice/nope.git/info/refs?service=git-upload-pack", "", 401, true},
		{"GET", "/alice/nope.git/info/refs?service=git-upload-pack", bearer(ts.tokens["alice"]), 404, false},
		{"GET", "/alice/pub.git/info/refs", "", 404, false}, // the dumb protocol is not served
		{"GET", "/alice/pub.git/info/refs?service=git-receive-pack", "", 401, true},
		{"GET", "/alice/pub.git/info/refs?service=git-receive-pack", bearer(ts.tokens["carol"]), 403, false},
		{"GET", "/alice/pub.git/info/refs?service=git-upload-pack", "Basic " + "eDpiYWQ=", 401, true},
		{"POST", "/alice/pub.git/git-receive-pack", bearer(ts.tokens["bob"]), 400, false}, // no commands
	}
	for _, tc := range tests {
		res := ts.do(request{method: tc.method, path: tc.path, auth: tc.auth})
		if res.code != tc.code {
			t.Errorf("%s %s: status = %d, want %d; body %s", tc.method, tc.path, res.code, tc.code, res.body)
		}
		if got := strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic"); got != tc.challenge {
			t.Errorf("%s %s: Basic challenge = %v, want %v", tc.method, tc.path, got, tc.challenge)
		}
	}
	res := ts.do(request{method: "GET", path: "/alice/pub.git/info/refs?service=git-upload-pack"})
	if res.code != 200 || res.header.Get("Content-Type") != "application/x-git-upload-pack-advertisement" {
		t.Fatalf("info/refs: %d %q", res.code, res.header.Get("Content-Type"))
	}
}

// TestHookLeavesHTTPPushesToServer: the post-receive hook starts nothing for
// a push through the server's git endpoint.
func TestHookLeavesHTTPPushesToServer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	gitDir, sha := newGitRepo(t, map[string]string{".shithub/workflows/ci.yml": testWorkflow})
	for _, args := range [][]string{{"user", "create", "alice"}, {"repo", "create", "alice/hello", "--git", gitDir}} {
		if code, _, stderr := cliRun(t, db, "", args...); code != 0 {
			t.Fatal(stderr)
		}
	}
	t.Setenv(gitHTTPPushEnv, "1")
	code, stdout, stderr := cliRun(t, db, gitZeroSHA+" "+sha+" refs/heads/main\n", "hook", "post-receive", "--repo", "alice/hello")
	if code != 0 || stdout != "" {
		t.Fatalf("hook: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// FuzzGitReadPushCommands: any request body gives commands or a clear
// error, never a panic, and the body http-backend then reads is the body
// sent.
func FuzzGitReadPushCommands(f *testing.F) {
	f.Add([]byte("00680000000000000000000000000000000000000000 1111111111111111111111111111111111111111 refs/heads/main\x00report-status\n0000PACK"))
	f.Add([]byte("0000"))
	f.Add([]byte("zzzz"))
	f.Add([]byte("0003"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/a/b.git/git-receive-pack", bytes.NewReader(body))
		cmds, err := gitReadPushCommands(r)
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(r.Body)
		if !bytes.Equal(rest, body) {
			t.Fatalf("http-backend would read %q, not %q", rest, body)
		}
		for _, c := range cmds {
			if !gitIsSHA(c.Old) || !gitIsSHA(c.New) || c.Ref == "" {
				t.Fatalf("bad command %+v", c)
			}
		}
	})
}
