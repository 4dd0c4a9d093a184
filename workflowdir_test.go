package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"context"

	"shithub-actions/internal/git"
)

// TestWorkflowDirectories: a commit's workflows are those of
// .shithub/workflows/, or of .github/workflows/ when the first has no
// workflow file; never both. The push trigger, dispatch, the workflows
// API, the runs filter and `workflow check DIR` all read the same one,
// and a file whose only trigger is workflow_call starts no run.
func TestWorkflowDirectories(t *testing.T) {
	const push = "name: %s\non: [push, workflow_dispatch]\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n"
	const called = "on:\n  workflow_call:\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n"
	tests := []struct {
		name     string
		files    map[string]string
		dir      string   // the directory used
		runs     []string // the files a push to main runs
		dispatch string   // a file name dispatch finds
	}{
		{"only .shithub", map[string]string{".shithub/workflows/a.yml": fmt.Sprintf(push, "A")},
			".shithub/workflows/", []string{".shithub/workflows/a.yml"}, "a.yml"},
		{"only .github", map[string]string{".github/workflows/b.yml": fmt.Sprintf(push, "B"), ".github/workflows/lib.yml": called},
			".github/workflows/", []string{".github/workflows/b.yml"}, "b.yml"},
		{"both: .shithub alone", map[string]string{".shithub/workflows/a.yml": fmt.Sprintf(push, "A"), ".github/workflows/b.yml": fmt.Sprintf(push, "B")},
			".shithub/workflows/", []string{".shithub/workflows/a.yml"}, "a.yml"},
		{".shithub without workflow files falls back", map[string]string{".shithub/workflows/README.md": "notes\n",
			".shithub/workflows/old/x.yml": fmt.Sprintf(push, "Nested"), ".github/workflows/b.yaml": fmt.Sprintf(push, "B")},
			".github/workflows/", []string{".github/workflows/b.yaml"}, "b.yaml"},
	}
	ts := newTestServer(t)
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work, sha := newGitRepo(t, tt.files)
			name := fmt.Sprintf("d%d", i)
			repo, err := ts.store.CreateRepo(ctx, ts.users["alice"], name, filepath.Join(work, ".git"), false)
			if err != nil {
				t.Fatal(err)
			}
			dir, _, err := git.Repo{Dir: repo.GitDir}.WorkflowDirAt(ctx, sha)
			if err != nil || dir != tt.dir {
				t.Errorf("WorkflowDirAt = %q, %v; want %q", dir, err, tt.dir)
			}
			api := "/api/v1/repos/alice/" + name
			var out runsJSON
			ts.want(request{method: "POST", path: api + "/actions/events/push", auth: bearer(ts.tokens["alice"]),
				body: fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, git.ZeroSHA, sha)}, 201, &out)
			var files []string
			for _, r := range out.WorkflowRuns {
				files = append(files, r.Path)
				if r.Conclusion != nil {
					t.Errorf("run of %s: conclusion %s (a parse failure?)", r.Path, *r.Conclusion)
				}
			}
			if !slices.Equal(files, tt.runs) {
				t.Errorf("push ran %v, want %v", files, tt.runs)
			}
			// Dispatch by file name finds the file in the directory used.
			ts.want(request{method: "POST", path: api + "/actions/workflows/" + tt.dispatch + "/dispatches", auth: bearer(ts.tokens["alice"]),
				body: `{"ref":"main"}`}, 204, nil)
			// The workflows API lists the directory used, and a file name
			// filters the runs of either directory.
			var wfs struct {
				Workflows []workflowJSON `json:"workflows"`
			}
			ts.want(request{method: "GET", path: api + "/actions/workflows"}, 200, &wfs)
			for _, w := range wfs.Workflows {
				if !strings.HasPrefix(w.Path, tt.dir) {
					t.Errorf("workflows API lists %s, outside %s", w.Path, tt.dir)
				}
			}
			var byName runsJSON
			ts.want(request{method: "GET", path: api + "/actions/workflows/" + tt.dispatch + "/runs"}, 200, &byName)
			if byName.TotalCount != 2 {
				t.Errorf("runs of %s = %d, want 2 (push and dispatch)", tt.dispatch, byName.TotalCount)
			}
			// The Actions tab says where the workflows come from.
			if res := ts.do(request{method: "GET", path: "/alice/" + name + "/actions"}); !strings.Contains(string(res.body), "Workflows from <code>"+tt.dir+"</code>") {
				t.Errorf("Actions tab does not name %s", tt.dir)
			}
			// workflow check on the work tree checks the same files and
			// says which directory.
			code, stdout, stderr := cliRun(t, filepath.Join(t.TempDir(), "x.db"), "", "workflow", "check", work)
			if code != 0 || !strings.Contains(stdout, work+": ") || !strings.Contains(stdout, " in "+tt.dir) {
				t.Errorf("workflow check %s: exit %d, stdout %q, stderr %q", work, code, stdout, stderr)
			}
			if got := strings.Contains(stdout, "(.shithub/workflows/ has none)"); got != (tt.dir == git.GitHubWorkflowDir) {
				t.Errorf("workflow check: fallback note %v in %q", got, stdout)
			}
		})
	}
	// A repository with no workflow files: workflow check says so (exit 2).
	empty, _ := newGitRepo(t, map[string]string{"README": "hi\n"})
	if code, _, stderr := cliRun(t, filepath.Join(t.TempDir(), "x.db"), "", "workflow", "check", empty); code != 2 || !strings.Contains(stderr, "no workflow files") {
		t.Errorf("workflow check of a repository without workflows: exit %d, stderr %q", code, stderr)
	}
}
