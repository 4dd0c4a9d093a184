package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/store"
)

// TestMain lets the test binary stand in for the shithub-actions binary
// (git hooks call it) when SHITHUB_ACTIONS_TEST_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("SHITHUB_ACTIONS_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// cliRun runs the command line and returns its exit status and output.
func cliRun(t *testing.T, db, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"--db", db}, args...), strings.NewReader(stdin), &stdout, &stderr)
	code := exitCode(err, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCLI(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "cli.db")
	gitDir, _ := newGitRepo(t, map[string]string{".shithub/workflows/ci.yml": testWorkflow})
	emptyFile := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring of stdout, or of stderr when code != 0
	}{
		{"no command", nil, 2, "no command"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"user create", []string{"user", "create", "alice"}, 0, "created user alice"},
		{"user create bob", []string{"user", "create", "bob"}, 0, "created user bob"},
		{"duplicate user", []string{"user", "create", "alice"}, 2, "already exists"},
		{"serve, bad --trust-proxy", []string{"serve", "--trust-proxy", "10.0.0.0/8,not-an-address"}, 2, `want an address or CIDR, got "not-an-address"`},
		{"serve, bad --queue-timeout", []string{"serve", "--queue-timeout", "0s"}, 2, "--queue-timeout must be positive"},
		{"serve, bad --allow-images", []string{"serve", "--allow-images", ""}, 2, "empty pattern"},
		{"bad user name", []string{"user", "create", "-x"}, 2, "flag provided but not defined"},
		{"bad user name 2", []string{"user", "create", "a/b"}, 2, "bad user name"},
		{"reserved user name", []string{"user", "create", "api"}, 2, "bad user name"},
		{"user create, no name", []string{"user", "create"}, 2, "usage"},
		{"repo create", []string{"repo", "create", "alice/hello", "--git", gitDir}, 0, "hook post-receive --repo alice/hello"},
		{"repo create, flag first", []string{"repo", "create", "--private", "--git", gitDir, "alice/secret"}, 0, "created repository alice/secret"},
		{"duplicate repo", []string{"repo", "create", "alice/hello", "--git", gitDir}, 2, "already exists"},
		{"repo of unknown user", []string{"repo", "create", "zed/hello", "--git", gitDir}, 2, "unknown user"},
		{"repo without git", []string{"repo", "create", "alice/x"}, 2, "--git"},
		{"repo, not git", []string{"repo", "create", "alice/x", "--git", t.TempDir()}, 2, "not a git repository"},
		{"bad repo name", []string{"repo", "create", "alice", "--git", gitDir}, 2, "bad repository name"},
		{"grant", []string{"repo", "grant", "alice/hello", "bob", "write"}, 0, "granted write"},
		{"grant bad perm", []string{"repo", "grant", "alice/hello", "bob", "root"}, 2, "bad permission"},
		{"grant unknown repo", []string{"repo", "grant", "alice/nope", "bob", "read"}, 2, "unknown repository"},
		{"token create", []string{"token", "create", "bob", "--scopes", "repo:read,repo:write", "--expires", "720h", "--name", "laptop"}, 0, "shown once"},
		{"token bad scope", []string{"token", "create", "bob", "--scopes", "admin"}, 2, "bad scope"},
		{"token no scope", []string{"token", "create", "bob"}, 2, "bad scope"},
		{"token bad expiry", []string{"token", "create", "bob", "--scopes", "repo:read", "--expires", "soon"}, 2, "invalid value"},
		{"token unknown user", []string{"token", "create", "zed", "--scopes", "repo:read"}, 2, "unknown user"},
		{"token list", []string{"token", "list", "bob"}, 0, "laptop"},
		{"token revoke", []string{"token", "revoke", "1"}, 0, "revoked token 1"},
		{"token revoke again", []string{"token", "revoke", "1"}, 0, "revoked token 1"},
		{"token revoke unknown", []string{"token", "revoke", "99"}, 2, "unknown token"},
		{"token revoke bad id", []string{"token", "revoke", "x"}, 2, "bad token id"},
		{"token list shows revoked", []string{"token", "list", "bob"}, 0, "revoked"},
		{"runner register", []string{"runner", "register", "box1", "--labels", "ubuntu-latest,x64"}, 0, "shown once"},
		{"runner duplicate", []string{"runner", "register", "box1"}, 2, "already exists"},
		{"runner bad label", []string{"runner", "register", "box2", "--labels", "a b"}, 2, "bad label"},
		{"runner list", []string{"runner", "list"}, 0, "ubuntu-latest,x64"},
		{"runner revoke", []string{"runner", "revoke", "box1"}, 0, "revoked runner box1; 0 running job(s) failed"},
		{"runner list shows it revoked", []string{"runner", "list"}, 0, "0       revoked "},
		{"runner revoke unknown", []string{"runner", "revoke", "box9"}, 2, `unknown runner "box9"`},
		{"runner register a revoked name", []string{"runner", "register", "box1"}, 2, "already exists"},
		{"hook, unknown repo", []string{"hook", "post-receive", "--repo", "alice/nope"}, 2, "unknown repository"},
		{"serve, bad base url", []string{"serve", "--base-url", "ftp://x"}, 2, "bad --base-url"},
		{"serve, missing --metrics-token-file", []string{"serve", "--metrics-token-file", filepath.Join(t.TempDir(), "nope")}, 2, "--metrics-token-file: open"},
		{"serve, empty --metrics-token-file", []string{"serve", "--metrics-token-file", emptyFile}, 2, "is empty"},
		{"serve, a directory as --metrics-token-file", []string{"serve", "--metrics-token-file", t.TempDir()}, 2, "not a regular file"},
		{"serve, both metrics token flags", []string{"serve", "--metrics-token", "x", "--metrics-token-file", emptyFile}, 2, "give one"},
	}
	for _, tt := range tests { // in order: later cases build on earlier ones
		code, stdout, stderr := cliRun(t, db, "", tt.args...)
		out := stdout
		if code != 0 {
			out = stderr
			if strings.Count(stderr, "\n") != 1 {
				t.Errorf("%s: stderr is not one line: %q", tt.name, stderr)
			}
		}
		if code != tt.code || !strings.Contains(out, tt.stdout) {
			t.Errorf("%s: shithub-actions %s: exit %d, output %q; want exit %d with %q", tt.name, strings.Join(tt.args, " "), code, out, tt.code, tt.stdout)
		}
	}
	// Secrets: the last line of stdout, in the documented form, stored hashed.
	_, stdout, _ := cliRun(t, db, "", "token", "create", "alice", "--scopes", "repo:read")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	secret := lines[len(lines)-1]
	if len(secret) != len(store.PatPrefix)+32 || !strings.HasPrefix(secret, store.PatPrefix) || strings.Trim(secret[len(store.PatPrefix):], store.Base62) != "" {
		t.Errorf("token create's last line = %q, want shithub_pat_ and 32 base62 characters", secret)
	}
	st, err := openStore(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	st.DBForTest().QueryRow("SELECT COUNT(*) FROM tokens WHERE hash = ? OR CAST(hash AS TEXT) = ?", secret, secret).Scan(&n)
	if n != 0 {
		t.Errorf("a token's secret is stored in clear")
	}
	if _, _, err := st.TokenBySecret(context.Background(), secret); err != nil {
		t.Errorf("the printed token does not authenticate: %v", err)
	}
}

