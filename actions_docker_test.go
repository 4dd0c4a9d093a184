//go:build docker

package main

import (
	"archive/zip"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
)

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
	nodeDir := dockertest.NodeDir(t, executor.ContainerNode)
	mirrors := dockertest.ActionMirrors(t, "testdata/actions")
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
