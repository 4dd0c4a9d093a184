//go:build docker

// An attacker's pull request against the executor's sandbox (issue 17),
// through serve on a real engine: the tool cache of a fork's pull request.
// The executor's own tests have the rest.

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
)

// sandboxToolProbe reads and fills the tool cache as setup-* does: a tool
// is used when its x64.complete marker is there, else "downloaded".
const sandboxToolProbe = `
          tc=$RUNNER_TOOL_CACHE
          if [ -e $tc/fake/1.0/x64.complete ]; then echo "fake tool: $(cat $tc/fake/1.0/x64/tool)"; else echo "no fake tool"; fi
          if [ -e $tc/mytool/1.0/x64.complete ]; then echo "tool cache hit: $(cat $tc/mytool/1.0/x64/tool)"
          else
            echo "tool cache miss, downloading"
            mkdir -p $tc/mytool/1.0/x64 && echo "built by $GITHUB_EVENT_NAME run $GITHUB_RUN_NUMBER" > $tc/mytool/1.0/x64/tool
            touch $tc/mytool/1.0/x64.complete
          fi`

const sandboxToolsWorkflow = `name: Tools
on: [push, pull_request]
jobs:
  t:
    runs-on: busybox
    steps:
      - run: |` + sandboxToolProbe + "\n"

// sandboxEvilWorkflow is what a fork's pull request puts in its head
// commit: it plants a fake tool (marker and all) and overwrites the
// trusted one.
const sandboxEvilWorkflow = sandboxToolsWorkflow + `      - run: |
          tc=$RUNNER_TOOL_CACHE
          mkdir -p $tc/fake/1.0/x64 && echo evil > $tc/fake/1.0/x64/tool && touch $tc/fake/1.0/x64.complete
          echo evil > $tc/mytool/1.0/x64/tool
          echo planted
`

// post sends a JSON body with alice's token.
func (e *e2e) post(path, body string, v any) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if v != nil {
		json.Unmarshal(b, v)
	}
	if res.StatusCode >= 300 {
		e.t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
	}
	return res.StatusCode
}

// repoRunLog waits for run #idx of repo to complete and returns its one
// job and that job's log.
func (e *e2e) repoRunLog(repo string, idx int) (runJSON, jobJSON, string) {
	e.t.Helper()
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var runs runsJSON
		e.api("GET", "/api/v1/repos/"+repo+"/actions/runs?per_page=100", &runs)
		for _, r := range runs.WorkflowRuns {
			if r.RunIndex != int64(idx) || r.Status != protocol.StatusCompleted {
				continue
			}
			var out struct{ Jobs []jobJSON }
			e.api("GET", fmt.Sprintf("/api/v1/repos/%s/actions/runs/%d/jobs", repo, r.ID), &out)
			if len(out.Jobs) != 1 {
				e.t.Fatalf("%s run #%d has %d jobs", repo, idx, len(out.Jobs))
			}
			var log string
			e.api("GET", fmt.Sprintf("/api/v1/repos/%s/actions/jobs/%d/logs", repo, out.Jobs[0].ID), &log)
			return r, out.Jobs[0], log
		}
	}
	e.t.Fatalf("%s run #%d not completed; serve log:\n%s", repo, idx, e.log())
	return runJSON{}, jobJSON{}, ""
}

// TestDockerServeSandboxToolCache: a fork's pull request writes a fake
// tool into the tool cache; the next trusted push job does not see it,
// while a trusted job's download is seen by the next trusted job, and a
// job of another repository sees neither.
func TestDockerServeSandboxToolCache(t *testing.T) {
	e := newE2E(t, map[string]string{"tools.yml": sandboxToolsWorkflow})
	t.Cleanup(func() {
		if id := e.instance(); id != "" {
			removeToolCaches(id)
		}
	})
	check := func(repo string, idx int, want, not []string) jobJSON {
		t.Helper()
		run, job, log := e.repoRunLog(repo, idx)
		if str(run.Conclusion) != protocol.ConclusionSuccess {
			t.Fatalf("%s run #%d = %s\n%s\nserve log:\n%s", repo, idx, str(run.Conclusion), log, e.log())
		}
		for _, w := range want {
			if !strings.Contains(log, w) {
				t.Errorf("%s run #%d (%s): log lacks %q:\n%s", repo, idx, run.Event, w, log)
			}
		}
		for _, w := range not {
			if strings.Contains(log, w) {
				t.Errorf("%s run #%d (%s): log has %q:\n%s", repo, idx, run.Event, w, log)
			}
		}
		return job
	}
	e.push()
	check("alice/hello", 1, []string{"no fake tool", "tool cache miss, downloading"}, nil)
	e.push()
	check("alice/hello", 2, []string{"no fake tool", "tool cache hit: built by push run 1"}, []string{"downloading"})

	// The fork's head commit, on a ref no hook runs for.
	base := strings.TrimSpace(gitCmd(t, e.work, "rev-parse", "HEAD"))
	gitCmd(t, e.work, "checkout", "-q", "-b", "feature")
	head := commitFiles(t, e.work, map[string]string{".shithub/workflows/tools.yml": sandboxEvilWorkflow})
	gitCmd(t, e.work, "push", "-q", "-f", e.git, "HEAD:refs/pull/7/head")
	gitCmd(t, e.work, "checkout", "-q", "main")
	e.post("/api/v1/repos/alice/hello/actions/events/pull_request",
		fmt.Sprintf(`{"action":"opened","number":7,"head_sha":%q,"head_ref":"feature","base_ref":"main","base_sha":%q,"title":"Faster builds"}`, head, base), nil)
	pr := check("alice/hello", 3, []string{"tool cache hit: built by push run 1", "planted",
		"Tool cache: a copy of this repository's, for this job only"}, nil)
	if left := e.noResources(pr.ID); len(left) > 0 {
		t.Errorf("the pull request's job left %v (its tool cache copy should go with it)", left)
	}

	e.push()
	check("alice/hello", 4, []string{"no fake tool", "tool cache hit: built by push run 1", "Tool cache: this repository's"},
		[]string{"fake tool: evil", "hit: evil"})

	// Another repository of the same server: a cache of its own.
	other := filepath.Join(e.dir, "other.git")
	gitCmd(t, e.dir, "init", "-q", "--bare", "-b", "main", other)
	e.cli("repo", "create", "alice/other", "--git", other)
	gitCmd(t, e.work, "push", "-q", "-f", other, "HEAD:refs/heads/main")
	sha := strings.TrimSpace(gitCmd(t, e.work, "rev-parse", "HEAD"))
	e.post("/api/v1/repos/alice/other/actions/events/push", fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, sha), nil)
	check("alice/other", 1, []string{"no fake tool", "tool cache miss, downloading"}, []string{"tool cache hit"})
}

// removeToolCaches removes the repositories' tool caches an instance made.
func removeToolCaches(instance string) {
	out, _ := exec.Command("docker", "volume", "ls", "-q", "--filter", "label="+executor.LabelToolCache+"="+instance).Output()
	if vols := strings.Fields(string(out)); len(vols) > 0 {
		exec.Command("docker", append([]string{"volume", "rm", "-f"}, vols...)...).Run()
	}
}
