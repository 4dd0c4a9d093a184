//go:build docker

package main

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
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
	wrapper := "#!/bin/sh\nd=" + executor.ContainerNode + "\nexec \"$d/lib/" + loader + "\" --library-path \"$d/lib\" \"$d/bin/node.real\" \"$@\"\n"
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
			err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				rel, _ := filepath.Rel(src, p)
				files[filepath.ToSlash(rel)] = string(b)
				return err
			})
			if err != nil {
				tb.Fatal(err)
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
	ex := executor.New(executor.Config{
		Instance: executor.RandomInstance("dockertest"), Images: map[string]string{"busybox": testImage}, Pull: "never",
		Memory: "512m", WorkDir: t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
		DataDir: t.TempDir(), ActionsURL: "file://" + mirrors, NodeDir: nodeDir, JobURL: "http://10.9.8.7:8080",
	}, src, runnerTestLogger())
	t.Cleanup(func() {
		ex.RemoveStale(context.Background())
		removeToolCaches(ex.Cfg.Instance)
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
		protocol.Step{ID: 940105, Number: 6, Kind: "uses", Name: "docker://", Uses: "docker://" + testImage, With: map[string]string{"args": "echo from-docker-url"}},
		protocol.Step{ID: 940106, Number: 7, Kind: "run", Name: "outputs",
			Run: "echo \"js=${{ steps.js.outputs.greeting }} sum=${{ steps.comp.outputs.sum }} nested=${{ steps.comp.outputs.greeting }} said=${{ steps.dock.outputs.said }} env=$GREETED\""},
	)
	ex.RunJob(job)

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
	ex2 := executor.New(executor.Config{
		Instance: executor.RandomInstance("dockertest"), Images: map[string]string{"busybox": testImage}, Pull: "never",
		WorkDir: t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
		DataDir: t.TempDir(), ActionsURL: "file://" + mirrors, AllowActions: []string{"acme/hello-js"},
	}, src2, runnerTestLogger())
	t.Cleanup(func() { ex2.RemoveStale(context.Background()) })
	job2 := dockerJob(9402)
	job2.Contexts = map[string]any{}
	job2.Steps = append(job2.Steps,
		protocol.Step{ID: 940202, Number: 3, Kind: "uses", Name: "js", Uses: "acme/hello-js@v1", If: "always()"},
		protocol.Step{ID: 940203, Number: 4, Kind: "uses", Name: "dock", Uses: "acme/dock@v1", If: "always()"})
	ex2.RunJob(job2)
	if l := src2.log(t, stepID(job2, 2)); !strings.Contains(l, "this runner has no Node.js: start it with --node DIR") {
		t.Errorf("JavaScript action without --node: log %q", l)
	}
	if l := src2.log(t, stepID(job2, 3)); !strings.Contains(l, "acme/dock@v1 is not allowed on this runner: --allow-actions is acme/hello-js") {
		t.Errorf("refused action: log %q", l)
	}
}

// dockerBridgeIP is the host's address on the docker0 bridge: job
// containers, on networks of their own, reach the host there.
func dockerBridgeIP(t *testing.T) string {
	t.Helper()
	iface, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("no docker0 bridge on this host, so job containers cannot reach serve: %v", err)
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address (%v)", addrs)
	return ""
}

// e2eActions uses a JavaScript action, a composite action and a Docker
// action from a file:// mirror, checks out with inputs, saves or restores
// a cache and uploads an artifact that the second job downloads.
const e2eActions = `name: Actions
on: push
jobs:
  build:
    runs-on: busybox
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - run: |
          if [ -e .git/shallow ]; then echo "history: shallow"; else echo "history: full"; fi
          if [ -e .git/objects/info/alternates ]; then echo "objects: borrowed"; else echo "objects: own"; fi
      - uses: actions/checkout@v4
        with:
          path: sub/copy
          ref: main
      - run: |
          echo "sub/copy: $(cat sub/copy/README) shallow=$(test -e sub/copy/.git/shallow && echo yes)"
      - id: js
        uses: acme/hello-js@v1
        with:
          who-to-greet: e2e
      - id: comp
        uses: acme/compose@v1
        with:
          b: "40"
      - id: dock
        uses: acme/dock@v1
      - run: echo "outputs js=${{ steps.js.outputs.greeting }} sum=${{ steps.comp.outputs.sum }} said=${{ steps.dock.outputs.said }}"
      - id: cache
        uses: acme/toolkit/cache@v1
        with:
          path: deps
          key: deps-v1
      - run: |
          if [ "${{ steps.cache.outputs.cache-hit }}" = true ]; then
            echo "restored: $(cat deps/built.txt)"
          else
            mkdir -p deps && echo "built in run $GITHUB_RUN_NUMBER" > deps/built.txt && echo "cache miss"
          fi
          mkdir -p dist && echo "artifact of $GITHUB_SHA" > dist/out.txt
      - uses: acme/toolkit/upload@v1
        with:
          name: dist
          path: dist
  use:
    needs: build
    runs-on: busybox
    steps:
      - uses: acme/toolkit/download@v1
        with:
          name: dist
          path: got
      - run: cat got/out.txt
`

// TestDockerServeActions runs e2eActions on a real serve process twice:
// the first run saves the cache, the second restores it; each run's
// second job downloads the artifact its first job uploaded.
func TestDockerServeActions(t *testing.T) {
	nodeDir := prepareNodeDir(t)
	mirrors := newActionMirrors(t)
	e := newE2EWith(t, map[string]string{"actions.yml": e2eActions}, func(e *e2e) {
		e.listenAll = true
		e.serveArgs = []string{"--node", nodeDir, "--actions-url", "file://" + mirrors, "--data-dir", filepath.Join(e.dir, "data")}
	})
	t.Cleanup(func() {
		if id := e.instance(); id != "" {
			removeToolCaches(id)
		}
	})
	for i, want := range []struct {
		build []string
	}{
		{build: []string{"Cache not found for input keys: deps-v1", "cache miss", "Cache saved with key: deps-v1"}},
		{build: []string{"Cache restored from key: deps-v1", "restored: built in run 1", "Cache hit occurred on the primary key deps-v1, not saving cache."}},
	} {
		idx := i + 1
		sha := e.push()
		run := e.waitRun(idx, 180*time.Second)
		jobs := map[string]jobJSON{}
		for _, j := range e.jobs(idx) {
			jobs[j.JobKey] = j
		}
		build, use := e.jobLog(jobs["build"].ID), e.jobLog(jobs["use"].ID)
		if str(run.Conclusion) != protocol.ConclusionSuccess {
			t.Fatalf("run #%d = %s, want success\nbuild log:\n%s\nuse log:\n%s\nserve log:\n%s", idx, str(run.Conclusion), build, use, e.log())
		}
		for _, w := range append([]string{
			"history: full", "objects: own", "sub/copy: readme line " + strconv.Itoa(idx) + " shallow=yes",
			"Download action repository 'acme/hello-js@v1'", "Hello e2e!",
			"outputs js=Hello e2e sum=42 said=ahoy", "docker action says: ahoy second",
			"Artifact dist has been successfully uploaded!", "Post Run acme/hello-js@v1",
		}, want.build...) {
			if !strings.Contains(build, w) {
				t.Errorf("run #%d: the build job's log lacks %q:\n%s", idx, w, build)
			}
		}
		for _, w := range []string{"Artifact dist (id", "artifact of " + sha} {
			if !strings.Contains(use, w) {
				t.Errorf("run #%d: the use job's log lacks %q:\n%s", idx, w, use)
			}
		}
		// The artifact through GitHub's REST paths: listed, and its zip.
		var list struct {
			TotalCount int `json:"total_count"`
			Artifacts  []struct {
				ID   int64  `json:"id"`
				Name string `json:"name"`
			} `json:"artifacts"`
		}
		e.api("GET", fmt.Sprintf("/api/v1/repos/alice/hello/actions/runs/%d/artifacts", run.ID), &list)
		if list.TotalCount != 1 || len(list.Artifacts) != 1 || list.Artifacts[0].Name != "dist" {
			t.Fatalf("run #%d artifacts = %+v, want dist", idx, list)
		}
		var zipped string
		code := e.api("GET", fmt.Sprintf("/api/v1/repos/alice/hello/actions/artifacts/%d/zip", list.Artifacts[0].ID), &zipped)
		zr, err := zip.NewReader(strings.NewReader(zipped), int64(len(zipped)))
		if code != http.StatusOK || err != nil || len(zr.File) != 1 || zr.File[0].Name != "out.txt" {
			t.Fatalf("run #%d artifact zip: %d, %v", idx, code, err)
		}
		f, _ := zr.File[0].Open()
		b, _ := io.ReadAll(f)
		if string(b) != "artifact of "+sha+"\n" {
			t.Errorf("run #%d artifact's out.txt = %q", idx, b)
		}
	}
}
