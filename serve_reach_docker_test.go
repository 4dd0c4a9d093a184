//go:build docker

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
)

// reachSecret is alice/priv's SECRET file, reachNote bob/notes's NOTE: no
// log of an untrusted run may show them.
const (
	reachSecret = "the-crown-jewels-7f3a"
	reachNote   = "bobs-private-note-91c2"
)

// e2eReachAttack is a fork's pull request on alice/hello (public) reaching
// for alice/priv: its files through checkout, and an action in it.
const e2eReachAttack = `name: Attack
on: pull_request
jobs:
  checkout:
    runs-on: busybox
    steps:
      - uses: actions/checkout@v4
        with:
          repository: alice/priv
          path: loot
      - run: cat loot/SECRET
  action:
    runs-on: busybox
    steps:
      - uses: alice/priv/act@main
  token:
    runs-on: busybox
    steps:
      - uses: actions/checkout@v4
        with:
          repository: bob/notes
          token: ${{ secrets.BOB_TOKEN }}
          path: loot
      - run: cat loot/NOTE
`

// e2eReachTrusted is the same reach from a push of alice/hello, which alice
// opened alice/priv to; bob/notes takes bob's token, from a secret.
const e2eReachTrusted = `name: Trusted
on: push
jobs:
  both:
    runs-on: busybox
    steps:
      - uses: actions/checkout@v4
        with:
          repository: alice/priv
          path: mine
      - run: echo "read $(cat mine/SECRET)"
      - uses: alice/priv/act@main
      - uses: actions/checkout@v4
        with:
          repository: bob/notes
          token: ${{ secrets.BOB_TOKEN }}
          path: notes
      - run: echo "note $(cat notes/NOTE)"
`

// TestDockerServeReachPrivate drives an attacker's workflow through a real
// serve as a pull request event: neither its checkout of alice/priv nor its
// use of alice/priv's action may get anything, although alice opened
// alice/priv to her repositories' jobs; the log says not found and never
// shows the private file. A push of the same repository reaches both.
func TestDockerServeReachPrivate(t *testing.T) {
	mirrors := t.TempDir() // --actions-url: empty, so nothing falls through to the network
	e := newE2EWith(t, map[string]string{"attack.yml": e2eReachAttack, "trusted.yml": e2eReachTrusted}, func(e *e2e) {
		e.serveArgs = []string{"--actions-url", "file://" + mirrors}
	})
	priv, _ := newGitRepo(t, map[string]string{
		"SECRET": reachSecret + "\n",
		"act/action.yml": "name: act\nruns:\n  using: composite\n  steps:\n" +
			"    - run: echo \"private action ran\"\n      shell: sh\n",
	})
	e.cli("repo", "create", "alice/priv", "--git", priv, "--private")
	e.cli("repo", "access", "alice/priv", "user")
	// bob's private bob/notes, and a token of bob's that may read it as
	// alice/hello's secret BOB_TOKEN.
	notes, _ := newGitRepo(t, map[string]string{"NOTE": reachNote + "\n"})
	e.cli("user", "create", "bob")
	e.cli("repo", "create", "bob/notes", "--git", notes, "--private")
	out := strings.TrimSpace(e.cli("token", "create", "bob", "--scopes", "repo:read"))
	bobToken := out[strings.LastIndex(out, "\n")+1:]
	set := e.selfCmd("secret", "set", "alice/hello", "BOB_TOKEN")
	set.Stdin = strings.NewReader(bobToken)
	if out, err := set.CombinedOutput(); err != nil {
		t.Fatalf("secret set: %v\n%s", err, out)
	}

	// The push: run #1, trusted.
	sha := e.push()
	run := e.waitRun(1, 120*time.Second)
	var trusted string
	for _, j := range e.jobs(1) {
		trusted = e.jobLog(j.ID)
	}
	if strings.Contains(trusted, bobToken) {
		t.Errorf("the push's log shows the token")
	}
	if str(run.Conclusion) != protocol.ConclusionSuccess {
		t.Fatalf("the push's run = %s, want success; log:\n%s\nserve log:\n%s", str(run.Conclusion), trusted, e.log())
	}
	for _, want := range []string{"read " + reachSecret, "private action ran", "from this server's alice/priv", "note " + reachNote} {
		if !strings.Contains(trusted, want) {
			t.Errorf("the push's log lacks %q:\n%s", want, trusted)
		}
	}

	// The pull request: run #2, at the same commit, as a fork's.
	body, _ := json.Marshal(map[string]any{"action": "opened", "number": 1, "head_sha": sha,
		"head_ref": "evil", "base_ref": "main", "title": "harmless"})
	req, _ := http.NewRequest("POST", e.base+"/api/v1/repos/alice/hello/actions/events/pull_request", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST pull_request: %d %s", res.StatusCode, b)
	}
	run = e.waitRun(2, 120*time.Second)
	if run.Event != "pull_request" || str(run.Conclusion) != protocol.ConclusionFailure {
		t.Errorf("the pull request's run = %s %s, want a pull_request run that fails", run.Event, str(run.Conclusion))
	}
	logs := map[string]string{}
	for _, j := range e.jobs(2) {
		logs[j.JobKey] = e.jobLog(j.ID)
		if str(j.Conclusion) != protocol.ConclusionFailure {
			t.Errorf("the pull request's job %s = %s, want failure", j.JobKey, str(j.Conclusion))
		}
	}
	for key, want := range map[string]string{
		"checkout": "repository alice/priv not found, or not reachable from this job",
		"action":   "action alice/priv is neither on this server nor in file://",
		"token":    "repository bob/notes not found, or not reachable from this job", // the secret is withheld, and a token would not count
	} {
		if !strings.Contains(logs[key], want) {
			t.Errorf("job %s's log lacks %q:\n%s", key, want, logs[key])
		}
	}
	for key, log := range logs {
		for _, never := range []string{reachSecret, reachNote, "private action ran"} {
			if strings.Contains(log, never) {
				t.Errorf("job %s's log shows %q:\n%s", key, never, log)
			}
		}
	}
	if strings.Contains(e.log(), reachSecret) || strings.Contains(e.log(), reachNote) || strings.Contains(e.log(), bobToken) {
		t.Errorf("the serve log shows a private file or the token")
	}
	if t.Failed() {
		t.Logf("serve log:\n%s\n(data in %s)", e.log(), filepath.Join(e.dir))
	}
}
