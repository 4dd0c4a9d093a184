package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/workflow"
)

// newActionMirror makes a file:// mirrors directory holding OWNER/REPO with
// files committed on main and tagged v1; it returns the directory, the
// repository's path and the commit.
func newActionMirror(t *testing.T, owner, repo string, files map[string]string) (mirrors, dir, sha string) {
	t.Helper()
	mirrors = t.TempDir()
	dir = filepath.Join(mirrors, owner, repo)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, dir, "init", "-q", "-b", "main")
	sha = commitFiles(t, dir, files)
	gitCmd(t, dir, "tag", "v1")
	return mirrors, dir, sha
}

func TestActionStoreFetch(t *testing.T) {
	ctx := context.Background()
	mirrors, src, sha1 := newActionMirror(t, "acme", "hello", map[string]string{
		"action.yml":     "runs: {using: node20, main: index.js}\n",
		"index.js":       "console.log('v1')\n",
		"sub/action.yml": "runs: {using: composite, steps: [{run: echo, shell: sh}]}\n",
	})
	st, err := NewActionStore(t.TempDir(), "file://"+mirrors)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := workflow.ParseActionRef("acme/hello@v1")
	fa, err := st.Fetch(ctx, ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fa.SHA != sha1 {
		t.Errorf("acme/hello@v1 resolved to %s, want %s", fa.SHA, sha1)
	}
	if b, err := os.ReadFile(filepath.Join(fa.Dir, "index.js")); err != nil || string(b) != "console.log('v1')\n" {
		t.Errorf("index.js = %q, %v", b, err)
	}
	if d, err := ActionMetadata(fa.Dir, ref.String()); err != nil || d.Runs.Using != "node20" {
		t.Errorf("actionMetadata = %+v, %v", d, err)
	}

	// A subdirectory action, and a branch.
	ref, _ = workflow.ParseActionRef("acme/hello/sub@main")
	if fa, err = st.Fetch(ctx, ref, 0); err != nil || fa.Dir != filepath.Join(fa.Root, "sub") || fa.SHA != sha1 {
		t.Errorf("acme/hello/sub@main = %+v, %v", fa, err)
	}

	// The tag moves: the next fetch sees it, and the old tree stays.
	sha2 := commitFiles(t, src, map[string]string{"index.js": "console.log('v2')\n"})
	gitCmd(t, src, "tag", "-f", "v1")
	ref, _ = workflow.ParseActionRef("acme/hello@v1")
	if fa, err = st.Fetch(ctx, ref, 0); err != nil || fa.SHA != sha2 {
		t.Fatalf("after the tag moved: %+v, %v; want %s", fa, err, sha2)
	}
	if b, _ := os.ReadFile(filepath.Join(fa.Dir, "index.js")); string(b) != "console.log('v2')\n" {
		t.Errorf("index.js after the move = %q", b)
	}

	// By commit id, also one that is no tip (fetched with every ref).
	ref, _ = workflow.ParseActionRef("acme/hello@" + sha1)
	if fa, err = st.Fetch(ctx, ref, 0); err != nil || fa.SHA != sha1 {
		t.Errorf("by commit id: %+v, %v", fa, err)
	}

	// The source is gone: what was fetched before still serves.
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(src, 0o755) // present, but no repository
	ref, _ = workflow.ParseActionRef("acme/hello@v1")
	fa, err = st.Fetch(ctx, ref, 0)
	if err != nil || fa.SHA != sha2 || len(fa.Notes) != 1 || !strings.Contains(fa.Notes[0], "as fetched before") {
		t.Errorf("offline: %+v, %v; want %s with a note", fa, err, sha2)
	}

	for _, tc := range []struct {
		uses string
		code error
		msg  string
	}{
		{"acme/hello@v9", apperr.ErrUnavailable, "cannot reach"}, // offline and never fetched
		{"acme/nothere@v1", apperr.ErrNotFound, "is neither on this server nor in file://"},
		{"acme/hello/nodir@" + sha1, apperr.ErrNotFound, "has no directory nodir"},
	} {
		ref, _ := workflow.ParseActionRef(tc.uses)
		_, err := st.Fetch(ctx, ref, 0)
		if !errors.Is(err, tc.code) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("fetch %s: %v; want %v containing %q", tc.uses, err, tc.code, tc.msg)
		}
	}
}

