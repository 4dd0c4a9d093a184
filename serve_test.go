package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/store"
)

// TestParseServeArgs: serve's defaults, every flag landing where the run
// loop reads it, and the metrics token from its three sources.
func TestParseServeArgs(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "metrics-token")
	os.WriteFile(tokFile, []byte("from-file\n"), 0o600)
	nodeDir := filepath.Join(dir, "node")
	os.MkdirAll(filepath.Join(nodeDir, "bin"), 0o755)
	os.WriteFile(filepath.Join(nodeDir, "bin", "node"), nil, 0o755)

	var stderr bytes.Buffer
	c := &cli{db: "/srv/ci.db", stderr: &stderr}
	sc, err := c.parseServeArgs(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := serveConfig{
		addr: "127.0.0.1:8080", jobAddr: "auto", runners: 2,
		keep:         store.Retention{Logs: 90 * 24 * time.Hour},
		queueTimeout: defaultQueueTimeout,
		checkpoint:   "auto",
		runtime:      runtimeConfig{DataDir: "/srv/ci.db.d", MaxArtifactSize: 2 << 30, CacheSize: 10 << 30},
		cfg: executor.Config{Images: executor.DefaultImages(), Pull: "missing", Memory: "2g", CPUs: "1",
			PidsLimit: 1024, StopGrace: 10 * time.Second, DataDir: "/srv/ci.db.d", ActionsURL: executor.DefaultActionsURL, Ready: 1},
		shutdownGrace: 30 * time.Second,
		tls:           serveTLS{acmeHTTPAddr: ":80"},
	}
	if !reflect.DeepEqual(sc, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", sc, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("defaults: stderr %q", stderr.String())
	}

	c = &cli{db: "/srv/ci.db", stderr: &stderr}
	sc, err = c.parseServeArgs([]string{"--db", "/var/other.db", "--secret-key-file", "/etc/ci.key",
		"--addr", "0.0.0.0:9000", "--job-addr", "off", "--base-url", "https://ci.example/sub",
		"--runners", "0", "--keep-logs", "7d", "--keep-runs", "36h", "--metrics-token-file", tokFile,
		"--queue-timeout", "1h", "--trust-proxy", "10.1.2.3/8, 192.168.1.7", "--trust-proxy", "::1",
		"--max-artifact-size", "1M", "--cache-size", "512MiB", "--job-url", "http://ci.internal:8080/",
		"--image", "alpine=alpine:3.20", "--pull", "never", "--memory", "4g", "--cpus", "2",
		"--pids-limit", "99", "--stop-grace", "3s", "--shutdown-grace", "5s", "--node", nodeDir,
		"--allow-images", "alpine:*", "--allow-actions", "actions/*", "--actions-url", "file:///mirrors", "--ready", "0"},
		env(map[string]string{"SHITHUB_METRICS_TOKEN": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.db != "/var/other.db" || c.keyFile != "/etc/ci.key" {
		t.Errorf("--db, --secret-key-file: %q, %q", c.db, c.keyFile)
	}
	prefixes := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}
	if sc.addr != "0.0.0.0:9000" || sc.jobAddr != "off" || sc.baseURL != "https://ci.example/sub" || sc.runners != 0 ||
		sc.keep != (store.Retention{Logs: 7 * 24 * time.Hour, Runs: 36 * time.Hour}) || sc.metricsToken != "from-file" ||
		sc.queueTimeout != time.Hour || !slices.Equal(sc.trustProxies, prefixes) || sc.shutdownGrace != 5*time.Second {
		t.Errorf("serve's own flags: %+v", sc)
	}
	if sc.runtime != (runtimeConfig{DataDir: "/var/other.db.d", PublicURL: "http://ci.internal:8080", MaxArtifactSize: 1 << 20, CacheSize: 512 << 20}) {
		t.Errorf("runtime = %+v; want the data directory beside --db, and --job-url without its slash", sc.runtime)
	}
	cfg := sc.cfg
	if cfg.Images["alpine"] != "alpine:3.20" || cfg.Images["ubuntu-latest"] != "catthehacker/ubuntu:act-latest" || cfg.Pull != "never" ||
		cfg.Memory != "4g" || cfg.CPUs != "2" || cfg.PidsLimit != 99 || cfg.StopGrace != 3*time.Second ||
		cfg.NodeDir != nodeDir || !slices.Equal(cfg.AllowImages, []string{"alpine:*"}) ||
		!slices.Equal(cfg.AllowActions, []string{"actions/*"}) || cfg.ActionsURL != "file:///mirrors" ||
		cfg.DataDir != "/var/other.db.d" || cfg.JobURL != "http://ci.internal:8080" || cfg.Ready != -1 {
		t.Errorf("the pool's flags: %+v", cfg)
	}
	// What the run loop and the store fill in is left to them.
	if cfg.Workers != 0 || cfg.Instance != "" || cfg.AddHosts != nil || cfg.Labels != nil || cfg.Actions != nil {
		t.Errorf("parsing filled in the run loop's part: %+v", cfg)
	}

	// --data-dir is both the pool's and the artifact and cache services'.
	if sc, err = (&cli{db: "ci.db", stderr: io.Discard}).parseServeArgs([]string{"--data-dir", "/data"}, env(nil)); err != nil ||
		sc.runtime.DataDir != "/data" || sc.cfg.DataDir != "/data" {
		t.Errorf("--data-dir: %q, %q, %v", sc.runtime.DataDir, sc.cfg.DataDir, err)
	}
	// The metrics token: the environment, else the command line, which warns.
	if sc, err = (&cli{db: "ci.db", stderr: io.Discard}).parseServeArgs(nil, env(map[string]string{"SHITHUB_METRICS_TOKEN": "from-env"})); err != nil || sc.metricsToken != "from-env" {
		t.Errorf("$SHITHUB_METRICS_TOKEN: %q, %v", sc.metricsToken, err)
	}
	stderr.Reset()
	c = &cli{db: "ci.db", stderr: &stderr}
	if sc, err = c.parseServeArgs([]string{"--metrics-token", "on-the-line"}, env(nil)); err != nil || sc.metricsToken != "on-the-line" ||
		!strings.Contains(stderr.String(), "visible to every local user") {
		t.Errorf("--metrics-token: %q, %v, stderr %q; want it, with a warning", sc.metricsToken, err, stderr.String())
	}
}

// TestServeRefusesBadFlags: every bad command line is a usage error: one
// line on stderr, exit 2, and, since the configuration is read whole
// before anything opens, no database, key file or data directory made.
func TestServeRefusesBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte("t\n"), 0o600)
	noNode := t.TempDir() // a directory without bin/node
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--runners", "-1"}, "--runners must not be negative"},
		{[]string{"--runners", "two"}, "invalid value"},
		{[]string{"--max-artifact-size", "lots"}, "--max-artifact-size"},
		{[]string{"--max-artifact-size", "0"}, "is not a size"},
		{[]string{"--cache-size", "-1G"}, "--cache-size"},
		{[]string{"--job-url", "ftp://ci.example"}, "bad --job-url"},
		{[]string{"--job-url", "http://ci.example/sub"}, "bad --job-url"}, // jobs reach the server's root
		{[]string{"--job-url", "http://"}, "bad --job-url"},
		{[]string{"--base-url", "ftp://x"}, "bad --base-url"},
		{[]string{"--base-url", "https://"}, "bad --base-url"},
		{[]string{"--keep-logs", "forever"}, "--keep-logs"},
		{[]string{"--keep-runs", "-3d"}, "--keep-runs"},
		{[]string{"--queue-timeout", "0s"}, "--queue-timeout must be positive"},
		{[]string{"--queue-timeout", "-1h"}, "--queue-timeout must be positive"},
		{[]string{"--checkpoint", "sometimes"}, "--checkpoint: want auto or litestream"},
		{[]string{"--trust-proxy", "10.0.0.0/8,nope"}, `want an address or CIDR, got "nope"`},
		{[]string{"--pull", "always"}, "--pull must be missing or never"},
		{[]string{"--pids-limit", "0"}, "--pids-limit must be at least 1"},
		{[]string{"--ready", "-1"}, "--ready must not be negative"},
		{[]string{"--stop-grace", "-1s"}, "must not be negative"},
		{[]string{"--shutdown-grace", "-1s"}, "must not be negative"},
		{[]string{"--image", "nolabel"}, "want LABEL=IMAGE"},
		{[]string{"--allow-images", "a,,b"}, "empty pattern"},
		{[]string{"--allow-actions", "checkout"}, "bad --allow-actions"},
		{[]string{"--actions-url", "ftp://mirror"}, "bad --actions-url"},
		{[]string{"--node", noNode}, "no bin/node"},
		{[]string{"--metrics-token", "x", "--metrics-token-file", tokFile}, "give one"},
		{[]string{"--metrics-token-file", filepath.Join(dir, "nope")}, "--metrics-token-file: open"},
		{[]string{"--addr", "bogus"}, `bad --addr "bogus"`},
		{[]string{"--addr", ""}, "bad --addr"},
		{[]string{"--job-addr", "nowhere"}, `bad --job-addr "nowhere"`},
		{[]string{"extra"}, "usage: shithub-actions serve"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		_, err := (&cli{db: filepath.Join(dir, "unused.db"), stderr: io.Discard}).parseServeArgs(tt.args, func(string) string { return "" })
		if !errors.As(err, new(apperr.UsageError)) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseServeArgs(%q) = %v; want a usage error with %q", tt.args, err, tt.want)
		}

		fresh := t.TempDir()
		var stdout, stderr bytes.Buffer
		err = run(context.Background(), append([]string{"--db", filepath.Join(fresh, "ci.db"), "serve"}, tt.args...), strings.NewReader(""), &stdout, &stderr)
		if code := exitCode(err, &stderr); code != 2 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("serve %q: exit %d, stderr %q; want exit 2 and one line with %q", tt.args, code, stderr.String(), tt.want)
		}
		if left, _ := os.ReadDir(fresh); len(left) != 0 {
			t.Errorf("serve %q made %s before refusing its flags", tt.args, left[0].Name())
		}
	}
}
