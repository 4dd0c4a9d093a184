package executor

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCredentialConfig: the section actions/checkout writes, keyed by the
// server's origin, with the token as basic x-access-token.
func TestCredentialConfig(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:ghs_tok"))
	for _, tc := range []struct {
		server, token, header string
		ok                    bool
	}{
		{"http://shithub.localhost:8080", "ghs_tok", `[http "http://shithub.localhost:8080/"]`, true},
		{"https://ci.example/sub/path", "ghs_tok", `[http "https://ci.example/"]`, true},
		{"http://shithub.localhost:8080", "", "", false},
		{"", "ghs_tok", "", false},
		{"alice/hello", "ghs_tok", "", false},
	} {
		h, l, ok := credentialConfig(tc.server, tc.token)
		if ok != tc.ok || h != tc.header || ok && l != "\textraheader = AUTHORIZATION: basic "+basic {
			t.Errorf("credentialConfig(%q, %q) = %q %q %v, want %q, ok %v", tc.server, tc.token, h, l, ok, tc.header, tc.ok)
		}
	}
}

// TestPersistScript runs the script with this machine's sh: it adds the
// section once, replaces its own section on a second run, keeps the rest
// of the config, and does nothing where there is no repository.
func TestPersistScript(t *testing.T) {
	h, l, _ := credentialConfig("http://shithub.localhost:8080", "tok1")
	_, l2, _ := credentialConfig("http://shithub.localhost:8080", "tok2")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	cfg := filepath.Join(dir, ".git", "config")
	base := "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = http://shithub.localhost:8080/alice/hello\n"
	os.WriteFile(cfg, []byte(base), 0o644)
	run := func(dir, line string) {
		t.Helper()
		cmd := exec.Command("sh", "-c", "set -e\n"+persistScript, "sh", dir)
		cmd.Env = append(os.Environ(), "SHITHUB_CRED_HEADER="+h, "SHITHUB_CRED_LINE="+line)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
	}
	run(dir, l)
	run(dir, l) // again: one section
	b, _ := os.ReadFile(cfg)
	if want := base + h + "\n" + l + "\n"; string(b) != want {
		t.Errorf("config =\n%s\nwant\n%s", b, want)
	}
	run(dir, l2) // another token replaces the first
	b, _ = os.ReadFile(cfg)
	if strings.Contains(string(b), l) || strings.Count(string(b), h) != 1 || !strings.HasSuffix(string(b), l2+"\n") {
		t.Errorf("after a second token, config =\n%s", b)
	}
	if git, err := exec.LookPath("git"); err == nil {
		out, err := exec.Command(git, "config", "--file", cfg, "--get-all", "http.http://shithub.localhost:8080/.extraheader").Output()
		if err != nil || strings.TrimSpace(string(out)) != strings.TrimPrefix(l2, "\textraheader = ") {
			t.Errorf("git reads extraheader %q (%v), want %q", out, err, strings.TrimPrefix(l2, "\textraheader = "))
		}
	}
	empty := t.TempDir()
	run(empty, l) // no .git/config: nothing made
	if _, err := os.Stat(filepath.Join(empty, ".git")); !os.IsNotExist(err) {
		t.Errorf("made .git where there was no repository: %v", err)
	}
}

// TestPersistCredentialsInput: default true; a non-boolean is an error.
func TestPersistCredentialsInput(t *testing.T) {
	for in, want := range map[string]bool{"": true, "true": true, "false": false, " FALSE ": false} {
		if got, err := persistCredentialsInput(map[string]string{"persist-credentials": in}); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := persistCredentialsInput(map[string]string{"persist-credentials": "yes"}); err == nil {
		t.Error("yes: no error")
	}
}
