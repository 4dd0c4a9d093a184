package main

import (
	"context"
	"testing"

	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// TestClaimedJobUntrusted: a pull request's job is claimed untrusted, a
// push's is not; the bit travels in the claim's JSON, for remote runners.
func TestClaimedJobUntrusted(t *testing.T) {
	ts := newTestServer(t)
	const wf = "on: [push, pull_request]\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n"
	parsed, err := workflow.Parse("wf.yml", []byte(wf))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		event   string
		payload map[string]any
		want    bool
	}{
		{"push", nil, false},
		{"pull_request", map[string]any{"pull_request": map[string]any{"head": map[string]any{"ref": "f"}}}, true},
		{"pull_request", map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "mallory/pub"}}}}, true},
		{"pull_request_target", nil, false},
	} {
		if _, _, err := ts.store.CreateRuns(context.Background(), nil, []store.RunSpec{{
			RepoID: ts.pub.ID, File: ".shithub/workflows/wf.yml", Content: []byte(wf), Workflow: parsed,
			HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: tc.event, Payload: tc.payload, ActorID: ts.users["alice"].ID,
		}}); err != nil {
			t.Fatal(err)
		}
		j := ts.heartbeat()
		if j == nil {
			t.Fatalf("%s: no job", tc.event)
		}
		if j.Untrusted != tc.want {
			t.Errorf("%s %v: Untrusted = %v, want %v", tc.event, tc.payload, j.Untrusted, tc.want)
		}
		ts.jobStatus(j.JobID, "success", 200)
	}
}

// TestStepNameEvaluated: a step's name written as an expression is shown
// evaluated with the job's contexts; one the server cannot evaluate yet,
// a failing one and a default one are shown as written.
func TestStepNameEvaluated(t *testing.T) {
	ts := newTestServer(t)
	run := ts.startRun(`on: push
jobs:
  t:
    strategy:
      matrix:
        os: [linux, mac]
    runs-on: ubuntu-latest
    env:
      WHO: mona
    steps:
      - name: Test on ${{ matrix.os }} for ${{ env.WHO }} in ${{ github.repository }}
        run: x
      - name: After ${{ steps.a.outputs.x }}
        run: x
      - name: Bad ${{ fromJSON('{') }}
        run: x
      - run: echo ${{ matrix.os }}
`)
	names := map[string]bool{}
	for _, j := range ts.jobMap(run.ID) {
		steps, err := ts.store.JobSteps(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			names[s.Name] = true
		}
	}
	for _, want := range []string{"Test on linux for mona in alice/pub", "Test on mac for mona in alice/pub",
		"After ${{ steps.a.outputs.x }}", "Bad ${{ fromJSON('{') }}", "Run echo ${{ matrix.os }}"} {
		if !names[want] {
			t.Errorf("no step named %q in %v", want, names)
		}
	}
}
