// Package dockertest holds what the tests on a real Docker engine share:
// a busybox image built from the host's static busybox (there is no
// registry), and the check that an engine answers. Only tests import it;
// nothing here ends up in the binary.
package dockertest

import (
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Image is the busybox image BuildImage makes; the tests map runs-on
// labels to it.
const Image = "shithub-test-busybox:latest"

// applets are linked in the test image; the executor needs sh, tail,
// mktemp, cat and rm, the tests the rest.
var applets = []string{"sh", "tail", "mktemp", "cat", "rm", "chown",
	"echo", "sleep", "pwd", "mkdir", "env", "false", "true", "ls", "printf", "seq",
	"cp", "chmod", "grep", "ln", "mknod", "touch", "nc", "hostname", "timeout", "find", "sha256sum", "httpd", "wget"}

// RequireEngine skips the test without a docker engine, or fails it under CI.
func RequireEngine(tb testing.TB) {
	tb.Helper()
	out, err := exec.Command("docker", "version").CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true but the docker engine does not answer: %v\n%s", err, out)
	}
	tb.Skipf("no docker engine: %v", err)
}

// BuildImage imports a one-binary image from the host's static busybox,
// so the tests need no registry. Importing again is harmless.
func BuildImage(tb testing.TB) {
	tb.Helper()
	RequireEngine(tb)
	const busybox = "/bin/busybox"
	f, err := elf.Open(busybox)
	if err != nil {
		tb.Fatalf("need a static busybox (Debian: busybox-static): %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			tb.Fatalf("%s is dynamically linked; install busybox-static", busybox)
		}
	}
	f.Close()

	root := tb.TempDir()
	for _, d := range []string{"bin", "tmp", "workspace"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	data, err := os.ReadFile(busybox)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			tb.Fatal(err)
		}
	}
	tarCmd := exec.Command("tar", "-C", root, "-c", ".")
	importCmd := exec.Command("docker", "import", "--change", "ENV PATH=/bin", "-", Image)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	importCmd.Stdin = pipe
	if err := tarCmd.Start(); err != nil {
		tb.Fatal(err)
	}
	if out, err := importCmd.CombinedOutput(); err != nil {
		tb.Fatalf("docker import: %v\n%s", err, out)
	}
	if err := tarCmd.Wait(); err != nil {
		tb.Fatalf("tar: %v", err)
	}
}

// NodeDir makes a --node directory from this machine's /usr/bin/node
// and the libraries ldd names, with bin/node a wrapper that starts it
// through its own dynamic loader: the test image has no libc.
func NodeDir(tb testing.TB, containerNode string) string {
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

// ActionMirrors turns each OWNER/REPO directory under actions into git repositories
// tagged v1 in a file:// mirrors directory.
func ActionMirrors(tb testing.TB, actions string) string {
	tb.Helper()
	mirrors := tb.TempDir()
	owners, _ := os.ReadDir(actions)
	for _, o := range owners {
		repos, _ := os.ReadDir(filepath.Join(actions, o.Name()))
		for _, r := range repos {
			files := map[string]string{}
			src := filepath.Join(actions, o.Name(), r.Name())
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
			for name, content := range files {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					tb.Fatal(err)
				}
			}
			git(tb, dir, "init", "-q", "-b", "main")
			git(tb, dir, "add", "-A")
			git(tb, dir, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "commit")
			git(tb, dir, "tag", "v1")
		}
	}
	return mirrors
}

// ServiceImage is an image for service containers: busybox httpd on port
// 80 (BuildServiceImage).
const ServiceImage = "shithub-test-httpd:latest"

// BuildServiceImage derives from the test image one whose command serves
// HTTP on port 80 in the foreground: a service container.
func BuildServiceImage(t testing.TB) {
	t.Helper()
	name := "shithub-test-httpd-build-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if out, err := exec.Command("docker", "run", "--name", name, "--entrypoint", "sh", Image,
		"-c", "echo hello-from-web > /index.txt").CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	defer exec.Command("docker", "rm", "-f", name).Run()
	if out, err := exec.Command("docker", "commit", "--change", `ENTRYPOINT ["httpd"]`,
		"--change", `CMD ["-f", "-p", "80", "-h", "/"]`, name, ServiceImage).CombinedOutput(); err != nil {
		t.Fatalf("docker commit: %v\n%s", err, out)
	}
}

// Percentiles returns the p50 and p99 of ds (nearest rank).
func Percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p int) time.Duration { return s[max(0, (p*len(s)+99)/100-1)] }
	return rank(50), rank(99)
}

func RoundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// git runs git in dir with no configuration of the user's.
func git(tb testing.TB, dir string, args ...string) {
	tb.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// DebianImage is the Debian image .ci/debian-image builds from Debian's
// packages (git, curl, node, python3, wget, jq, zstd): the tests that need
// real clients in a job run in it. Without it the test is skipped, or
// fails when SHITHUB_REQUIRE_DEBIAN=1 (as .ci/run sets, after building it).
func DebianImage(tb testing.TB) string {
	tb.Helper()
	RequireEngine(tb)
	script := filepath.Join(repoRoot(tb), ".ci", "debian-image")
	out, err := exec.Command(script, "--tag").Output()
	if err != nil {
		tb.Fatalf("%s --tag: %v", script, err)
	}
	tag := strings.TrimSpace(string(out))
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", tag).CombinedOutput(); err != nil {
		msg := "no Debian test image " + tag + " (build it with .ci/debian-image): " + strings.TrimSpace(string(out))
		if os.Getenv("SHITHUB_REQUIRE_DEBIAN") == "1" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return tag
}

// repoRoot is the directory of the root module's go.mod, above the test's
// working directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module shithub-actions\n") {
			return d
		}
		if filepath.Dir(d) == d {
			tb.Fatalf("no shithub-actions go.mod above %s", dir)
		}
	}
}
