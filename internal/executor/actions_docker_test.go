//go:build docker

package executor

import (
	"context"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/protocol"
)

// A job with a JavaScript action (with a post step), a composite action
// (using the JavaScript action), a Docker action built from a Dockerfile,
// and a docker:// action, all from a file:// mirrors directory.
func TestDockerActions(t *testing.T) {
	dockertest.BuildImage(t)
	nodeDir := dockertest.NodeDir(t, ContainerNode)
	mirrors := dockertest.ActionMirrors(t, "../../testdata/actions")
	src := newFakeSource()
	ex := New(Config{
		Instance: randomInstance("dockertest"), Images: map[string]string{"busybox": dockertest.Image}, Pull: "never",
		Memory: "512m", WorkDir: t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
		DataDir: t.TempDir(), ActionsURL: "file://" + mirrors, NodeDir: nodeDir, JobURL: "http://10.9.8.7:8080",
	}, src, runnerTestLogger())
	t.Cleanup(func() {
		ex.RemoveStale(context.Background())
		removeToolCaches(ex.cfg.Instance)
	})

	job := dockerJob(9401)
	job.Contexts = map[string]any{"github": map[string]any{"repository": "alice/demo"}}
	job.RuntimeToken = "runtime-token-value"
	job.Steps = append(job.Steps,
		protocol.Step{ID: 940102, Number: 3, Kind: "uses", Name: "Run acme/hello-js@v1", Uses: "acme/hello-js@v1", StepKey: "js",
			With: map[string]string{"who-to-greet": "Mona", "old": "x"}},
		protocol.Step{ID: 940103, Number: 4, Kind: "uses", Name: "Run acme/compose@v1", Uses: "acme/compose@v1", StepKey: "comp",
			With: map[string]string{"b": "40"}},
		protocol.Step{ID: 940104, Number: 5, Kind: "uses", Name: "Run acme/dock@v1", Uses: "acme/dock@v1", StepKey: "dock"},
		protocol.Step{ID: 940105, Number: 6, Kind: "uses", Name: "docker://", Uses: "docker://" + dockertest.Image, With: map[string]string{"args": "echo from-docker-url"}},
		protocol.Step{ID: 940106, Number: 7, Kind: "run", Name: "outputs",
			Run: "echo \"js=${{ steps.js.outputs.greeting }} sum=${{ steps.comp.outputs.sum }} nested=${{ steps.comp.outputs.greeting }} said=${{ steps.dock.outputs.said }} env=$GREETED\""},
	)
	ex.runJob(job)

	logs := func(i int) string { return src.log(t, stepID(job, i)) }
	if got := src.jobConclusion(9401); got != "success" {
		for i := range job.Steps {
			t.Logf("step %d log:\n%s", i, logs(i))
		}
		t.Fatalf("job = %q, want success", got)
	}
	for _, tc := range []struct {
		step int
		want []string
	}{
		{2, []string{"Download action repository 'acme/hello-js@v1'", "Running with Node.js v", "(/__shithub/node/bin/node, from --node)", "Hello Mona!", "action path has index.js: true",
			"repository acme/hello-js ref v1", "runner Linux tool cache /opt/hostedtoolcache", "token set: true",
			"Input 'old' has been deprecated with message: use who-to-greet", "Post Run acme/hello-js@v1", "post: greeted Mona"}},
		{3, []string{"action path: /__shithub/actions/acme/compose/", "action.yml", "Hello composite!", "post: greeted composite"}},
		{4, []string{"docker action says: ahoy second", "input: ahoy, runs.env: yes, workspace: /workspace, readme: alice/demo@"}},
		{5, []string{"from-docker-url"}},
		{6, []string{"js=Hello Mona sum=42 nested=Hello composite said=ahoy env=composite"}},
	} {
		log := logs(tc.step)
		for _, w := range tc.want {
			if !strings.Contains(log, w) {
				t.Errorf("step %d log lacks %q:\n%s", tc.step, w, log)
			}
		}
	}
	// Posts run last first: the composite's nested post before the first step's.
	if l := logs(2); strings.Contains(l, "runtime-token-value") {
		t.Errorf("the runtime token shows in the log:\n%s", l)
	}

	// Without --node, a JavaScript action fails with the reason.
	src2 := newFakeSource()
	ex2 := New(Config{
		Instance: randomInstance("dockertest"), Images: map[string]string{"busybox": dockertest.Image}, Pull: "never",
		WorkDir: t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
		DataDir: t.TempDir(), ActionsURL: "file://" + mirrors, AllowActions: []string{"acme/hello-js"},
	}, src2, runnerTestLogger())
	t.Cleanup(func() { ex2.RemoveStale(context.Background()) })
	job2 := dockerJob(9402)
	job2.Contexts = map[string]any{}
	job2.Steps = append(job2.Steps,
		protocol.Step{ID: 940202, Number: 3, Kind: "uses", Name: "js", Uses: "acme/hello-js@v1", If: "always()"},
		protocol.Step{ID: 940203, Number: 4, Kind: "uses", Name: "dock", Uses: "acme/dock@v1", If: "always()"})
	ex2.runJob(job2)
	// Neither --node nor a node in the image: the error names both ways out.
	if l := src2.log(t, stepID(job2, 2)); !strings.Contains(l, "this job's image has no `node` on its PATH, and this runner was started without --node") ||
		!strings.Contains(l, "Use an image with Node.js") || !strings.Contains(l, "--node DIR") {
		t.Errorf("JavaScript action without --node: log %q", l)
	}
	if l := src2.log(t, stepID(job2, 3)); !strings.Contains(l, "acme/dock@v1 is not allowed on this runner: --allow-actions is acme/hello-js") {
		t.Errorf("refused action: log %q", l)
	}
}

// TestDockerActionsImageNode: without --node, a JavaScript action runs with
// the job image's own node (the Debian test image's), and the log says
// which node ran it.
func TestDockerActionsImageNode(t *testing.T) {
	image := dockertest.DebianImage(t)
	mirrors := dockertest.ActionMirrors(t, "../../testdata/actions")
	src := newFakeSource()
	ex := New(Config{
		Instance: randomInstance("dockertest"), Images: map[string]string{"busybox": image}, Pull: "never",
		Memory: "512m", WorkDir: t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
		DataDir: t.TempDir(), ActionsURL: "file://" + mirrors, JobURL: "http://10.9.8.7:8080",
	}, src, runnerTestLogger())
	t.Cleanup(func() {
		ex.RemoveStale(context.Background())
		removeToolCaches(ex.cfg.Instance)
	})
	job := dockerJob(9403)
	job.Contexts = map[string]any{"github": map[string]any{"repository": "alice/demo"}}
	job.Steps = append(job.Steps,
		protocol.Step{ID: 940302, Number: 3, Kind: "uses", Name: "Run acme/hello-js@v1", Uses: "acme/hello-js@v1", StepKey: "js",
			With: map[string]string{"who-to-greet": "Debian"}})
	ex.runJob(job)
	l := src.log(t, stepID(job, 2))
	if got := src.jobConclusion(9403); got != "success" {
		t.Fatalf("job = %q, want success; log:\n%s", got, l)
	}
	for _, want := range []string{"Running with Node.js v", "(/usr/bin/node, from the job image)", "Hello Debian!", "post: greeted Debian"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}
