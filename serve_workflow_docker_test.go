//go:build docker

// End-to-end tests of the workflow language through `serve` as a real
// process on a real docker engine, started by real pushes: conditions,
// matrices, outputs, services, concurrency, and what the run page shows of
// them. go test -tags docker -run DockerServeWorkflow .

package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/protocol"
)

// e2eLanguage uses, in one file: job and step `if` with the status
// functions, continue-on-error, step timeouts, a matrix with include and
// exclude whose legs set their own outputs, runs-on from the matrix, a
// dependent job reading needs results and outputs, the github context,
// defaults.run at workflow and job level, a service reached by its name,
// ::group::, ::error with a place, a step summary and an environment whose
// url a step sets.
const e2eLanguage = `name: Language
on: push
defaults:
  run:
    shell: sh
    working-directory: .shithub
jobs:
  test:
    strategy:
      fail-fast: false
      matrix:
        os: [busybox]
        v: [1, 2, 3]
        exclude:
          - v: 2
        include:
          - v: 1
            flavour: special
          - os: busybox
            v: 4
    runs-on: ${{ matrix.os }}
    outputs:
      leg1: ${{ steps.out.outputs.leg1 }}
      leg3: ${{ steps.out.outputs.leg3 }}
      leg4: ${{ steps.out.outputs.leg4 }}
    steps:
      - id: out
        run: |
          echo "leg v=${{ matrix.v }} flavour=${{ matrix.flavour }} of ${{ strategy.job-total }} in $(pwd)"
          echo "leg${{ matrix.v }}=v${{ matrix.v }}" >> "$GITHUB_OUTPUT"
  bad:
    runs-on: busybox
    steps:
      - id: soft
        run: exit 3
        continue-on-error: true
      - name: Fails
        run: |
          echo "::group::Details of the failure"
          echo "inside the group"
          echo "::endgroup::"
          echo "::error file=src/main.go,line=12,col=5,title=Bad thing::it broke <here>"
          echo "### Failure report" >> "$GITHUB_STEP_SUMMARY"
          echo "soft ${{ steps.soft.outcome }}/${{ steps.soft.conclusion }}"
          exit 1
      - run: echo never runs
      - if: failure()
        run: echo "failure() ran"
      - if: always()
        run: echo "always() ran, job ${{ job.status }}"
      - if: cancelled()
        run: echo "cancelled() ran"
  skipped:
    if: github.event_name == 'pull_request'
    runs-on: busybox
    steps:
      - run: echo never
  svc:
    runs-on: busybox
    services:
      web:
        image: shithub-test-httpd:latest
    steps:
      - run: wget -q -O - http://web/index.txt
      - id: slow
        timeout-minutes: ${{ 0.05 }}
        continue-on-error: true
        run: sleep 30
      - run: echo "slow ${{ steps.slow.outcome }}/${{ steps.slow.conclusion }}"
  report:
    needs: [test, bad, skipped, svc]
    if: always()
    runs-on: busybox
    environment:
      name: staging
      url: ${{ steps.deploy.outputs.url }}
    defaults:
      run:
        working-directory: /
    steps:
      - run: |
          echo "results test=${{ needs.test.result }} bad=${{ needs.bad.result }} skipped=${{ needs.skipped.result }} svc=${{ needs.svc.result }}"
          echo "outputs ${{ needs.test.outputs.leg1 }},${{ needs.test.outputs.leg3 }},${{ needs.test.outputs.leg4 }}"
          echo "github ${{ github.repository }} ${{ github.ref }} ${{ github.ref_name }} ${{ github.event_name }} ${{ github.sha }} ${{ github.actor }} ${{ github.workflow }} ${{ github.job }} ${{ github.run_number }}"
          echo "pwd $(pwd)"
      - id: deploy
        run: echo "url=https://staging.example.com/${{ github.sha }}" >> "$GITHUB_OUTPUT"
`