// TestGitPushHook installs the post-receive hook the way repo create says
// and pushes with git: the push starts its run, once.
func TestGitPushHook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "hook.db")
	bare := filepath.Join(dir, "hello.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", bare).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	cliRun(t, db, "", "user", "create", "alice")
	code, stdout, stderr := cliRun(t, db, "", "repo", "create", "alice/hello", "--git", bare)
	if code != 0 {
		t.Fatalf("repo create: %d %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	install := lines[len(lines)-1]
	// The test binary stands in for shithub-actions.
	exe, _ := os.Executable()
	hook := filepath.Join(bare, "hooks", "post-receive")
	if !strings.Contains(install, hook) {
		t.Fatalf("install line %q does not name %s", install, hook)
	}
	if out, err := exec.Command("sh", "-c", install).CombinedOutput(); err != nil {
		t.Fatalf("running the install line: %v %s", err, out)
	}
	script, _ := os.ReadFile(hook)
	if !strings.Contains(string(script), "hook post-receive --repo alice/hello") {
		t.Fatalf("hook = %q", script)
	}
	os.WriteFile(hook, []byte(fmt.Sprintf("#!/bin/sh\nSHITHUB_ACTIONS_TEST_MAIN=1 exec %s --db %s hook post-receive --repo alice/hello\n", exe, db)), 0o755)

	work, sha := newGitRepo(t, map[string]string{".shithub/workflows/ci.yml": testWorkflow})
	out := gitCmd(t, work, "push", "-q", bare, "main", "HEAD:refs/heads/dev", "HEAD:refs/tags/v1")
	if !strings.Contains(out, "CI #1 queued for main") {
		t.Errorf("push output = %q, want the hook's note of the queued run", out)
	}
	st, err := openStore(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	repo, _ := st.RepoByName(context.Background(), "alice", "hello")
	runs, total, _ := st.ListRuns(context.Background(), repo.ID, store.RunFilter{}, 1, 10)
	if total != 1 || runs[0].HeadSHA != sha || runs[0].HeadRef != "refs/heads/main" || runs[0].Actor != "alice" {
		t.Fatalf("runs after push = %d (%+v), want one of main at %s", total, runs, sha)
	}
	// The same push delivered again by hand (several lines at once).
	code, _, stderr = cliRun(t, db, git.ZeroSHA+" "+sha+" refs/heads/main\n"+git.ZeroSHA+" "+sha+" refs/heads/dev\n", "hook", "post-receive", "--repo", "alice/hello")
	if code != 0 {
		t.Fatalf("hook again: exit %d %s", code, stderr)
	}
	if _, total, _ = st.ListRuns(context.Background(), repo.ID, store.RunFilter{}, 1, 10); total != 1 {
		t.Errorf("runs after redelivery = %d, want 1", total)
	}
	code, _, stderr = cliRun(t, db, "garbage\n", "hook", "post-receive", "--repo", "alice/hello")
	if code != 2 || !strings.Contains(stderr, "bad post-receive line") {
		t.Errorf("hook with garbage: exit %d %q, want 2 and a clear line", code, stderr)
	}
}

func TestParseRunnerArgs(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	o, err := parseRunnerArgs([]string{"--server", "https://ci.example.com/", "--token", "tok",
		"--image", "alpine=alpine:3.20", "--image", "ubuntu-latest=ubuntu:22.04", "--capacity", "4",
		"--pull", "never", "--memory", "4g", "--cpus", "2", "--pids-limit", "99", "--stop-grace", "3s",
		"--allow-images", "ubuntu:*, ghcr.io/me/**", "--allow-images", "debian"},
		env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if o.server != "https://ci.example.com/" || o.token != "tok" || c.Workers != 4 || c.Pull != "never" ||
		c.Memory != "4g" || c.CPUs != "2" || c.PidsLimit != 99 || c.StopGrace != 3*time.Second ||
		c.PollInterval != time.Second || o.shutdownGrace != 30*time.Second {
		t.Errorf("options = %+v", o)
	}
	if c.Images["alpine"] != "alpine:3.20" || c.Images["ubuntu-latest"] != "ubuntu:22.04" || c.Images["debian-latest"] != "debian:bookworm" {
		t.Errorf("images = %v", c.Images)
	}
	if c.Labels != nil {
		t.Errorf("labels = %q, want the default (the images' labels)", c.Labels)
	}
	if want := []string{"ubuntu:*", "ghcr.io/me/**", "debian"}; !slices.Equal(c.AllowImages, want) {
		t.Errorf("allow-images = %q, want %q", c.AllowImages, want)
	}
	if c.Instance != runnerInstance("https://ci.example.com", "tok") || strings.Contains(c.Instance, "tok") {
		t.Errorf("instance = %q", c.Instance)
	}
	if runnerInstance("https://ci.example.com", "tok") == runnerInstance("https://ci.example.com", "other") {
		t.Error("two tokens, one instance id")
	}

	o, err = parseRunnerArgs([]string{"--server", "http://localhost:8080", "--labels", "a, b,"}, env(map[string]string{"SHITHUB_RUNNER_TOKEN": "from-env"}), io.Discard)
	if err != nil || o.token != "from-env" || !slices.Equal(o.cfg.Labels, []string{"a", "b"}) {
		t.Errorf("token from env: %+v, %v", o, err)
	}

	tokFile := filepath.Join(t.TempDir(), "runner-token")
	os.WriteFile(tokFile, []byte("from-file\n"), 0o600)
	var warn strings.Builder
	o, err = parseRunnerArgs([]string{"--server", "http://x", "--token-file", tokFile}, env(map[string]string{"SHITHUB_RUNNER_TOKEN": "from-env"}), &warn)
	if err != nil || o.token != "from-file" || warn.Len() != 0 {
		t.Errorf("--token-file: %+v, %v, stderr %q", o, err, warn.String())
	}
	if _, err = parseRunnerArgs([]string{"--server", "http://x", "--token", "t"}, env(nil), &warn); err != nil || !strings.Contains(warn.String(), "visible to every local user") {
		t.Errorf("--token on the command line: %v, stderr %q; want a warning", err, warn.String())
	}

	for _, args := range [][]string{
		{"--server", "http://x", "--token-file", filepath.Join(t.TempDir(), "nope")},
		{"--server", "http://x", "--token-file", tokFile, "--token", "t"},
		{"--token", "t"},
		{"--server", "http://x"},
		{"--server", "ftp://x", "--token", "t"},
		{"--server", "http://x", "--token", "t", "--image", "nolabel"},
		{"--server", "http://x", "--token", "t", "--image", "=img"},
		{"--server", "http://x", "--token", "t", "--pull", "always"},
		{"--server", "http://x", "--token", "t", "--allow-images", "ubuntu:*,,debian"},
		{"--server", "http://x", "--token", "t", "--capacity", "0"},
		{"--server", "http://x", "--token", "t", "extra"},
		{"--server", "http://x", "--token", "t", "--no-such-flag"},
	} {
		_, err := parseRunnerArgs(args, env(nil), io.Discard)
		var ue apperr.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("parseRunnerArgs(%q) = %v, want a usageError", args, err)
		}
	}
	if err := cmdRunner(context.Background(), []string{"--token", "t"}, io.Discard, io.Discard); !errors.As(err, new(apperr.UsageError)) {
		t.Errorf("cmdRunner without --server = %v, want a usageError", err)
	}
	if err := cmdRunner(context.Background(), []string{"-h"}, io.Discard, io.Discard); err != nil {
		t.Errorf("cmdRunner -h = %v", err)
	}
}

// TestHTTPServerTimeouts: serve's server has read, write and idle timeouts,
// and a client that sends its body a byte at a time is cut off once the
// read timeout (shortened here) is up, long before its body is done.
func TestHTTPServerTimeouts(t *testing.T) {
	hs := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if hs.ReadHeaderTimeout != httpReadHeaderTimeout || hs.ReadTimeout != httpReadTimeout ||
		hs.WriteTimeout != httpWriteTimeout || hs.IdleTimeout != httpIdleTimeout ||
		min(hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout) <= 0 {
		t.Fatalf("timeouts: header %v, read %v, write %v, idle %v", hs.ReadHeaderTimeout, hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout)
	}
	read := make(chan struct{})
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		close(read)
	})
	hs.ReadTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	defer hs.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 600 // at a byte per 50 ms: 30 s
	fmt.Fprintf(conn, "POST /api/v1/jobs/1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	sent := 0
	for ; sent < size; sent++ {
		if _, err := conn.Write([]byte("x")); err != nil {
			break
		}
		select {
		case <-read:
			sent = size + 1 // the handler's read of the body ended
		case <-time.After(50 * time.Millisecond):
		}
		if sent > size {
			break
		}
	}
	if sent == size {
		t.Fatalf("the server read a %d-byte body sent over %v; want it cut off by the read timeout", size, size*50*time.Millisecond)
	}
}

// TestJobListenerTimeouts: the job listener has the main listener's
// timeouts (shortened here), so a client that stalls in its headers or in
// its body is cut off; a blob upload that takes longer than the read
// timeout at a fair pace still gets through, and one that stalls does not.
func TestJobListenerTimeouts(t *testing.T) {
	ts, _ := newRuntimeTestServer(t)
	mainHS := newHTTPServer(ts.srv, slog.New(slog.DiscardHandler))
	const short = 300 * time.Millisecond
	mainHS.ReadHeaderTimeout, mainHS.ReadTimeout, mainHS.IdleTimeout = short, short, short
	jobHS := newJobHTTPServer(ts.srv, mainHS)
	if jobHS.ReadHeaderTimeout != short || jobHS.ReadTimeout != short || jobHS.IdleTimeout != short || jobHS.WriteTimeout != httpWriteTimeout {
		t.Fatalf("job listener's timeouts: header %v, read %v, write %v, idle %v", jobHS.ReadHeaderTimeout, jobHS.ReadTimeout, jobHS.WriteTimeout, jobHS.IdleTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go jobHS.Serve(ln)
	defer jobHS.Close()
	base := "http://" + ln.Addr().String()
	ts.srv.runtime.pace = uploadPace{grace: short, rate: 1 << 10}
	ts.newRun(ts.pub)
	job := ts.heartbeat()
	upload := func(key string) string {
		code, out := artifactTwirp(t, base, cacheSvc, "CreateCacheEntry", job.RuntimeToken, map[string]any{"key": key, "version": "v1"})
		if code != 200 {
			t.Fatalf("CreateCacheEntry: %d %v", code, out)
		}
		u, _ := url.Parse(out["signed_upload_url"].(string))
		return u.RequestURI()
	}

	// send writes head, then each of parts a pause apart, and reads the
	// answer until the server closes the connection: how long that took
	// from the first byte, and what it answered.
	send := func(head string, parts []string, pause time.Duration) (time.Duration, string) {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		io.WriteString(conn, head)
		for _, p := range parts {
			time.Sleep(pause)
			if _, err := io.WriteString(conn, p); err != nil {
				break
			}
		}
		conn.SetReadDeadline(start.Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		if err != nil {
			t.Fatalf("%q: the server held the connection: %v (read %q)", head, err, b)
		}
		return time.Since(start), string(b)
	}
	for _, tc := range []struct{ name, head string }{
		{"stalled headers", "GET /api/v1/repos/alice/pub HTTP/1.1\r\nHost: x\r\n"},
		{"stalled body", "POST /api/v1/repos/alice/pub/actions/events/push HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ref\""},
		{"stalled blob upload", "PUT " + upload("stalled") + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"},
	} {
		if d, _ := send(tc.head, nil, 0); d > 5*time.Second {
			t.Errorf("%s: connection closed after %v, want about %v", tc.name, d, short)
		}
	}
	// 5 KiB over about a second, three times the read timeout: 1 KiB a
	// part is what the pace allows a second for.
	var parts []string
	for range 5 {
		parts = append(parts, strings.Repeat("x", 1<<10))
	}
	head := "PUT " + upload("slow") + " HTTP/1.1\r\nHost: x\r\nx-ms-blob-type: BlockBlob\r\nConnection: close\r\nContent-Length: 5120\r\n\r\n"
	if d, resp := send(head, parts, 200*time.Millisecond); !strings.HasPrefix(resp, "HTTP/1.1 201") {
		t.Errorf("a 5 KiB upload over %v: %q, want 201", d, resp)
	}
}

// TestSecretOption: a secret from a file, the environment or (with a
// warning) the command line; a bad file is an error naming the flag.
func TestSecretOption(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	good, crlf := file("good", "s3cret\n"), file("crlf", "s3cret \r\n")
	empty, twoLines, big := file("empty", " \n"), file("two", "a\nb\n"), file("big", strings.Repeat("x", 5000))
	getenv := func(k string) string { return map[string]string{"SHITHUB_T": "from-env"}[k] }
	for _, tc := range []struct {
		name, value, file string
		want, err         string
		warns             bool
	}{
		{"file", "", good, "s3cret", "", false},
		{"file with CRLF", "", crlf, "s3cret", "", false},
		{"environment", "", "", "from-env", "", false},
		{"command line", "argv", "", "argv", "", true},
		{"both", "argv", good, "", "--t and --t-file: give one", false},
		{"missing file", "", filepath.Join(dir, "nope"), "", "--t-file: open", false},
		{"empty file", "", empty, "", "is empty", false},
		{"two lines", "", twoLines, "", "more than one line", false},
		{"too long", "", big, "", "longer than 4 KiB", false},
		{"directory", "", dir, "", "not a regular file", false},
	} {
		var stderr strings.Builder
		got, err := secretOption("t", tc.value, tc.file, "SHITHUB_T", getenv, &stderr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
		if warned := strings.Contains(stderr.String(), "visible to every local user"); warned != tc.warns || strings.Count(stderr.String(), "\n") > 1 {
			t.Errorf("%s: stderr %q, want a warning: %v", tc.name, stderr.String(), tc.warns)
		}
	}
}
