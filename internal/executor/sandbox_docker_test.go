//go:build docker

// An attacker's pull request against the executor's sandbox (issue 17), on
// a real engine: the tool cache, Docker actions and their builds, and the
// images a workflow may name.

package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/protocol"
)

// sandboxAction makes, from a run step, a local Docker action in the
// workspace at DIR whose entrypoint is ENTRY (a shell script).
func sandboxAction(dir, dockerfile, entry string) string {
	return fmt.Sprintf(`mkdir -p %[1]s
cat > %[1]s/action.yml <<'EOF'
runs:
  using: docker
  image: Dockerfile
EOF
cat > %[1]s/entry.sh <<'EOF'
%[3]s
EOF
%[2]s`, dir, dockerfile, entry)
}

// TestDockerActionSandbox runs a pull request's Docker action that probes
// its sandbox: the same capabilities and no-new-privileges as the job
// container, no mknod, --init, the job's limits; its file commands are in
// a directory no other user of the host can enter; a Dockerfile that is a
// symbolic link to a host file is refused without showing the file; the
// images the job built go with it.
func TestDockerActionSandbox(t *testing.T) {
	dockertest.BuildImage(t)
	src := newFakeSource()
	workDir := t.TempDir()
	inst := randomInstance("dockertest")
	ex := New(Config{
		Instance: inst, Images: map[string]string{"busybox": dockertest.Image}, Pull: "never",
		Memory: "300m", PidsLimit: 321, WorkDir: workDir, CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
	}, src, runnerTestLogger())
	t.Cleanup(func() {
		ex.RemoveStale(context.Background())
		removeToolCaches(inst)
	})
	secret := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(secret, []byte("HOST-SECRET-LINE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := `grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
echo "pid1: $(cat /proc/1/comm)"
if mknod /tmp/null c 1 3 2>/dev/null; then echo "mknod: worked"; else echo "mknod: refused"; fi
echo planted > /github/file_commands/planted
chmod 4755 /github/file_commands/planted
echo "said=yes" >> "$GITHUB_OUTPUT"
touch /workspace/probe-running
sleep 4`
	job := dockerJob(9501,
		sandboxAction("act", `printf 'FROM `+dockertest.Image+`\nCOPY entry.sh /entry.sh\nENTRYPOINT ["/bin/sh", "/entry.sh"]\n' > act/Dockerfile`, probe),
		sandboxAction("evil", "ln -s "+secret+" evil/Dockerfile", "echo never"),
		`grep -E '^(CapEff|NoNewPrivs)' /proc/self/status`)
	job.Untrusted = true
	job.Contexts = map[string]any{}
	job.Steps = append(job.Steps,
		protocol.Step{ID: 950110, Number: 6, Kind: "uses", Name: "act", Uses: "./act", StepKey: "act"},
		protocol.Step{ID: 950111, Number: 7, Kind: "uses", Name: "evil", Uses: "./evil", If: "always()"},
	)

	// While the action runs: what docker says of its container.
	type inspected struct {
		HostConfig struct {
			CapDrop, CapAdd, SecurityOpt []string
			Init                         *bool
			Memory                       int64
			PidsLimit                    *int64
			NetworkMode                  string
		}
		Mounts []struct{ Source, Destination string }
	}
	var got atomic.Pointer[inspected]
	var filesMode atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			out, err := exec.Command("docker", "ps", "-q", "--filter", "label="+LabelInstance+"="+inst,
				"--filter", "name=step950110").Output()
			ids := strings.Fields(string(out))
			if err != nil || len(ids) == 0 {
				continue
			}
			b, err := exec.Command("docker", "inspect", ids[0]).Output()
			var v []inspected
			if err != nil || json.Unmarshal(b, &v) != nil || len(v) != 1 {
				continue
			}
			for _, m := range v[0].Mounts {
				if m.Destination == "/github/file_commands" {
					if fi, err := os.Stat(filepath.Dir(m.Source)); err == nil {
						filesMode.Store(fmt.Sprintf("%s %o", filepath.Dir(filepath.Dir(m.Source)), fi.Mode().Perm()))
					}
				}
			}
			got.Store(&v[0])
			return
		}
	}()
	ex.runJob(job)
	close(stop)
	<-done

	logs := func(i int) string { return src.log(t, stepID(job, i)) }
	act, evil, jobProbe := logs(5), logs(6), logs(4)
	if !strings.Contains(act, "said=yes") && src.jobConclusion(9501) == "" {
		t.Fatalf("the action did not run:\n%s", act)
	}
	capEff := func(log string) string {
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "CapEff:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "CapEff:"))
			}
		}
		return "none"
	}
	if capEff(act) != capEff(jobProbe) || capEff(act) == "none" {
		t.Errorf("the action's capabilities %s, the job container's %s: want the same\naction log:\n%s", capEff(act), capEff(jobProbe), act)
	}
	for _, w := range []string{"NoNewPrivs:\t1", "mknod: refused", "pid1: docker-init"} {
		if !strings.Contains(act, w) {
			t.Errorf("the action's log lacks %q:\n%s", w, act)
		}
	}
	if in := got.Load(); in == nil {
		t.Errorf("never saw the action's container running")
	} else {
		h := in.HostConfig
		if strings.Join(h.CapDrop, ",") != "ALL" || len(h.CapAdd) != len(jobCapabilities) || strings.Join(h.SecurityOpt, ",") != "no-new-privileges" ||
			h.Init == nil || !*h.Init || h.Memory != 300<<20 || h.PidsLimit == nil || *h.PidsLimit != 321 || !strings.HasPrefix(h.NetworkMode, "container:") {
			t.Errorf("the action's container: %+v", h)
		}
	}
	if m, _ := filesMode.Load().(string); m != workDir+" 700" {
		t.Errorf("the file commands' parent directory (its parent, its mode) = %q, want %q", m, workDir+" 700")
	}
	for _, w := range []string{"./evil: refusing to build: Dockerfile is a symbolic link"} {
		if !strings.Contains(evil, w) {
			t.Errorf("the symlinked Dockerfile's log lacks %q:\n%s", w, evil)
		}
	}
	if strings.Contains(evil, "HOST-SECRET-LINE") {
		t.Errorf("the host file's content reached the log:\n%s", evil)
	}
	if out, _ := exec.Command("docker", "images", "-q", "--filter", "label="+labelActionImage+"="+inst).Output(); len(strings.Fields(string(out))) > 0 {
		t.Errorf("the job's action images are still there: %s", out)
	}
	if entries, _ := os.ReadDir(workDir); len(entries) != 0 {
		t.Errorf("left in WorkDir: %v", entries)
	}
}

// TestDockerActionImagePolicy: docker:// obeys --pull never and
// --allow-images, and an image on a registry of this host is refused
// before the engine could connect to it.
func TestDockerActionImagePolicy(t *testing.T) {
	dockertest.BuildImage(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	src := newFakeSource()
	ex := New(Config{
		Instance: randomInstance("dockertest"), Images: map[string]string{"busybox": dockertest.Image}, Pull: "never",
		AllowImages: []string{dockertest.Image, "127.0.0.1:*/**", "example.invalid/**"},
		WorkDir:     t.TempDir(), CancelPoll: 100 * time.Millisecond, PollInterval: time.Hour,
	}, src, runnerTestLogger())
	t.Cleanup(func() {
		ex.RemoveStale(context.Background())
		removeToolCaches(ex.cfg.Instance)
	})
	job := dockerJob(9601)
	job.Contexts = map[string]any{}
	local := "docker://" + ln.Addr().String() + "/x:1"
	job.Steps = append(job.Steps,
		protocol.Step{ID: 960110, Number: 3, Kind: "uses", Name: "local", Uses: local, If: "always()"},
		protocol.Step{ID: 960111, Number: 4, Kind: "uses", Name: "absent", Uses: "docker://example.invalid/x:1", If: "always()"},
		protocol.Step{ID: 960112, Number: 5, Kind: "uses", Name: "other", Uses: "docker://busybox:1", If: "always()"},
		protocol.Step{ID: 960113, Number: 6, Kind: "uses", Name: "ok", Uses: "docker://" + dockertest.Image, If: "always()",
			With: map[string]string{"entrypoint": "/bin/sh", "args": `-c 'echo "[$1][$2]"' x "two three" 'four five'`}},
	)
	ex.runJob(job)
	for i, w := range map[int]string{
		2: "is refused: its registry " + ln.Addr().String() + " is this machine",
		3: "No such image",
		4: `image "busybox:1" is not allowed here: --allow-images is`,
		5: "[two three][four five]",
	} {
		if l := src.log(t, stepID(job, i)); !strings.Contains(l, w) {
			t.Errorf("step %d log lacks %q:\n%s", i, w, l)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the loopback registry got %d connections", n)
	}
}

// removeToolCaches removes the repositories' tool caches an instance made.
func removeToolCaches(instance string) {
	out, _ := exec.Command("docker", "volume", "ls", "-q", "--filter", "label="+LabelToolCache+"="+instance).Output()
	if vols := strings.Fields(string(out)); len(vols) > 0 {
		exec.Command("docker", append([]string{"volume", "rm", "-f"}, vols...)...).Run()
	}
}
