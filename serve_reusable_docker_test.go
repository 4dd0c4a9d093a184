//go:build docker

// End to end: reusable workflows through `serve` on a real engine, started
// by a real push. go test -tags docker -run DockerServeReusable .

package main

import (
	"io"
	"maps"
	"net/http"
	"os"
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

// e2eMirror calls a workflow of a repository this server does not have:
// it comes from the --actions-url mirror, as an action would. The push's
// hook knows no --actions-url: serve fetches it and makes the call.
const e2eMirror = `name: Mirror
on: push
jobs:
  mirrored:
    uses: acme/shared/.github/workflows/m.yml@v1
    with:
      who: ${{ github.repository }}
`

const e2eMirrored = `on:
  workflow_call:
    inputs:
      who: {type: string}
jobs:
  hi:
    runs-on: busybox
    steps:
      - run: echo "mirrored hi ${{ inputs.who }}"
`

func TestDockerServeReusable(t *testing.T) {
	// acme/shared is no repository of this server: it comes from the
	// --actions-url mirror, as an action of that name would.
	mirror := t.TempDir()
	shared := filepath.Join(mirror, "acme", "shared")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, shared, "init", "-q", "-b", "main")
	commitFiles(t, shared, map[string]string{".github/workflows/m.yml": e2eMirrored})
	gitCmd(t, shared, "tag", "v1")
	e := newE2EWith(t, map[string]string{"reuse.yml": e2eReuse, "called.yml": e2eCalled, "mirror.yml": e2eMirror}, func(e *e2e) {
		e.serveArgs = append(e.serveArgs, "--actions-url", "file://"+mirror)
	})
	lib, _ := newGitRepo(t, map[string]string{".github/workflows/lib.yml": e2eLib})
	e.cli("repo", "create", "alice/lib", "--git", filepath.Join(lib, ".git"))
	secret := e.selfCmd("secret", "set", "alice/hello", "TOP")
	secret.Stdin = strings.NewReader("top-secret-value")
	if out, err := secret.CombinedOutput(); err != nil {
		t.Fatalf("secret set: %v\n%s", err, out)
	}
	e.push()
	// Runs are made in file order: mirror.yml is #1, reuse.yml #2.
	run := e.waitRun(2, 120*time.Second)
	if str(run.Conclusion) != protocol.ConclusionSuccess {
		t.Errorf("run = %s, want success", str(run.Conclusion))
	}
	byName := map[string]jobJSON{}
	for _, j := range e.jobs(2) {
		byName[j.Name] = j
	}
	want := []string{"local (1) / say", "local (2) / say", "prep", "remote / calc", "report"}
	if got := slices.Sorted(maps.Keys(byName)); !slices.Equal(got, want) {
		for _, name := range got {
			if !slices.Contains(want, name) {
				t.Logf("job %q's log:\n%s", name, e.jobLog(byName[name].ID))
			}
		}
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

	if r := e.waitRun(1, 60*time.Second); str(r.Conclusion) != protocol.ConclusionSuccess {
		t.Errorf("mirror run = %s", str(r.Conclusion))
	}
	if jobs := e.jobs(1); len(jobs) != 1 || jobs[0].Name != "mirrored / hi" || !strings.Contains(e.jobLog(jobs[0].ID), "mirrored hi alice/hello\n") {
		for _, j := range jobs {
			t.Logf("job %q:\n%s", j.Name, e.jobLog(j.ID))
		}
		t.Errorf("mirror run's jobs: %d", len(jobs))
	}

	res, err := http.Get(e.base + "/alice/hello/actions/runs/2")
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
