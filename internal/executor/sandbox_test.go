// The executor's sandbox for untrusted jobs (issue 17), without an engine:
// the claim's trust bit, the argv of the tool cache, of Docker actions and
// their builds, image references, and the args splitter.

package executor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shithub-actions/internal/protocol"
)

// TestToolCacheScoping: trusted jobs mount their repository's tool cache,
// one volume per repository; an untrusted job mounts a volume of its own,
// labelled as the job's, seeded from its repository's through the engine,
// and removed with the job.
func TestToolCacheScoping(t *testing.T) {
	t.Parallel()
	mount := func(fe fakeEngine, t *testing.T) string {
		for _, c := range fe.commands(t, "create") {
			if i := slices.Index(c.Args, "--entrypoint"); i > 0 && c.Args[i+1] == "tail" {
				for k, a := range c.Args {
					if a == "-v" && strings.HasSuffix(c.Args[k+1], ":"+containerToolCache) {
						return strings.TrimSuffix(c.Args[k+1], ":"+containerToolCache)
					}
				}
			}
		}
		return ""
	}
	run := func(job *protocol.Job) (fakeEngine, *Executor) {
		src := newFakeSource()
		ex, fe := newTestExecutor(t, src)
		os.MkdirAll(filepath.Join(fe.dir, "fs", "from"), 0o755)
		fe.set(t, "fs/from/go-1.22-x64.complete", "")
		ex.runJob(job)
		if got := src.jobConclusion(job.JobID); got != "success" {
			t.Fatalf("job %d = %q; setup log:\n%s", job.JobID, got, src.log(t, stepID(job, 0)))
		}
		return fe, ex
	}
	a := testJob(61, "echo a")
	feA, ex := run(a)
	b := testJob(62, "echo b")
	b.RepoID, b.Repo = 4, "alice/other"
	feB, _ := run(b)
	a2 := testJob(63, "echo a again")
	feA2, _ := run(a2)
	volA, volB, volA2 := mount(feA, t), mount(feB, t), mount(feA2, t)
	if volA == "" || volA != volA2 || volA != ex.repoToolCache(a) || volB == volA {
		t.Errorf("tool caches: repo A %q then %q, repo B %q: want one volume per repository", volA, volA2, volB)
	}

	pr := testJob(64, "echo pr")
	pr.Untrusted = true
	fe, _ := run(pr)
	own := "shithub-actions-test-64-toolcache"
	if got := mount(fe, t); got != own {
		t.Errorf("the pull request's job mounts %q, want its own %q", got, own)
	}
	var calls [][]string
	for _, c := range fe.calls(t) {
		calls = append(calls, c.Args)
	}
	labels := []string{"--label", "shithub-actions.instance=test", "--label", "shithub-actions.run=7", "--label", "shithub-actions.job=64"}
	for _, want := range [][]string{
		append(append([]string{"volume", "create"}, labels...), own),
		append(append([]string{"create", "--name", own + "-seed"}, labels...), "--network", "none",
			"-v", ex.repoToolCache(pr)+":/from:ro", "--entrypoint", "true", "--", "catthehacker/ubuntu:act-latest"),
		{"cp", own + "-seed:/from/.", "-"},
		{"cp", "-a", "-", "shithub-actions-test-64:" + containerToolCache},
		{"rm", "-f", own + "-seed"},
		{"volume", "rm", "-f", own},
	} {
		if !slices.ContainsFunc(calls, func(c []string) bool { return slices.Equal(c, want) }) {
			t.Errorf("no docker call %q in\n%q", want, calls)
		}
	}
	if b, err := os.ReadFile(filepath.Join(fe.dir, "cpin-shithub-actions-test-64")); err != nil || !strings.Contains(string(b), "go-1.22-x64.complete") {
		t.Errorf("the seed copied %q, %v; want the repository's cache", b, err)
	}
	if strings.Contains(strings.Join(slices.Concat(calls...), " "), "volume rm -f "+ex.repoToolCache(pr)) {
		t.Errorf("the repository's tool cache was removed")
	}
}

