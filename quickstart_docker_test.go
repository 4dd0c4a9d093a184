//go:build docker

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/executor"
)

// quickstartImage is the image the default --image mapping gives
// ubuntu-latest. CI has no registry, so the test tags its busybox image so:
// with `--pull missing` (the default) the engine then pulls nothing.
var quickstartImage = executor.DefaultImages()["ubuntu-latest"]

// quickstartBuild is the Quickstart's first block, which the test does not
// run: it builds the binary itself, into the same place, with the Go
// toolchain and caches it runs under (a fresh HOME has neither).
const quickstartBuild = "mkdir -p ~/ci && go build -o ~/ci/shithub-actions ."

// readmeQuickstart returns the ```sh blocks of README.md's Quickstart
// section, in order, as written.
func readmeQuickstart(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "\n## Quickstart\n")
	if start < 0 {
		t.Fatal("README.md has no ## Quickstart section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+4]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```\n").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 3 {
		t.Fatalf("the Quickstart has %d sh blocks; want the build, the setup and the API tour", len(blocks))
	}
	return blocks
}

// TestDockerQuickstart runs README.md's Quickstart as a new user would paste
// it: every sh block in order, in one bash (stopping at the first command
// that fails), with an empty HOME (no git identity, no Go caches), on the
// real engine, and checks the answers the README shows. Only HOME, PATH and
// the working directory are the test's; the binary is put where the first
// block builds it.
func TestDockerQuickstart(t *testing.T) {
	dockertest.BuildImage(t)
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", quickstartImage).Output(); err == nil {
		own, _ := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", dockertest.Image).Output()
		if !bytes.Equal(out, own) {
			t.Skipf("%s exists on this engine and is not the test image: not replacing it", quickstartImage)
		}
	}
	if out, err := exec.Command("docker", "tag", dockertest.Image, quickstartImage).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", quickstartImage).Run() })
	// The Quickstart's server listens on 127.0.0.1:8080, as printed.
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err != nil {
		t.Fatalf("the Quickstart needs 127.0.0.1:8080 free: %v", err)
	} else {
		ln.Close()
	}

	// The server keeps a tool-cache volume per repository; the ones this
	// run made go with the test.
	toolcaches := func() map[string]bool {
		out, _ := exec.Command("docker", "volume", "ls", "-q", "--filter", "label=shithub-actions.toolcache").Output()
		m := map[string]bool{}
		for _, v := range strings.Fields(string(out)) {
			m[v] = true
		}
		return m
	}
	before := toolcaches()
	t.Cleanup(func() {
		for v := range toolcaches() {
			if !before[v] {
				exec.Command("docker", "volume", "rm", v).Run()
			}
		}
	})

	blocks := readmeQuickstart(t)
	if strings.TrimSpace(blocks[0]) != quickstartBuild {
		t.Fatalf("the Quickstart's first block is %q; the test knows how to stand in for %q", blocks[0], quickstartBuild)
	}
	home := t.TempDir()
	bin := filepath.Join(home, "ci", "shithub-actions")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	script := "set -eo pipefail\n" + strings.Join(blocks[1:], "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	if h := os.Getenv("DOCKER_HOST"); h != "" { // where the engine is: the machine's, not the Quickstart's
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	serveLog, _ := os.ReadFile(filepath.Join(home, "ci", "serve.log"))
	t.Cleanup(func() {
		// The server got SIGTERM from the last block; whatever is left of
		// the process group goes now.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	if err != nil {
		t.Fatalf("the Quickstart failed: %v\n%s\nserve.log:\n%s", err, out.String(), serveLog)
	}
	got := out.String()
	t.Logf("output:\n%s", got)

	// The answers the README shows: the cancel's JSON (the comment after
	// the curl that prints it), the re-run's new run, the feed.
	want := regexp.MustCompile(`(?m)^# (\{"job_id": 1, .*\})$`).FindStringSubmatch(blocks[2])
	if want == nil {
		t.Fatal("the Quickstart no longer shows the cancel's answer")
	}
	// The API indents its JSON and the README shows it on one line: both
	// are compared without white space.
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
	for _, w := range []string{want[1], `"run_id": 2`, `"parent_run_id": 1`, "<feed", "building "} {
		if !strings.Contains(squeeze(got), squeeze(w)) {
			t.Errorf("the Quickstart's output lacks %q", w)
		}
	}
	// kill %1 stopped the server: its process group empties within the
	// shutdown grace (the re-run was cancelled, so no job holds it up).
	deadline := time.Now().Add(45 * time.Second)
	for syscall.Kill(-cmd.Process.Pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if syscall.Kill(-cmd.Process.Pid, 0) == nil {
		serveLog, _ = os.ReadFile(filepath.Join(home, "ci", "serve.log"))
		t.Errorf("serve still runs 45 s after kill %%1:\n%s", serveLog)
	}
}
