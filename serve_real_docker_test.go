//go:build docker

// A real workflow on a real serve in a real Debian image (.ci/debian-image:
// git, curl, wget, python3, node from Debian's packages): jobs talk back to
// the server with every client, push back with the token checkout
// persisted, run a JavaScript action with the image's node, call a local
// and a remote reusable workflow, and start a workflow_run workflow.
// go test -tags docker -run DockerServeRealWorkflow .

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/protocol"
)

// e2eRealWorkflow runs on ubuntu-latest, mapped to the Debian image.
// DEBIAN_IMAGE is replaced by the image's tag.
const e2eRealWorkflow = `name: Real
on: push
permissions:
  contents: write
  actions: read
env:
  GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
jobs:
  talk:
    runs-on: ubuntu-latest
    outputs:
      pushed: ${{ steps.push.outputs.sha }}
    steps:
      - uses: actions/checkout@v4
      - name: curl
        run: |
          curl -fsS -H "Authorization: Bearer $GITHUB_TOKEN" "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/actions/runs" |
            jq -r '"curl saw \(.total_count) run(s)"'
      - name: wget
        run: |
          wget -q -O- --header "Authorization: Bearer $GITHUB_TOKEN" "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/actions/runs" |
            jq -r '"wget saw \(.total_count) run(s)"'
      - name: python
        run: |
          python3 - <<'EOF'
          import json, os, urllib.request
          req = urllib.request.Request(os.environ["GITHUB_API_URL"] + "/repos/" + os.environ["GITHUB_REPOSITORY"] + "/actions/runs",
                                       headers={"Authorization": "Bearer " + os.environ["GITHUB_TOKEN"]})
          print("python saw %d run(s)" % json.load(urllib.request.urlopen(req))["total_count"])
          EOF
      - name: git clone
        run: |
          git clone -q "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY" /tmp/clone
          echo "cloned at $(git -C /tmp/clone rev-parse HEAD)"
      - name: a Docker action curls
        uses: docker://DEBIAN_IMAGE
        with:
          entrypoint: sh
          args: >-
            -c "curl -fsS -o /dev/null -H 'Authorization: Bearer '$GITHUB_TOKEN $GITHUB_API_URL/repos/$GITHUB_REPOSITORY/actions/runs
            && echo docker action reached the API"
      - name: a JavaScript action with the image's node
        uses: ./.github/actions/talk
      - name: commit and push back
        id: push
        run: |
          git config user.name bot
          git config user.email bot@example.invalid
          echo "run $GITHUB_RUN_NUMBER" > pushed-by-job.txt
          git add pushed-by-job.txt
          git commit -qm "from the job"
          git push -q origin HEAD:refs/heads/main
          echo "pushed $(git rev-parse HEAD)"
          echo "sha=$(git rev-parse HEAD)" >> "$GITHUB_OUTPUT"
  readonly:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@v4
      - uses: actions/checkout@v4
        with:
          path: nocred
          persist-credentials: false
      - name: no credentials, and a read-only token cannot push
        run: |
          if grep -q extraheader nocred/.git/config; then echo "nocred has credentials"; exit 1; fi
          echo "nocred has no credentials"
          git config user.name bot
          git config user.email bot@example.invalid
          git commit -q --allow-empty -m "read-only push"
          if git push origin HEAD:refs/heads/readonly 2>err.txt; then echo "the read-only push landed"; exit 1; fi
          cat err.txt
  local:
    needs: talk
    uses: ./.shithub/workflows/called.yml
    with:
      pushed: ${{ needs.talk.outputs.pushed }}
      n: 20
      loud: true
    secrets: inherit
  remote:
    uses: alice/lib/.github/workflows/lib.yml@main
    with:
      n: 21
  report:
    needs: [local, remote]
    runs-on: ubuntu-latest
    steps:
      - run: echo "local said ${{ needs.local.outputs.said }}; remote doubled to ${{ needs.remote.outputs.double }}"
`

// e2eRealAction is a JavaScript action that asks the API with fetch.
var e2eRealAction = map[string]string{
	".github/actions/talk/action.yml": "name: talk\nruns:\n  using: node20\n  main: index.js\n",
	".github/actions/talk/index.js": `const u = process.env.GITHUB_API_URL + "/repos/" + process.env.GITHUB_REPOSITORY + "/actions/runs";
fetch(u, { headers: { Authorization: "Bearer " + process.env.GITHUB_TOKEN } })
  .then((r) => r.json())
  .then((j) => console.log("node " + process.version + " saw " + j.total_count + " run(s)"))
  .catch((e) => { console.log("node failed: " + (e.cause || e)); process.exit(1); });
`,
}