// TestDockerActionArgv: a docker:// action runs under the job container's
// sandbox, with the configured pull policy, its entrypoint input and its
// args split as a shell would; its file commands are in a 0700 directory
// of WorkDir, gone after the job; an image on a loopback registry never
// reaches docker.
func TestDockerActionArgv(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	ex.cfg.Pull = "never"
	job := testJob(65)
	job.Contexts = map[string]any{}
	job.Steps = append(job.Steps,
		protocol.Step{ID: 6510, Number: 3, Kind: "uses", Name: "d", Uses: "docker://alpine:3",
			With: map[string]string{"entrypoint": "/bin/sh", "args": `-c 'echo "$1"' x "two three"`}},
		protocol.Step{ID: 6511, Number: 4, Kind: "uses", Name: "loop", Uses: "docker://127.0.0.1:5000/x:1", If: "always()"},
	)
	ex.runJob(job)
	var run []string
	for _, c := range fe.commands(t, "run") {
		if slices.Contains(c.Args, "127.0.0.1:5000/x:1") {
			t.Errorf("docker was asked for the loopback registry's image: %q", c.Args)
		}
		run = c.Args
	}
	if run == nil {
		t.Fatalf("no docker run; step log:\n%s", src.log(t, 6510))
	}
	j := &execJob{ex: ex, job: job, name: "shithub-actions-test-65"}
	for _, want := range [][]string{
		{"--init"},
		{"--network", "container:shithub-actions-test-65"},
		j.sandboxArgs(),
		{"--pull=never"},
		{"--entrypoint", "/bin/sh", "--", "alpine:3", "-c", `echo "$1"`, "x", "two three"},
	} {
		if !containsRun(run, want) {
			t.Errorf("docker run %q lacks %q", run, want)
		}
	}
	mounts, _ := os.ReadFile(filepath.Join(fe.dir, "run-mounts"))
	lines := strings.Fields(string(mounts))
	if len(lines) != 2 || filepath.Dir(filepath.Dir(lines[0])) != ex.cfg.WorkDir || lines[1] != "700" {
		t.Errorf("host directories mounted (path, parent's mode): %q; want one under WorkDir %s in a 0700 parent", mounts, ex.cfg.WorkDir)
	}
	if l := src.log(t, 6511); !strings.Contains(l, `image "127.0.0.1:5000/x:1" is refused: its registry 127.0.0.1:5000 is this machine`) {
		t.Errorf("loopback registry step log: %q", l)
	}
	if entries, _ := os.ReadDir(ex.cfg.WorkDir); len(entries) != 0 {
		t.Errorf("left in WorkDir: %v", entries)
	}
}

// containsRun reports whether want appears in args as a contiguous run.
func containsRun(args, want []string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// TestDockerActionBuild: a local Docker action is built on the job's
// network with its memory limit and no build cache, labelled as the job's,
// and removed when the job ends; a Dockerfile reached through a symbolic
// link is refused before docker build.
func TestDockerActionBuild(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	for _, d := range []string{"act", "evil/sub", "evil2"} {
		os.MkdirAll(filepath.Join(fe.dir, "fs", "workspace", d), 0o755)
	}
	yml := "runs:\n  using: docker\n  image: Dockerfile\n"
	fe.set(t, "fs/workspace/act/action.yml", yml)
	fe.set(t, "fs/workspace/act/Dockerfile", "FROM scratch\n")
	fe.set(t, "fs/workspace/evil/action.yml", "runs:\n  using: docker\n  image: sub/Dockerfile\n")
	fe.set(t, "fs/workspace/evil2/action.yml", yml)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("HOST SECRET\n"), 0o644)
	os.Symlink(secret, filepath.Join(fe.dir, "fs", "workspace", "evil2", "Dockerfile"))
	os.Remove(filepath.Join(fe.dir, "fs", "workspace", "evil", "sub"))
	os.Symlink(filepath.Dir(secret), filepath.Join(fe.dir, "fs", "workspace", "evil", "sub"))
	job := testJob(66)
	job.Contexts = map[string]any{}
	job.Steps = append(job.Steps,
		protocol.Step{ID: 6610, Number: 3, Kind: "uses", Name: "act", Uses: "./act"},
		protocol.Step{ID: 6611, Number: 4, Kind: "uses", Name: "evil", Uses: "./evil", If: "always()"},
		protocol.Step{ID: 6612, Number: 5, Kind: "uses", Name: "evil2", Uses: "./evil2", If: "always()"},
	)
	ex.runJob(job)
	builds := fe.commands(t, "build")
	if len(builds) != 1 {
		t.Fatalf("docker builds %q, want one; logs:\n%s\n%s", builds, src.log(t, 6610), src.log(t, 6611))
	}
	b := builds[0].Args
	tag := b[slices.Index(b, "-t")+1]
	for _, want := range [][]string{
		{"--pull=false", "--no-cache"},
		{"--network", "shithub-actions-test-66", "--memory", "2g"},
		{"--label", labelActionImage + "=test", "--label", LabelJob + "=66"},
	} {
		if !containsRun(b, want) {
			t.Errorf("docker build %q lacks %q", b, want)
		}
	}
	if !strings.HasPrefix(tag, actionImageRepo+":job66-") {
		t.Errorf("the local action's tag %q is not the job's", tag)
	}
	if !slices.ContainsFunc(fe.commands(t, "image"), func(c dockerCall) bool { return slices.Equal(c.Args, []string{"image", "rm", "-f", tag}) }) {
		t.Errorf("the job's image %s was not removed: %q", tag, fe.commands(t, "image"))
	}
	for id, want := range map[int64]string{6611: "sub is a symbolic link", 6612: "Dockerfile is a symbolic link"} {
		l := src.log(t, id)
		if !strings.Contains(l, want) || strings.Contains(l, "HOST SECRET") {
			t.Errorf("step %d log %q, want %q and not the host file", id, l, want)
		}
	}
}

func TestImageRegistryRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		image string
		want  string // "" or a part of the reason
	}{
		{"busybox", ""},
		{"library/busybox:1", ""},
		{"alice/tool:1", ""},
		{"ghcr.io/acme/tool:1", ""},
		{"registry.example.com:5000/x", ""},
		{"8.8.8.8/x", ""},
		{"[2001:db8::1]:5000/x", ""},
		{"127.0.0.1:5000/x:1", "this machine"},
		{"127.1:5000/x", "this machine"},
		{"0x7f.1/x", "this machine"},
		{"2130706433:80/x", "this machine"},
		{"0177.0.0.1/x", "this machine"},
		{"localhost:5000/x", "this machine"},
		{"LOCALHOST/x", "this machine"},
		{"registry.localhost/x", "this machine"},
		{"localhost./x", "this machine"},
		{"[::1]:5000/x", "this machine"},
		{"[::ffff:127.0.0.1]/x", "this machine"},
		{"0.0.0.0:5000/x", "this machine"},
		{"10.1.2.3/x", "private"},
		{"10.1/x", "private"},
		{"172.16.0.1:443/x", "private"},
		{"172.31.255.255/x", "private"},
		{"172.32.0.1/x", ""},
		{"192.168.1.1/x", "private"},
		{"169.254.169.254/latest", "private"},
		{"[fe80::1%25eth0]:5000/x", "private"},
		{"[fd00::1]/x", "private"},
	} {
		got := imageRegistryRefused(tc.image)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("imageRegistryRefused(%q) = %q, want %q", tc.image, got, tc.want)
		}
	}
}

func TestSplitShellWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"a b  c", []string{"a", "b", "c"}, false},
		{`"a b" 'c d'`, []string{"a b", "c d"}, false},
		{`x"a b"y`, []string{"xa by"}, false},
		{`'it''s'`, []string{"its"}, false},
		{`"say \"hi\"" 'a\b'`, []string{`say "hi"`, `a\b`}, false},
		{`"\a \\ \$"`, []string{`\a \ $`}, false},
		{`a\ b c\\`, []string{"a b", `c\`}, false},
		{`""`, []string{""}, false},
		{`'' x`, []string{"", "x"}, false},
		{"a\tb\nc", []string{"a", "b", "c"}, false},
		{"a\\\nb", []string{"ab"}, false},
		{`--flag="$HOME"`, []string{"--flag=$HOME"}, false},
		{`"unterminated`, nil, true},
		{`'unterminated`, nil, true},
		{`trailing\`, []string{"trailing"}, false},
	} {
		got, err := splitShellWords(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("splitShellWords(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzSplitShellWords: the args input is a workflow's (untrusted) text:
// splitting never panics, and words quoted back and split again come back
// the same.
func FuzzSplitShellWords(f *testing.F) {
	for _, s := range []string{`a "b c" 'd e'`, `x\ y`, `"\"" '\'`, "", `"`, "a\\\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitShellWords(s)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := splitShellWords(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q split to %q; quoted back and split: %q, %v", s, words, again, err)
		}
	})
}

func TestNoSymlinkUnder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "Dockerfile"), []byte("FROM x\n"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	os.Symlink("sub", filepath.Join(dir, "linkdir"))
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	for _, tc := range []struct{ rel, want string }{
		{"Dockerfile", ""},
		{"sub/Dockerfile", ""},
		{"link", "link is a symbolic link"},
		{"linkdir/Dockerfile", "linkdir is a symbolic link"},
		{"adir", "not a regular file"},
		{"missing", "file does not exist"},
		{"Dockerfile/x", "file does not exist"},
	} {
		err := noSymlinkUnder(dir, tc.rel)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("noSymlinkUnder(%q) = %v, want %q", tc.rel, err, tc.want)
		}
	}
}

// TestCompositeActionPath: a composite action's run steps see
// $GITHUB_ACTION_PATH, as on GitHub.
func TestCompositeActionPath(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	os.MkdirAll(filepath.Join(fe.dir, "fs", "workspace", "comp"), 0o755)
	fe.set(t, "fs/workspace/comp/action.yml", "runs:\n  using: composite\n  steps:\n    - run: env GITHUB_ACTION_PATH\n      shell: sh\n")
	job := testJob(67)
	job.Contexts = map[string]any{}
	job.Steps = append(job.Steps, protocol.Step{ID: 6710, Number: 3, Kind: "uses", Name: "comp", Uses: "./comp"})
	ex.runJob(job)
	if l := src.log(t, 6710); !strings.Contains(l, "GITHUB_ACTION_PATH=/workspace/comp") {
		t.Errorf("composite step log %q lacks GITHUB_ACTION_PATH=/workspace/comp", l)
	}
}
