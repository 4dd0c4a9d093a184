//go:build fault

// Fault tests that need root (they mount a filesystem): go test -tags fault
// -run Fault. CI runs them in their own step.

package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// faultServe is a serve process (the test binary) on db, with no job pool:
// the test plays the runner.
type faultServe struct {
	t    *testing.T
	db   string
	base string
	cmd  *exec.Cmd
	logf string
}

func startFaultServe(t *testing.T, db string, extra ...string) *faultServe {
	t.Helper()
	exe, _ := os.Executable()
	addr := faultAddr(t)
	fs := &faultServe{t: t, db: db, base: "http://" + addr, logf: filepath.Join(t.TempDir(), "serve.log")}
	logf, err := os.Create(fs.logf)
	if err != nil {
		t.Fatal(err)
	}
	fs.cmd = exec.Command(exe, append([]string{"--db", db, "serve", "--addr", addr, "--runners", "0"}, extra...)...)
	fs.cmd.Env = append(os.Environ(), "SHITHUB_ACTIONS_TEST_MAIN=1")
	fs.cmd.Stdout, fs.cmd.Stderr = logf, logf
	if err := fs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.cmd.Process.Kill(); fs.cmd.Wait(); logf.Close() })
	for range 200 {
		if res, err := http.Get(fs.base + "/healthz"); err == nil {
			res.Body.Close()
			return fs
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve did not come up: %s", fs.log())
	return nil
}

func (fs *faultServe) log() string {
	b, _ := os.ReadFile(fs.logf)
	return string(b)
}

// call sends a request and returns the status and body.
func (fs *faultServe) call(method, path, auth, body string) (int, string) {
	fs.t.Helper()
	req, _ := http.NewRequest(method, fs.base+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fs.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// mountTmpfs mounts a tmpfs of size bytes; outside CI, without the right
// to mount, the test is skipped, as a test needing an engine is.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but mounting a tmpfs failed: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (root needed): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestFaultDiskFull puts the database on a small tmpfs and fills it: writes
// answer 503 with a clear message, reads keep working, nothing corrupts,
// and writes work again, with no restart, once space returns.
func TestFaultDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, 6<<20)
	db := filepath.Join(mnt, "ci.db")
	gitFn, sha := newGitRepo(t, map[string]string{".shithub/workflows/ci.yml": testWorkflow})
	for _, args := range [][]string{{"user", "create", "alice"}, {"repo", "create", "alice/pub", "--git", gitFn}} {
		if code, out, errOut := cliRun(t, db, "", args...); code != 0 {
			t.Fatalf("%v: %s %s", args, out, errOut)
		}
	}
	_, out, _ := cliRun(t, db, "", "token", "create", "alice", "--scopes", "repo:read,repo:write")
	tok := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	_, out, _ = cliRun(t, db, "", "runner", "register", "r1", "--labels", "ubuntu-latest")
	rtok := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	srv := startFaultServe(t, db)

	push := func(ref string) (int, string) {
		return srv.call("POST", "/api/v1/repos/alice/pub/actions/events/push", tok,
			fmt.Sprintf(`{"ref":%q,"before":"0000000000000000000000000000000000000000","after":%q}`, ref, sha))
	}
	if code, body := push("refs/heads/main"); code != 201 {
		t.Fatalf("push: %d %s", code, body)
	}
	code, body := srv.call("POST", "/api/v1/runners/heartbeat", rtok, `{"labels":["ubuntu-latest"],"capacity":1}`)
	if code != 200 {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	var job struct {
		JobID int64 `json:"job_id"`
		Steps []struct {
			ID int64 `json:"id"`
		} `json:"steps"`
	}
	decodeInto(t, body, &job)

	// Fill the filesystem, then stream log chunks until a write is refused.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			break
		}
	}
	f.Close()
	chunk := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("log line of a busy job\n", 20000)))
	var full string
	seq := 0
	for seq < 200 && full == "" {
		seq++
		code, body := srv.call("POST", fmt.Sprintf("/api/v1/jobs/%d/logs", job.JobID), rtok,
			fmt.Sprintf(`{"step_id":%d,"seq":%d,"data":%q}`, job.Steps[0].ID, seq, chunk))
		switch code {
		case 202:
		case 503:
			full = body
		default:
			t.Fatalf("log append %d on a full disk: status %d %s, want 202 or 503", seq, code, body)
		}
	}
	if !strings.Contains(full, "disk holding the database is full") {
		t.Fatalf("no write was refused with a clear message after %d appends; last answer %q; serve log:\n%s", seq, full, srv.log())
	}
	// Other writes are refused the same way; reads work.
	if code, body := push("refs/heads/other"); code != 503 || !strings.Contains(body, "disk holding the database is full") {
		t.Errorf("push on a full disk: %d %s, want 503 saying the disk is full", code, body)
	}
	for _, p := range []string{"/api/v1/repos/alice/pub/actions/runs", "/alice/pub/actions", "/alice/pub/actions.atom",
		"/alice/pub/actions/runs/1", fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", job.JobID)} {
		if code, body := srv.call("GET", p, tok, ""); code != 200 {
			t.Errorf("GET %s on a full disk: %d %.200s, want 200", p, code, body)
		}
	}
	if code, body := srv.call("GET", "/healthz", "", ""); code != 503 || !strings.Contains(body, "full") {
		t.Errorf("GET /healthz on a full disk: %d %q, want 503 saying why", code, body)
	}

	// Space returns: writes work again without a restart.
	os.Remove(filler)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := push("refs/heads/after")
		if code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("push after space returned: %d %s; serve log:\n%s", code, body, srv.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	seq++
	if code, body := srv.call("POST", fmt.Sprintf("/api/v1/jobs/%d/logs", job.JobID), rtok,
		fmt.Sprintf(`{"step_id":%d,"seq":%d,"data":"YWdhaW4K"}`, job.Steps[0].ID, seq)); code != 202 {
		t.Fatalf("log append after space returned: %d %s", code, body)
	}
	if code, body := srv.call("GET", "/healthz", "", ""); code != 200 {
		t.Errorf("GET /healthz after space returned: %d %q", code, body)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.cmd.Wait()
	if code, out, errOut := cliRun(t, db, "", "check"); code != 0 {
		t.Fatalf("check after the disk filled: exit %d: %s %s", code, out, errOut)
	}
}

func faultAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func decodeInto(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
}