// TestDockerServeRealWorkflow runs e2eRealWorkflow through a real serve and
// a real push, jobs seeing the server by its default *.localhost name and,
// in the second case, by --job-url. Every client reaches the API, the
// job's push lands on main and starts no run.
//
// The run also calls a local reusable workflow (typed inputs, one from
// needs, `secrets: inherit`, an output) and alice/lib's (inputs, an
// output), and its completion starts After (workflow_run), which asks the
// API about it: realWorkflowFiles, realWorkflowSetup, realWorkflowChecks.
func TestDockerServeRealWorkflow(t *testing.T) {
	image := dockertest.DebianImage(t)
	for _, tc := range []struct {
		name      string
		listenAll bool // serve on every address, jobs reaching it by --job-url http://BRIDGE:PORT
	}{
		{"default", false},
		{"job-url", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wf := strings.ReplaceAll(e2eRealWorkflow, "DEBIAN_IMAGE", image)
			e := newE2EWith(t, map[string]string{"real.yml": wf}, func(e *e2e) {
				e.listenAll = tc.listenAll
				e.serveArgs = []string{"--image", "ubuntu-latest=" + image}
			})
			realWorkflowSetup(t, e)
			files := map[string]string{}
			maps.Copy(files, e2eRealAction)
			maps.Copy(files, realWorkflowFiles())
			commitFiles(t, e.work, files)
			sha := e.push()
			run := e.waitRun(1, 180*time.Second)
			jobs := e.jobs(1)
			logs, byName := map[string]string{}, map[string]string{}
			for _, j := range jobs {
				logs[j.JobKey] = e.jobLog(j.ID)
				byName[j.Name] = logs[j.JobKey]
			}
			log := logs["talk"]
			if str(run.Conclusion) != protocol.ConclusionSuccess {
				t.Fatalf("run = %s, want success; logs: %v\nserve log:\n%s", str(run.Conclusion), logs, e.log())
			}
			for _, want := range []string{
				"curl saw 1 run(s)", "wget saw 1 run(s)", "python saw 1 run(s)",
				"cloned at " + sha,
				"docker action reached the API",
				"(/usr/bin/node, from the job image)", "node v20.", " saw 1 run(s)",
				"Persisted the token in /workspace/.git/config",
				"pushed ",
			} {
				if !strings.Contains(log, want) {
					t.Errorf("the job's log lacks %q:\n%s", want, log)
				}
			}
			// The push landed on main, on top of the pushed commit.
			head := strings.TrimSpace(gitCmd(t, e.git, "rev-parse", "refs/heads/main"))
			if !strings.Contains(log, "pushed "+head) {
				t.Errorf("main is at %s, not the job's commit; log:\n%s", head, log)
			}
			if parent := strings.TrimSpace(gitCmd(t, e.git, "rev-parse", "refs/heads/main^")); parent != sha {
				t.Errorf("the job's commit has parent %s, want %s", parent, sha)
			}
			if got := gitCmd(t, e.git, "show", "refs/heads/main:pushed-by-job.txt"); got != "run 1\n" {
				t.Errorf("pushed-by-job.txt = %q", got)
			}
			// The GITHUB_TOKEN's push started no run (GitHub's rule); the
			// push was answered before the job ended, so any run would be
			// listed by now. (The workflow_run run is at head: it runs the
			// default branch's head.)
			var runs runsJSON
			e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
			for _, r := range runs.WorkflowRuns {
				if r.HeadSHA == head && r.Event != "workflow_run" {
					t.Errorf("the job's push started run #%d (%s)", r.RunIndex, r.Event)
				}
			}
			ro := logs["readonly"]
			for _, want := range []string{"nocred has no credentials", "may not push: give the job `permissions: contents: write`"} {
				if !strings.Contains(ro, want) {
					t.Errorf("the readonly job's log lacks %q:\n%s", want, ro)
				}
			}
			if _, err := gitCmdErr(e.git, "rev-parse", "-q", "--verify", "refs/heads/readonly"); err == nil {
				t.Errorf("the read-only token's push landed")
			}
			// Of what outlives the job, the repository's tool cache volume
			// holds no credential (its workspace volume is gone: noResources).
			if m := regexp.MustCompile(`Tool cache: this repository's \(volume (\S+)\)`).FindStringSubmatch(log); m == nil {
				t.Errorf("the log names no tool cache volume:\n%s", log)
			} else if out, err := exec.Command("docker", "run", "--rm", "--network", "none", "-v", m[1]+":/t:ro", "--entrypoint", "sh", image,
				"-c", `grep -rl "AUTHORIZATION: basic" /t; find /t -name config -path "*.git*"; true`).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
				t.Errorf("the tool cache volume %s: %v %s", m[1], err, out)
			}
			// The token is masked wherever it would show.
			if strings.Contains(log, "x-access-token") {
				t.Errorf("the log shows the credential:\n%s", log)
			}
			jobs = append(jobs, realWorkflowChecks(t, e, run, sha, head, byName)...)
			for _, j := range jobs {
				if c := e.noResources(j.ID); len(c) != 0 {
					t.Errorf("job %s left %v", j.JobKey, c)
				}
			}
		})
	}
}

