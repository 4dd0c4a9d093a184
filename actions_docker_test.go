//go:build docker

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// prepareNodeDir makes a --node directory from this machine's /usr/bin/node
// and the libraries ldd names, with bin/node a wrapper that starts it
// through its own dynamic loader: the test image has no libc.
func prepareNodeDir(tb testing.TB) string {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true but there is no node (Debian: nodejs): %v", err)
		}
		tb.Skipf("no node on this machine: %v", err)
	}
	node, _ = filepath.EvalSymlinks(node)
	out, err := exec.Command("ldd", node).Output()
	if err != nil {
		tb.Fatalf("ldd %s: %v", node, err)
	}
	dir := tb.TempDir()
	for _, d := range []string{"bin", "lib"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	copyFile := func(src, dst string, mode os.FileMode) {
		if err := os.Link(src, dst); err == nil {
			return
		}
		b, err := os.ReadFile(src)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			tb.Fatal(err)
		}
	}
	loader := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib, loader = f[0], filepath.Base(f[0])
		default:
			continue
		}
		real, _ := filepath.EvalSymlinks(lib)
		copyFile(real, filepath.Join(dir, "lib", filepath.Base(lib)), 0o755)
	}
	if loader == "" {
		tb.Fatalf("ldd %s names no dynamic loader:\n%s", node, out)
	}
	copyFile(node, filepath.Join(dir, "bin", "node.real"), 0o755)
	wrapper := "#!/bin/sh\nd=" + containerNode + "\nexec \"$d/lib/" + loader + "\" --library-path \"$d/lib\" \"$d/bin/node.real\" \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "bin", "node"), []byte(wrapper), 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// newActionMirrors turns testdata/actions/OWNER/REPO into git repositories
// tagged v1 in a file:// mirrors directory.
func newActionMirrors(tb testing.TB) string {
	tb.Helper()
	mirrors := tb.TempDir()
	owners, _ := os.ReadDir("testdata/actions")
	for _, o := range owners {
		repos, _ := os.ReadDir(filepath.Join("testdata/actions", o.Name()))
		for _, r := range repos {
			files := map[string]string{}
			src := filepath.Join("testdata/actions", o.Name(), r.Name())
			entries, _ := os.ReadDir(src)
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(src, e.Name()))
				if err != nil {
					tb.Fatal(err)
				}
				files[e.Name()] = string(b)
			}
			dir := filepath.Join(mirrors, o.Name(), r.Name())
			os.MkdirAll(dir, 0o755)
			gitCmd(tb.(*testing.T), dir, "init", "-q", "-b", "main")
			commitFiles(tb.(*testing.T), dir, files)
			gitCmd(tb.(*testing.T), dir, "tag", "v1")
		}
	}
	return mirrors
}

// A job with a JavaScript action (with a post step), a composite action
// (using the JavaScript action), a Docker action built from a Dockerfile,
// and a docker:// action, all from a file:// mirrors directory.
func TestDockerActions(t *testing.T) {
	buildTestImage(t)
	nodeDir := prepareNodeDir(t)
	mirrors := newActionMirrors(t)
	src := newFakeSource()
	ex := newExecutor(executorConfig{
		Instance: randomInstance("dockertest"), Images: map[string]string{"busybox": testImage}, Pull: "never",
		Memory: "512m", WorkDir: t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
		DataDir: t.TempDir(), ActionsURL: "file://" + mirrors, NodeDir: nodeDir, JobURL: "http://10.9.8.7:8080",
	}, src, runnerTestLogger())
	t.Cleanup(func() {
		ex.removeStale(context.Background())
		exec.Command("docker", "volume", "rm", "-f", ex.toolCacheVolume()).Run()
	})

	job := dockerJob(9401)
	job.Contexts = map[string]any{"github": map[string]any{"repository": "alice/demo"}}
	job.RuntimeToken = "runtime-token-value"
	job.Steps = append(job.Steps,
		claimedStep{ID: 940102, Number: 3, Kind: "uses", Name: "Run acme/hello-js@v1", Uses: "acme/hello-js@v1", StepKey: "js",
			With: map[string]string{"who-to-greet": "Mona", "old": "x"}},
		claimedStep{ID: 940103, Number: 4, Kind: "uses", Name: "Run acme/compose@v1", Uses: "acme/compose@v1", StepKey: "comp",
			With: map[string]string{"b": "40"}},
		claimedStep{ID: 940104, Number: 5, Kind: "uses", Name: "Run acme/dock@v1", Uses: "acme/dock@v1", StepKey: "dock"},
		claimedStep{ID: 940105, Number: 6, Kind: "uses", Name: "docker://", Uses: "docker://" + testImage, With: map[string]string{"args": "echo from-docker-url"}},
		claimedStep{ID: 940106, Number: 7, Kind: "run", Name: "outputs",
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
		{2, []string{"Download action repository 'acme/hello-js@v1'", "Hello Mona!", "action path has index.js: true",
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
	ex2 := newExecutor(executorConfig{
		Instance: randomInstance("dockertest"), Images: map[string]string{"busybox": testImage}, Pull: "never",
		WorkDir: t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
		DataDir: t.TempDir(), ActionsURL: "file://" + mirrors, AllowActions: []string{"acme/hello-js"},
	}, src2, runnerTestLogger())
	t.Cleanup(func() { ex2.removeStale(context.Background()) })
	job2 := dockerJob(9402)
	job2.Contexts = map[string]any{}
	job2.Steps = append(job2.Steps,
		claimedStep{ID: 940202, Number: 3, Kind: "uses", Name: "js", Uses: "acme/hello-js@v1", If: "always()"},
		claimedStep{ID: 940203, Number: 4, Kind: "uses", Name: "dock", Uses: "acme/dock@v1", If: "always()"})
	ex2.runJob(job2)
	if l := src2.log(t, stepID(job2, 2)); !strings.Contains(l, "this runner has no Node.js: start it with --node DIR") {
		t.Errorf("JavaScript action without --node: log %q", l)
	}
	if l := src2.log(t, stepID(job2, 3)); !strings.Contains(l, "acme/dock@v1 is not allowed on this runner: --allow-actions is acme/hello-js") {
		t.Errorf("refused action: log %q", l)
	}
}
