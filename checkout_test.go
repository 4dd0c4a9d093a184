package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"shithub-actions/internal/executor"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// checkoutRepos makes alice/app (main: two commits, the first tagged v1;
// a branch feature; a submodule vendor/lib from ../lib.git), alice/lib
// (private, opened by alice to her repositories' jobs; with a submodule
// leaf from another host's alice/leaf), alice/leaf and dave's private
// dave/secret on ts's server.
type checkoutRepos struct {
	app, lib, leaf                string // git directories
	first, head, feature, libHead string
	leafHead                      string
	appRepo                       *store.Repo
}

func newCheckoutRepos(t *testing.T, ts *testServer) *checkoutRepos {
	t.Helper()
	ctx := context.Background()
	cr := &checkoutRepos{}
	var leafDir, libDir string
	leafDir, cr.leafHead = newGitRepo(t, map[string]string{"LEAF": "leaf\n"})
	libDir, _ = newGitRepo(t, map[string]string{"README": "lib\n",
		".gitmodules": "[submodule \"leaf\"]\n\tpath = leaf\n\turl = https://elsewhere.example/alice/leaf.git\n"})
	gitCmd(t, libDir, "update-index", "--add", "--cacheinfo", "160000,"+cr.leafHead+",leaf")
	gitCmd(t, libDir, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "leaf")
	cr.libHead = strings.TrimSpace(gitCmd(t, libDir, "rev-parse", "HEAD"))

	appDir, first := newGitRepo(t, map[string]string{"README": "first\n"})
	cr.first = first
	gitCmd(t, appDir, "-c", "user.name=T", "-c", "user.email=t@example.com", "tag", "-a", "-m", "v1", "v1")
	cr.head = commitFiles(t, appDir, map[string]string{"README": "second\n",
		".gitmodules": "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n"})
	gitCmd(t, appDir, "update-index", "--add", "--cacheinfo", "160000,"+cr.libHead+",vendor/lib")
	gitCmd(t, appDir, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "lib")
	cr.head = strings.TrimSpace(gitCmd(t, appDir, "rev-parse", "HEAD"))
	gitCmd(t, appDir, "checkout", "-q", "-b", "feature", first)
	cr.feature = commitFiles(t, appDir, map[string]string{"FEATURE": "yes\n"})
	gitCmd(t, appDir, "checkout", "-q", "main")

	secretDir, _ := newGitRepo(t, map[string]string{"SECRET": "s\n"})
	cr.app, cr.lib, cr.leaf = filepath.Join(appDir, ".git"), filepath.Join(libDir, ".git"), filepath.Join(leafDir, ".git")
	var err error
	if cr.appRepo, err = ts.store.CreateRepo(ctx, ts.users["alice"], "app", cr.app, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		owner, name, dir string
		private          bool
	}{{"alice", "lib", cr.lib, true}, {"alice", "leaf", cr.leaf, false}, {"dave", "secret", filepath.Join(secretDir, ".git"), true}} {
		repo, err := ts.store.CreateRepo(ctx, ts.users[r.owner], r.name, r.dir, r.private)
		if err != nil {
			t.Fatal(err)
		}
		if r.name == "lib" {
			if err := ts.store.SetActionsAccess(ctx, repo.ID, store.AccessUser); err != nil {
				t.Fatal(err)
			}
		}
	}
	return cr
}