// e2eRealCalled is the local reusable workflow real.yml's job "local"
// calls with typed inputs (one from needs) and `secrets: inherit`: its job
// sees the repository's secret (masked, and by a digest of its value),
// reaches the API with its own token, and hands an output back.
const e2eRealCalled = `on:
  workflow_call:
    inputs:
      pushed: {type: string, required: true}
      n: {type: number, default: 1}
      loud: {type: boolean, default: false}
      unset: {type: string, default: fallback}
    outputs:
      said:
        value: ${{ jobs.say.outputs.said }}
jobs:
  say:
    runs-on: ubuntu-latest
    outputs:
      said: ${{ steps.s.outputs.said }}
    steps:
      - id: s
        env:
          TOP: ${{ secrets.TOP }}
          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
        run: |
          echo "called: pushed=${{ inputs.pushed }} n+1=$(( ${{ inputs.n }} + 1 )) loud=${{ inputs.loud }} unset=${{ inputs.unset }} workflow=${{ github.workflow }} job=$GITHUB_JOB"
          echo "secret=${{ secrets.TOP }} digest=$(printf %s "$TOP" | sha256sum | cut -c1-16)"
          curl -fsS -H "Authorization: Bearer $GITHUB_TOKEN" "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY" |
            jq -r '"called job reached \(.full_name)"'
          echo "said=got-${{ inputs.pushed }}" >> "$GITHUB_OUTPUT"
`

// e2eRealLib is alice/lib's reusable workflow, called from alice/hello as
// alice/lib/.github/workflows/lib.yml@main: a private repository of the
// same server whose owner opened it to their other repositories (`repo
// access`). It gets no secrets (the call passes none).
const e2eRealLib = `on:
  workflow_call:
    inputs:
      n: {type: number, required: true}
    outputs:
      double:
        value: ${{ jobs.calc.outputs.d }}
jobs:
  calc:
    runs-on: ubuntu-latest
    outputs:
      d: ${{ steps.c.outputs.d }}
    steps:
      - id: c
        run: |
          echo "d=$(( ${{ inputs.n }} * 2 ))" >> "$GITHUB_OUTPUT"
          echo "remote ran for ${{ github.repository }} top=[${{ secrets.TOP }}]"
`

// e2eRealAfter runs when a run of Real completes, from the default
// branch's head, and asks the API about the run that triggered it.
const e2eRealAfter = `name: After
on:
  workflow_run:
    workflows: [Real]
    types: [completed]
permissions:
  actions: read
jobs:
  after:
    runs-on: ubuntu-latest
    steps:
      - env:
          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
          ID: ${{ github.event.workflow_run.id }}
        run: |
          echo "after ${{ github.event.action }} of run ${{ github.event.workflow_run.id }} (#${{ github.event.workflow_run.run_number }} ${{ github.event.workflow_run.event }} ${{ github.event.workflow_run.name }}): ${{ github.event.workflow_run.conclusion }} at ${{ github.event.workflow_run.head_sha }}"
          curl -fsS -H "Authorization: Bearer $GITHUB_TOKEN" "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/actions/runs/$ID" |
            jq -r '"the API says run \(.id) is \(.status) \(.conclusion) at \(.head_sha)"'
`