func TestActionStoreMissingRef(t *testing.T) {
	mirrors, _, _ := newActionMirror(t, "acme", "hello", map[string]string{"action.yml": "x"})
	st, _ := NewActionStore(t.TempDir(), "file://"+mirrors)
	ref, _ := workflow.ParseActionRef("acme/hello@v2")
	_, err := st.Fetch(context.Background(), ref, 0)
	if !errors.Is(err, apperr.ErrNotFound) || !strings.Contains(err.Error(), `has no tag or branch "v2"`) {
		t.Errorf("fetch acme/hello@v2: %v", err)
	}
	if _, err := ActionMetadata(t.TempDir(), "x/y@v1"); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("actionMetadata of an empty directory: %v", err)
	}
}

// A repository on this server wins over --actions-url.
func TestActionStoreLocalFirst(t *testing.T) {
	mirrors, _, _ := newActionMirror(t, "acme", "hello", map[string]string{"action.yml": "from: mirror\n"})
	localDir, localSHA := newGitRepo(t, map[string]string{"action.yml": "from: server\n"})
	gitCmd(t, localDir, "tag", "v1")
	st, _ := NewActionStore(t.TempDir(), "file://"+mirrors)
	var asked string
	st.Local = func(_ context.Context, owner, repo string, jobID int64) (string, error) {
		asked = fmt.Sprintf("%s/%s for job %d", owner, repo, jobID)
		if owner == "acme" && repo == "hello" {
			return localDir, nil
		}
		return "", apperr.ErrNotFound
	}
	ref, _ := workflow.ParseActionRef("acme/hello@v1")
	fa, err := st.Fetch(context.Background(), ref, 7)
	if err != nil || fa.SHA != localSHA || !strings.Contains(fa.Origin, "this server") {
		t.Fatalf("fetch = %+v, %v; want %s from this server", fa, err, localSHA)
	}
	if asked != "acme/hello for job 7" {
		t.Errorf("local resolver asked %q", asked)
	}
}

func TestCheckActionsURL(t *testing.T) {
	for _, ok := range []string{"https://github.com", "http://10.0.0.1:3000/mirror", "file:///srv/mirrors"} {
		if err := CheckActionsURL(ok); err != nil {
			t.Errorf("checkActionsURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"github.com", "ftp://x", "file://relative/dir", "https://", "file:relative"} {
		if err := CheckActionsURL(bad); err == nil {
			t.Errorf("checkActionsURL(%q) = nil, want an error", bad)
		}
	}
}

// A job that may not reach a private repository of this server falls
// through to --actions-url under the same name, and must not find there
// what was fetched from this server for a job that could: neither a branch
// (the offline fallback) nor a commit asked for by id. What older versions
// kept of both sources together is removed.
func TestActionStoreDeniedSkipsCache(t *testing.T) {
	t.Parallel()
	localDir, sha := newGitRepo(t, map[string]string{"action.yml": "runs: {using: composite, steps: []}\n"})
	dir := t.TempDir()
	legacy := filepath.Join(dir, "repos", "alice", "priv.git")
	if err := os.MkdirAll(legacy, 0o755); err != nil {
		t.Fatal(err)
	}
	// --actions-url answers nothing: a closed port.
	st, err := NewActionStore(dir, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "repos")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old repos/ directory is still there: %v", err)
	}
	st.Local = func(_ context.Context, owner, repo string, jobID int64) (string, error) {
		if owner == "alice" && repo == "priv" && jobID == 1 {
			return localDir, nil
		}
		return "", apperr.ErrNotFound
	}
	ctx := context.Background()
	for _, r := range []string{"alice/priv@main", "alice/priv@" + sha} {
		ref, _ := workflow.ParseActionRef(r)
		if fa, err := st.Fetch(ctx, ref, 1); err != nil || fa.SHA != sha {
			t.Fatalf("fetch %s for the job that may reach it = %+v, %v", r, fa, err)
		}
		if fa, err := st.Fetch(ctx, ref, 2); err == nil {
			t.Errorf("fetch %s for a job that may not reach it = %s from %s, want an error", r, fa.SHA, fa.Origin)
		}
	}
}