// TestCheckout checks out through both sources (the server's own pool
// and a remote runner over the job's git endpoint) with actions/checkout's
// inputs, and checks each checkout is a self-contained repository.
func TestCheckout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cr := newCheckoutRepos(t, ts)
	ctx := context.Background()
	wf, err := workflow.Parse("ci.yml", []byte(testWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	runs, _, err := ts.store.CreateRuns(ctx, nil, []store.RunSpec{{
		RepoID: cr.appRepo.ID, File: ".shithub/workflows/ci.yml", Content: []byte(testWorkflow), Workflow: wf,
		HeadSHA: cr.head, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}})
	if err != nil || len(runs) != 1 {
		t.Fatal(err)
	}
	job := ts.heartbeat()
	if job == nil || job.HeadSHA != cr.head {
		t.Fatalf("claimed %+v, want a job of alice/app at %s", job, cr.head)
	}
	srv := httptest.NewServer(ts.srv)
	t.Cleanup(srv.Close)
	remote := executor.NewRemoteSource(srv.URL, ts.rtoken, 1, slog.New(slog.DiscardHandler))
	remote.MaxBackoff = remote.MinBackoff
	local := &localSource{store: ts.store, runner: ts.runner}

	gitFn := func(dir string, args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git -C %s %v: %v\n%s", dir, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	for _, src := range []struct {
		name string
		src  executor.JobSource
	}{{"local", local}, {"remote", remote}} {
		for _, tc := range []struct {
			name  string
			with  map[string]string
			check func(dir string) []string // what is wrong
			err   string
		}{
			{name: "default", check: func(dir string) (bad []string) {
				if got := gitFn(dir, "rev-parse", "HEAD"); got != cr.head {
					bad = append(bad, "HEAD "+got)
				}
				if got := gitFn(dir, "symbolic-ref", "--short", "HEAD"); got != "main" {
					bad = append(bad, "branch "+got)
				}
				if got := gitFn(dir, "rev-list", "--count", "HEAD"); got != "1" {
					bad = append(bad, "history of "+got+" commits, want 1")
				}
				if got := gitFn(dir, "tag"); got != "" {
					bad = append(bad, "tags "+got)
				}
				if got := gitFn(dir, "remote", "get-url", "origin"); got != "https://ci.example/alice/app" {
					bad = append(bad, "origin "+got)
				}
				if got := read(filepath.Join(dir, "README")); got != "second\n" {
					bad = append(bad, "README "+got)
				}
				if _, err := os.Stat(filepath.Join(dir, "vendor/lib/README")); err == nil {
					bad = append(bad, "a submodule without submodules: true")
				}
				return bad
			}},
			{name: "full history", with: map[string]string{"fetch-depth": "0"}, check: func(dir string) (bad []string) {
				if got := gitFn(dir, "rev-list", "--count", "HEAD"); got != "3" {
					bad = append(bad, "history of "+got+" commits, want 3")
				}
				if got := gitFn(dir, "rev-parse", "v1^{commit}"); got != cr.first {
					bad = append(bad, "tag v1 at "+got)
				}
				if got := gitFn(dir, "rev-parse", "origin/feature"); got != cr.feature {
					bad = append(bad, "origin/feature at "+got)
				}
				if got := gitFn(dir, "describe", "--tags"); !strings.HasPrefix(got, "v1-2-g") {
					bad = append(bad, "describe "+got)
				}
				return bad
			}},
			{name: "branch", with: map[string]string{"ref": "feature"}, check: func(dir string) (bad []string) {
				if got := gitFn(dir, "rev-parse", "HEAD"); got != cr.feature {
					bad = append(bad, "HEAD "+got)
				}
				if got := gitFn(dir, "symbolic-ref", "--short", "HEAD"); got != "feature" {
					bad = append(bad, "branch "+got)
				}
				return bad
			}},
			{name: "tag", with: map[string]string{"ref": "refs/tags/v1"}, check: func(dir string) (bad []string) {
				if got := gitFn(dir, "rev-parse", "HEAD"); got != cr.first {
					bad = append(bad, "HEAD "+got)
				}
				if got := read(filepath.Join(dir, "README")); got != "first\n" {
					bad = append(bad, "README "+got)
				}
				return bad
			}},
			{name: "sha", with: map[string]string{"ref": cr.first, "fetch-depth": "2"}, check: func(dir string) (bad []string) {
				if got := gitFn(dir, "rev-parse", "HEAD"); got != cr.first {
					bad = append(bad, "HEAD "+got)
				}
				return bad
			}},
			{name: "another repository", with: map[string]string{"repository": "alice/leaf"}, check: func(dir string) (bad []string) {
				if got := read(filepath.Join(dir, "LEAF")); got != "leaf\n" {
					bad = append(bad, "LEAF "+got)
				}
				if got := gitFn(dir, "remote", "get-url", "origin"); got != "https://ci.example/alice/leaf" {
					bad = append(bad, "origin "+got)
				}
				return bad
			}},
			{name: "submodules", with: map[string]string{"submodules": "true"}, check: func(dir string) (bad []string) {
				if got := read(filepath.Join(dir, "vendor/lib/README")); got != "lib\n" {
					bad = append(bad, "vendor/lib/README "+got)
				}
				if got := gitFn(filepath.Join(dir, "vendor/lib"), "rev-parse", "HEAD"); got != cr.libHead {
					bad = append(bad, "vendor/lib at "+got)
				}
				if _, err := os.Stat(filepath.Join(dir, "vendor/lib/leaf/LEAF")); err == nil {
					bad = append(bad, "a nested submodule without recursive")
				}
				if got := gitFn(dir, "config", "submodule.lib.url"); got != "https://ci.example/alice/lib" {
					bad = append(bad, "submodule url "+got)
				}
				return bad
			}},
			{name: "recursive", with: map[string]string{"submodules": "recursive", "fetch-depth": "0"}, check: func(dir string) (bad []string) {
				if got := read(filepath.Join(dir, "vendor/lib/leaf/LEAF")); got != "leaf\n" {
					bad = append(bad, "vendor/lib/leaf/LEAF "+got)
				}
				if got := gitFn(dir, "submodule", "status", "--recursive"); strings.Count(got, "\n") != 1 || strings.ContainsAny(got[:1], "-+U") {
					bad = append(bad, "submodule status "+got)
				}
				return bad
			}},
			{name: "unknown ref", with: map[string]string{"ref": "nope"}, err: `"nope" is neither a branch nor a tag of alice/app`},
			{name: "private repository of another owner", with: map[string]string{"repository": "dave/secret"}, err: "dave/secret"},
			{name: "private repository with a token that may read it", with: map[string]string{"repository": "dave/secret", "token": ts.tokens["dave:read"]},
				check: func(dir string) (bad []string) {
					if got := read(filepath.Join(dir, "SECRET")); got != "s\n" {
						bad = append(bad, "SECRET "+got)
					}
					return bad
				}},
			{name: "private repository with a token that may not read it", with: map[string]string{"repository": "dave/secret", "token": ts.tokens["carol:read"]}, err: "dave/secret not found"},
			{name: "a token that is not one", with: map[string]string{"repository": "alice/leaf", "token": "shithub_pat_nope"}, err: "input token: bad credentials"},
			{name: "repository not here", with: map[string]string{"repository": "alice/none"}, err: "alice/none"},
		} {
			spec, _, err := executor.ParseCheckoutInputs(tc.with, job.Repo)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "repo")
			err = src.src.Checkout(ctx, job, dir, spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%s %s: checkout = %v, want an error with %q", src.name, tc.name, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %s: %v", src.name, tc.name, err)
				continue
			}
			// Self-contained: moved elsewhere, with nothing borrowed, git
			// still has every object it needs.
			moved := filepath.Join(t.TempDir(), "moved")
			if err := os.Rename(dir, moved); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(moved, ".git/objects/info/alternates")); err == nil {
				t.Errorf("%s %s: the checkout borrows objects (alternates)", src.name, tc.name)
			}
			gitFn(moved, "fsck", "--no-progress", "--no-dangling")
			if got := gitFn(moved, "status", "--porcelain"); got != "" {
				t.Errorf("%s %s: git status = %q, want clean", src.name, tc.name, got)
			}
			if out, err := exec.Command("grep", "-r", "-l", "-e", ts.rtoken, "-e", ts.tokens["dave:read"], "-e", srv.URL,
				"-e", filepath.Dir(cr.app), "-e", filepath.Dir(cr.lib), "-e", filepath.Dir(cr.leaf), moved).CombinedOutput(); err == nil {
				t.Errorf("%s %s: the checkout holds the runner token or a host path: %s", src.name, tc.name, out)
			}
			for _, bad := range tc.check(moved) {
				t.Errorf("%s %s: %s", src.name, tc.name, bad)
			}
		}
	}
}
