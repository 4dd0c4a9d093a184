//go:build docker

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
)

// secretsWorkflow reads a secret into its env and prints it, directly and
// made up at run time (once whole, once across two log chunks: the sleep
// outlasts the executor's flush interval), and talks back to the server
// from the job's container through the job-facing address with its
// GITHUB_TOKEN.
const secretsWorkflow = `name: Secrets
on: push
jobs:
  deploy:
    runs-on: busybox
    env:
      PASSWORD: ${{ secrets.PASSWORD }}
    steps:
      - run: |
          echo "direct: $PASSWORD"
          printf 'the password is %s-%s-%s\n' hunter2 e2e value
          printf 'split: %s-%s' hunter2 e2e; sleep 1; printf -- '-%s!\n' value
      - run: |
          echo "server: $GITHUB_SERVER_URL api: $GITHUB_API_URL"
          wget -qO- --header "Authorization: Bearer ${{ github.token }}" "$GITHUB_API_URL/repos/alice/hello/actions/runs" | grep -q '"total_count"' && echo api-reached
          wget -qO- --header "Authorization: Bearer ${{ secrets.GITHUB_TOKEN }}" "$GITHUB_SERVER_URL/alice/hello.git/info/refs?service=git-upload-pack" | grep -q 'refs/heads/main' && echo git-reached
`

// TestDockerSecretsAndJobAddress: a serve process on loopback, a job in a
// real container: the secret it references is *** in the stored log, and
// the job reaches the server's API and git at http://shithub.localhost:PORT.
func TestDockerSecretsAndJobAddress(t *testing.T) {
	e := newE2E(t, map[string]string{"secrets.yml": secretsWorkflow})
	cmd := e.selfCmd("secret", "set", "alice/hello", "PASSWORD")
	cmd.Stdin = strings.NewReader("hunter2-e2e-value")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secret set: %v: %s", err, out)
	}
	e.push()
	run := e.waitRun(1, 90*time.Second)
	jobs := e.jobs(1)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	log := e.jobLog(jobs[0].ID)
	if str(run.Conclusion) != protocol.ConclusionSuccess {
		t.Fatalf("run = %s; log:\n%s\nserve log:\n%s", str(run.Conclusion), log, e.log())
	}
	for _, want := range []string{"direct: ***\nthe password is ***\nsplit: ***!\n", "server: http://shithub.localhost:", "api-reached", "git-reached"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "hunter2-e2e-value") {
		t.Errorf("the log shows the secret:\n%s", log)
	}
	// Nor does the database hold it.
	for _, f := range []string{e.db, e.db + "-wal"} {
		if b, err := os.ReadFile(f); err != nil || bytes.Contains(b, []byte("hunter2-e2e-value")) {
			t.Errorf("%s holds the secret (or cannot be read: %v)", f, err)
		}
	}
}
