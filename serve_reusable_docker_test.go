//go:build docker

// End to end: reusable workflows through `serve` on a real engine, started
// by a real push. go test -tags docker -run DockerServeReusable .

package main

import (
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
)

// e2eReuse calls a workflow of its own repository as a matrix of calls,
// with an input from needs and `secrets: inherit`, and one of another
// repository of the server with a named secret; the job after both reads
// their outputs.
const e2eReuse = `name: Reuse
on: push
jobs:
  prep:
    runs-on: busybox
    outputs:
      word: ${{ steps.s.outputs.word }}
    steps:
      - id: s
        run: echo "word=hello" >> "$GITHUB_OUTPUT"
  local:
    needs: prep
    strategy:
      matrix:
        n: [1, 2]
    uses: ./.shithub/workflows/called.yml
    with:
      word: ${{ needs.prep.outputs.word }}-${{ matrix.n }}
      loud: true
    secrets: inherit
  remote:
    uses: alice/lib/.github/workflows/lib.yml@main
    with:
      n: 3
    secrets:
      passed: ${{ secrets.TOP }}
  report:
    needs: [local, remote]
    runs-on: busybox
    steps:
      - run: echo "outputs ${{ needs.local.outputs.said }} ${{ needs.remote.outputs.double }}"
`

const e2eCalled = `on:
  workflow_call:
    inputs:
      word: {type: string, required: true}
      loud: {type: boolean, default: false}
    outputs:
      said:
        value: ${{ jobs.say.outputs.said }}
jobs:
  say:
    runs-on: busybox
    outputs:
      said: ${{ steps.s.outputs.said }}
    steps:
      - id: s
        run: |
          echo "say ${{ inputs.word }} loud=${{ inputs.loud }} secret=${{ secrets.TOP }} workflow=${{ github.workflow }} job=$GITHUB_JOB"
          echo "said=${{ inputs.word }}" >> "$GITHUB_OUTPUT"
`

const e2eLib = `on:
  workflow_call:
    inputs:
      n: {type: number}
    secrets:
      passed:
    outputs:
      double:
        value: ${{ jobs.calc.outputs.d }}
jobs:
  calc:
    runs-on: busybox
    outputs:
      d: ${{ steps.c.outputs.d }}
    steps:
      - id: c
        run: |
          echo "d=$(( ${{ inputs.n }} * 2 ))" >> "$GITHUB_OUTPUT"
          echo "passed=${{ secrets.passed }} top=[${{ secrets.TOP }}]"
`

func TestDockerServeReusable(t *testing.T) {
	e := newE2E(t, map[string]string{"reuse.yml": e2eReuse, "called.yml": e2eCalled})
	lib, _ := newGitRepo(t, map[string]string{".github/workflows/lib.yml": e2eLib})
	e.cli("repo", "create", "alice/lib", "--git", filepath.Join(lib, ".git"))
	secret := e.selfCmd("secret", "set", "alice/hello", "TOP")
	secret.Stdin = strings.NewReader("top-secret-value")
	if out, err := secret.CombinedOutput(); err != nil {
		t.Fatalf("secret set: %v\n%s", err, out)
	}
	e.push()
	run := e.waitRun(1, 120*time.Second)
	if str(run.Conclusion) != protocol.ConclusionSuccess {
		t.Errorf("run = %s, want success", str(run.Conclusion))
	}
	byName := map[string]jobJSON{}
	for _, j := range e.jobs(1) {
		byName[j.Name] = j
	}
	want := []string{"local (1) / say", "local (2) / say", "prep", "remote / calc", "report"}
	if got := slices.Sorted(maps.Keys(byName)); !slices.Equal(got, want) {
		t.Fatalf("jobs %q, want %q", got, want)
	}
	for name, wants := range map[string][]string{
		"local (1) / say": {"say hello-1 loud=true secret=*** workflow=Reuse job=say\n"},
		"local (2) / say": {"say hello-2 loud=true secret=*** workflow=Reuse job=say\n"},
		"remote / calc":   {"passed=*** top=[]\n"},
		"report":          {"outputs hello-2 6\n"},
	} {
		log := e.jobLog(byName[name].ID)
		for _, w := range wants {
			if !strings.Contains(log, w) {
				t.Errorf("job %q's log lacks %q:\n%s", name, w, log)
			}
		}
		if strings.Contains(log, "top-secret-value") {
			t.Errorf("job %q's log shows the secret", name)
		}
	}
	res, err := http.Get(e.base + "/alice/hello/actions/runs/1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, w := range []string{">local (1) / say</h2>", ">remote / calc</h2>"} {
		if !strings.Contains(string(page), w) {
			t.Errorf("the run page lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("serve log:\n%s", e.log())
	}
}
