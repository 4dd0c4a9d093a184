//go:build docker

// A real workflow on a real serve in a real Debian image (.ci/debian-image:
// git, curl, wget, python3, node from Debian's packages): jobs talk back to
// the server with every client, push back with the token checkout
// persisted, and run a JavaScript action with the image's node.
// go test -tags docker -run DockerServeRealWorkflow .

package main

import (
	"os/exec"
	"regexp"
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
        run: |
          git config user.name bot
          git config user.email bot@example.invalid
          echo "run $GITHUB_RUN_NUMBER" > pushed-by-job.txt
          git add pushed-by-job.txt
          git commit -qm "from the job"
          git push -q origin HEAD:refs/heads/main
          echo "pushed $(git rev-parse HEAD)"
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
// Hooks for what comes next (reusable workflows, workflow_run): add files
// to realWorkflowFiles and checks to realWorkflowChecks; both run in
// each case.
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
			files := map[string]string{}
			for k, v := range e2eRealAction {
				files[k] = v
			}
			for k, v := range realWorkflowFiles(image) {
				files[k] = v
			}
			commitFiles(t, e.work, files)
			sha := e.push()
			run := e.waitRun(1, 180*time.Second)
			jobs := e.jobs(1)
			logs := map[string]string{}
			for _, j := range jobs {
				logs[j.JobKey] = e.jobLog(j.ID)
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
			// listed by now.
			var runs runsJSON
			e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
			for _, r := range runs.WorkflowRuns {
				if r.HeadSHA == head {
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
			for _, check := range realWorkflowChecks {
				check(t, e, run, logs)
			}
			for _, j := range jobs {
				if c := e.noResources(j.ID); len(c) != 0 {
					t.Errorf("job %s left %v", j.JobKey, c)
				}
			}
		})
	}
}

// realWorkflowFiles are more files of the repository TestDockerServeRealWorkflow
// pushes (workflows under .shithub/workflows/, reusable ones, actions).
// HOOK: reusable workflows (a local one called with inputs, secrets:
// inherit and outputs; a remote OWNER/REPO one) and a workflow_run
// workflow go here.
func realWorkflowFiles(image string) map[string]string {
	return map[string]string{}
}

// realWorkflowChecks run after run #1 of TestDockerServeRealWorkflow has
// completed, with its jobs' logs by job key.
// HOOK: the checks of the called jobs ("caller / job") and of the
// workflow_run run go here.
var realWorkflowChecks []func(t *testing.T, e *e2e, run runJSON, logs map[string]string)

// gitCmdErr runs git in dir and returns its output and error.
func gitCmdErr(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	return string(out), err
}