// TestDockerServeWorkflowLanguage pushes e2eLanguage and checks every
// job's and step's conclusion, the logs, annotations and outputs through
// the API, and the run page.
func TestDockerServeWorkflowLanguage(t *testing.T) {
	dockertest.BuildServiceImage(t)
	e := newE2E(t, map[string]string{"language.yml": e2eLanguage})
	sha := e.push()
	run := e.waitRun(1, 120*time.Second)
	if str(run.Conclusion) != protocol.ConclusionFailure {
		t.Errorf("run = %s, want failure (bad fails)", str(run.Conclusion))
	}
	byName := map[string]jobJSON{}
	for _, j := range e.jobs(1) {
		byName[j.Name] = j
	}
	steps := func(j jobJSON) []string {
		var out []string
		for _, s := range j.Steps {
			out = append(out, str(s.Conclusion))
		}
		return out
	}
	for name, want := range map[string][]string{
		"test (busybox, 1)": {"success", "success"},
		"test (busybox, 3)": {"success", "success"},
		"test (busybox, 4)": {"success", "success"},
		// set up, soft (continue-on-error), Fails, never, failure(), always(), cancelled()
		"bad":     {"success", "success", "failure", "skipped", "success", "success", "skipped"},
		"skipped": {"skipped", "skipped"},
		// set up, wget, slow (timed out, continue-on-error), its outcome
		"svc":    {"success", "success", "success", "success"},
		"report": {"success", "success", "success"},
	} {
		j, ok := byName[name]
		if !ok {
			t.Errorf("no job %q; jobs: %q", name, slices.Sorted(maps.Keys(byName)))
			continue
		}
		if got := steps(j); !slices.Equal(got, want) {
			t.Errorf("job %q steps = %q, want %q", name, got, want)
		}
	}
	if len(byName) != 7 {
		t.Errorf("%d jobs, want 3 legs (1 excluded, 1 added by include), bad, skipped, svc, report", len(byName))
	}
	for name, want := range map[string]string{"bad": "failure", "skipped": "skipped", "svc": "success", "report": "success", "test (busybox, 4)": "success"} {
		if got := str(byName[name].Conclusion); got != want {
			t.Errorf("job %q = %s, want %s", name, got, want)
		}
	}

	logs := map[string]string{}
	for name, j := range byName {
		logs[name] = e.jobLog(j.ID)
	}
	for name, wants := range map[string][]string{
		"test (busybox, 1)": {"leg v=1 flavour=special of 3 in /workspace/.shithub\n"},
		"test (busybox, 3)": {"leg v=3 flavour= of 3 in /workspace/.shithub\n"},
		"bad": {"soft failure/success\n", "failure() ran\n", "always() ran, job failure\n",
			"##[group]Details of the failure\ninside the group\n##[endgroup]\n"},
		"svc": {"hello-from-web\n", "##[error]The action has timed out.", "slow failure/success\n"},
		"report": {"results test=success bad=failure skipped=skipped svc=success\n", "outputs v1,v3,v4\n",
			fmt.Sprintf("github alice/hello refs/heads/main main push %s alice Language report 1\n", sha), "pwd /\n"},
	} {
		for _, want := range wants {
			if !strings.Contains(logs[name], want) {
				t.Errorf("job %q's log lacks %q:\n%s", name, want, logs[name])
			}
		}
	}
	for _, never := range []string{"never runs", "cancelled() ran"} {
		if strings.Contains(logs["bad"], "\n"+never+"\n") {
			t.Errorf("bad's log has %q:\n%s", never, logs["bad"])
		}
	}

	// The annotation, with its place, through the API.
	var ann *protocol.Annotation
	for _, a := range byName["bad"].Annotations {
		if a.Title == "Bad thing" {
			ann = &a
		}
	}
	if ann == nil || ann.Level != "error" || ann.Message != "it broke <here>" || ann.File != "src/main.go" || ann.Line != 12 || ann.Col != 5 {
		t.Errorf("bad's annotations = %+v, want the error at src/main.go:12:5", byName["bad"].Annotations)
	}
	if env := byName["report"].Environment; env == nil || env.Name != "staging" || env.URL != "https://staging.example.com/"+sha {
		t.Errorf("report's environment = %+v", env)
	}

	// The run page.
	res, err := http.Get(e.base + "/alice/hello/actions/runs/1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		">test (busybox, 1)</h2>", ">test (busybox, 3)</h2>", ">test (busybox, 4)</h2>",
		`<strong>Bad thing</strong> <code>src/main.go:12:5</code> <span class="muted">in <a href="#step-`,
		`<div class="ann-msg">it broke &lt;here&gt;</div>`,
		"Summary of <strong>Fails</strong>", "<h3>Failure report</h3>",
		`Environment: <strong>staging</strong> · <a href="https://staging.example.com/` + sha + `"`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
	// The group, its title and its one line, each numbered and linked
	// (#step-N-LM) with its time.
	group := regexp.MustCompile(`<details class="group"><summary><a class="ln" id="step-\d+-L\d+" href="#step-\d+-L\d+" data-n="\d+"></a>(<span class="ts">[^<]*</span>)?<span class="l-group">Details of the failure</span></summary>` +
		`<a class="ln" id="step-\d+-L\d+" href="#step-\d+-L\d+" data-n="\d+"></a>(<span class="ts">[^<]*</span>)?inside the group\n</details>`)
	if !group.Match(page) {
		t.Errorf("the run page lacks the group %q", group)
	}
	// Legs come before the job that needs them.
	if i, j := strings.Index(string(page), ">test (busybox, 4)</h2>"), strings.Index(string(page), ">report</h2>"); i < 0 || j < i {
		t.Errorf("the page shows report before the legs it needs")
	}
	if t.Failed() {
		t.Logf("serve log:\n%s", e.log())
	}
}

// e2eConcurrency: a group with cancel-in-progress, whose job sleeps on the
// first push only, and a group without, whose job sleeps 15 s on the first.
const e2eConcurrency = `name: Exclusive
on: push
concurrency:
  group: exclusive-${{ github.ref }}
  cancel-in-progress: ${{ github.ref == 'refs/heads/main' }}
jobs:
  work:
    runs-on: busybox
    steps:
      - run: |
          echo "started on $(cat README)"
          if [ "$(cat README)" = "readme line 1" ]; then sleep 600; fi
          echo "finished"
`

const e2eQueue = `name: Queue
on: push
jobs:
  work:
    runs-on: busybox
    concurrency: queue
    steps:
      - run: |
          echo "started on $(cat README)"
          if [ "$(cat README)" = "readme line 1" ]; then sleep 15; fi
          echo "finished"
`

// TestDockerServeWorkflowConcurrency pushes three commits: with
// cancel-in-progress, each push cancels the running run (its container
// stopped) and only the last finishes; without it, the first runs to its
// end, the second waits and is replaced by the third, which runs after.
func TestDockerServeWorkflowConcurrency(t *testing.T) {
	e := newE2E(t, map[string]string{"exclusive.yml": e2eConcurrency, "queue.yml": e2eQueue})
	e.push()
	// Runs #1 (Exclusive) and #2 (Queue), in some order.
	runOf := func(workflow string, push int) int {
		t.Helper()
		for range 200 {
			var runs runsJSON
			e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
			for _, r := range runs.WorkflowRuns {
				if r.WorkflowName == workflow && r.RunIndex > int64(2*(push-1)) {
					return int(r.RunIndex)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("push %d made no %s run", push, workflow)
		return 0
	}
	ex1, q1 := runOf("Exclusive", 1), runOf("Queue", 1)
	first := e.waitStep(ex1, "work", 2, 60*time.Second)
	e.waitStep(q1, "work", 2, 60*time.Second)
	e.push()
	ex2, q2 := runOf("Exclusive", 2), runOf("Queue", 2)
	// cancel-in-progress: the running run is cancelled at once, its
	// container stopped, though its step sleeps 600 s.
	start := time.Now()
	if r := e.waitRun(ex1, 30*time.Second); str(r.Conclusion) != protocol.ConclusionCancelled {
		t.Errorf("Exclusive #%d after the second push = %s, want cancelled", ex1, str(r.Conclusion))
	}
	t.Logf("the second push cancelled the running run in %v", time.Since(start).Round(time.Millisecond))
	if left := e.noResources(first.ID); len(left) != 0 {
		t.Errorf("the cancelled job left %v", left)
	}
	e.push()
	ex3, q3 := runOf("Exclusive", 3), runOf("Queue", 3)
	for _, idx := range []int{ex2, q2} {
		if r := e.waitRun(idx, 30*time.Second); str(r.Conclusion) != protocol.ConclusionCancelled {
			t.Errorf("run #%d after the third push = %s, want cancelled", idx, str(r.Conclusion))
		}
	}
	for _, c := range []struct {
		idx  int
		want string
	}{{q1, "readme line 1"}, {ex3, "readme line 3"}, {q3, "readme line 3"}} {
		r := e.waitRun(c.idx, 60*time.Second)
		j := e.jobs(c.idx)[0]
		if str(r.Conclusion) != protocol.ConclusionSuccess {
			t.Errorf("run #%d = %s, want success", c.idx, str(r.Conclusion))
		}
		if log := e.jobLog(j.ID); !strings.Contains(log, "started on "+c.want+"\n") || !strings.Contains(log, "finished\n") {
			t.Errorf("run #%d's log:\n%s", c.idx, log)
		}
	}
	// The queued run started only after the one it waited for ended.
	q1job, q3job := e.jobs(q1)[0], e.jobs(q3)[0]
	if q1job.CompletedAt == nil || q3job.StartedAt == nil || q3job.StartedAt.Before(*q1job.CompletedAt) {
		t.Errorf("Queue #%d started at %v, before #%d completed at %v", q3, q3job.StartedAt, q1, q1job.CompletedAt)
	}
	// The replaced runs never ran a step.
	for _, idx := range []int{q2} {
		for _, s := range e.jobs(idx)[0].Steps {
			if s.StartedAt != nil {
				t.Errorf("run #%d, replaced while pending, started step %q", idx, s.Name)
			}
		}
	}
	if t.Failed() {
		t.Logf("serve log:\n%s", e.log())
	}
}
