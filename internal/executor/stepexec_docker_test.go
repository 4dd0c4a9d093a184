//go:build docker

package executor

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

func TestDockerWorkflowSteps(t *testing.T) {
	dockertest.BuildImage(t)
	dockertest.BuildServiceImage(t)

	// Two legs of a matrix, built as the server builds their claims.
	for i, leg := range []string{"1.21", "1.22"} {
		t.Run(leg, func(t *testing.T) {
			t.Parallel()
			id := int64(9201 + i)
			job := wfJob(id,
				protocol.Step{StepKey: "gen", Run: `echo "version=${{ matrix.go }}" >> "$GITHUB_OUTPUT"
echo "EXTRA=from env file" >> "$GITHUB_ENV"
mkdir -p /tmp/tool && printf '#!/bin/sh\necho tool ran\n' > /tmp/tool/mytool && chmod +x /tmp/tool/mytool
echo /tmp/tool >> "$GITHUB_PATH"
echo "## leg ${{ matrix.go }}" >> "$GITHUB_STEP_SUMMARY"
echo "go.sum of ${{ matrix.go }}" > go.sum`},
				protocol.Step{Run: `echo "got ${{ steps.gen.outputs.version }} $EXTRA"; mytool; echo "::add-mask::s3cret"; echo "the s3cret"`},
				protocol.Step{StepKey: "flaky", Run: "exit 4", ContinueOnError: "true"},
				protocol.Step{Run: `echo "flaky ${{ steps.flaky.outcome }}/${{ steps.flaky.conclusion }}"`},
				protocol.Step{Run: "echo skipped", If: "matrix.go == '1.21'"},
				protocol.Step{Run: `wget -q -O - http://web/index.txt`, If: "${{ matrix.go == '1.22' }}"},
				protocol.Step{Run: "echo hash ${{ hashFiles('**/go.sum') }}"},
				protocol.Step{Run: "sleep 30", TimeoutMinutes: "${{ 0.02 }}"},
				protocol.Step{Run: "echo after the timeout: ${{ job.status }}", If: "always()"},
			)
			job.RunsOn = []string{"busybox"}
			job.Contexts["matrix"] = map[string]any{"go": leg}
			job.Outputs = map[string]string{"version": "${{ steps.gen.outputs.version }}"}
			job.Services = map[string]*workflow.ContainerSpec{"web": {Image: dockertest.ServiceImage, Ports: []string{"80"}}}
			src := newFakeSource()
			ex := newDockerExecutor(t, src)
			ex.runJob(job)

			logs := make([]string, len(job.Steps))
			for i, s := range job.Steps {
				logs[i] = src.log(t, s.ID)
			}
			if got := src.jobConclusion(id); got != "failure" {
				t.Fatalf("job conclusion = %q, want failure (the timed-out step); logs %q", got, logs)
			}
			want := []string{"running,success", "running,success", "running,success", "running,success", "running,success",
				"skipped", "running,success", "running,success", "running,failure", "running,success"}
			if leg == "1.21" {
				want[5], want[6] = "running,success", "skipped"
			}
			if got := statuses(src, job); !slices.Equal(got, want) {
				t.Errorf("step statuses:\n got %q\nwant %q\nlogs %q", got, want, logs)
			}
			if got := logs[2]; got != "got "+leg+" from env file\ntool ran\nthe ***\n" {
				t.Errorf("step 2 log = %q", got)
			}
			if got := logs[4]; got != "flaky failure/success\n" {
				t.Errorf("step 4 log = %q", got)
			}
			if leg == "1.22" && logs[6] != "hello-from-web\n" {
				t.Errorf("the service is not reachable by its name: %q", logs[6])
			}
			sum := sha256.Sum256([]byte("go.sum of " + leg + "\n"))
			total := sha256.Sum256(sum[:])
			if got := logs[7]; got != "hash "+hex.EncodeToString(total[:])+"\n" {
				t.Errorf("hashFiles log = %q", got)
			}
			if got := logs[8]; !strings.Contains(got, "##[error]The action has timed out.") {
				t.Errorf("timed-out step log = %q", got)
			}
			if got := logs[9]; got != "after the timeout: failure\n" {
				t.Errorf("last step log = %q", got)
			}
			src.mu.Lock()
			outputs, summary := src.outputs[id], src.summaries[job.Steps[1].ID]
			src.mu.Unlock()
			if outputs["version"] != leg {
				t.Errorf("job outputs = %q", outputs)
			}
			if summary != "## leg "+leg+"\n" {
				t.Errorf("summary = %q", summary)
			}
			if left := leftovers(t, ex.cfg.Instance); len(left) != 0 {
				t.Errorf("left on the engine: %v", left)
			}
			// The work directory is the shared temporary directory, as in
			// production: nothing of this job may stay there.
			if left, _ := filepath.Glob(filepath.Join(ex.cfg.WorkDir, "shithub-actions-"+ex.cfg.Instance+"-*")); len(left) != 0 {
				t.Errorf("files left in the work directory: %v", left)
			}
		})
	}
}

func TestDockerWorkflowCancelAlways(t *testing.T) {
	dockertest.BuildImage(t)
	job := wfJob(9210,
		protocol.Step{Run: "echo started; sleep 600"},
		protocol.Step{Run: "echo never"},
		protocol.Step{Run: "echo cleanup ${{ job.status }}; cat marker", If: "always()"},
	)
	job.RunsOn = []string{"busybox"}
	job.Steps[1].Run = "echo kept > marker; echo started; sleep 600"
	src := newFakeSource()
	ex := newDockerExecutor(t, src)
	done := startJob(ex, job)
	waitUntil(t, "the step's output", func() bool { return strings.Contains(src.log(t, job.Steps[1].ID), "started") })
	ex.Cancel(9210)
	<-done
	if got := src.jobConclusion(9210); got != "cancelled" {
		t.Fatalf("job conclusion = %q", got)
	}
	want := []string{"running,success", "running,cancelled", "skipped", "running,success"}
	if got := statuses(src, job); !slices.Equal(got, want) {
		t.Errorf("step statuses = %q, want %q", got, want)
	}
	if got := src.log(t, job.Steps[3].ID); got != "cleanup cancelled\nkept\n" {
		t.Errorf("always() step log = %q", got)
	}
}