// e2eRealSecret is alice/hello's repository secret TOP.
const e2eRealSecret = "real-top-secret"

// realWorkflowFiles are more files of the repository TestDockerServeRealWorkflow
// pushes: the called workflow (workflow_call only: it starts no run) and
// the workflow_run listener (it starts none on push either), so real.yml
// stays run #1.
func realWorkflowFiles() map[string]string {
	return map[string]string{
		".shithub/workflows/called.yml": e2eRealCalled,
		".shithub/workflows/after.yml":  e2eRealAfter,
	}
}

// realWorkflowSetup makes what the push needs on the server: alice/lib
// (private, opened to alice's other repositories) and alice/hello's
// secret TOP.
func realWorkflowSetup(t *testing.T, e *e2e) {
	lib, _ := newGitRepo(t, map[string]string{".github/workflows/lib.yml": e2eRealLib})
	e.cli("repo", "create", "alice/lib", "--git", filepath.Join(lib, ".git"), "--private")
	e.cli("repo", "access", "alice/lib", "user")
	secret := e.selfCmd("secret", "set", "alice/hello", "TOP")
	secret.Stdin = strings.NewReader(e2eRealSecret)
	if out, err := secret.CombinedOutput(); err != nil {
		t.Fatalf("secret set: %v\n%s", err, out)
	}
}

// realWorkflowChecks checks run #1's called jobs, by name, and the
// workflow_run run #2 it triggered; it returns run #2's jobs.
// sha is the pushed commit, head the job's commit on top of it.
func realWorkflowChecks(t *testing.T, e *e2e, run runJSON, sha, head string, byName map[string]string) []jobJSON {
	t.Helper()
	sum := sha256.Sum256([]byte(e2eRealSecret))
	for name, wants := range map[string][]string{
		"local / say": {
			"called: pushed=" + head + " n+1=21 loud=true unset=fallback workflow=Real job=say\n",
			"secret=*** digest=" + hex.EncodeToString(sum[:])[:16] + "\n",
			"called job reached alice/hello\n",
		},
		"remote / calc": {"remote ran for alice/hello top=[]\n"},
		"report":        {"local said got-" + head + "; remote doubled to 42\n"},
	} {
		log, ok := byName[name]
		if !ok {
			t.Errorf("run #1 has no job %q (it has %v)", name, slices.Sorted(maps.Keys(byName)))
			continue
		}
		for _, w := range wants {
			if !strings.Contains(log, w) {
				t.Errorf("job %q's log lacks %q:\n%s", name, w, log)
			}
		}
		if strings.Contains(log, e2eRealSecret) {
			t.Errorf("job %q's log shows the secret", name)
		}
	}
	// The workflow_run run: made once (types: [completed]), from the
	// default branch's head (the job's commit), and successful.
	after := e.waitRun(2, 120*time.Second)
	if after.Event != "workflow_run" || after.Name != "After" || str(after.Conclusion) != protocol.ConclusionSuccess {
		t.Errorf("run #2 is %s %q %s, want a successful workflow_run run of After", after.Event, after.Name, str(after.Conclusion))
	}
	if after.HeadSHA != head {
		t.Errorf("run #2 is at %s, want the default branch's head %s", after.HeadSHA, head)
	}
	jobs := e.jobs(2)
	if len(jobs) != 1 {
		t.Fatalf("run #2 has %d jobs", len(jobs))
	}
	log := e.jobLog(jobs[0].ID)
	for _, w := range []string{
		fmt.Sprintf("after completed of run %d (#1 push Real): success at %s\n", run.ID, sha),
		fmt.Sprintf("the API says run %d is completed success at %s\n", run.ID, sha),
	} {
		if !strings.Contains(log, w) {
			t.Errorf("the workflow_run job's log lacks %q:\n%s", w, log)
		}
	}
	var runs runsJSON
	e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
	if len(runs.WorkflowRuns) != 2 {
		for _, r := range runs.WorkflowRuns {
			t.Logf("run #%d %s %s", r.RunIndex, r.Name, r.Event)
		}
		t.Errorf("%d runs, want 2 (Real, and After once)", len(runs.WorkflowRuns))
	}
	return jobs
}

// gitCmdErr runs git in dir and returns its output and error.
func gitCmdErr(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	return string(out), err
}
