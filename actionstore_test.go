package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIActionsFetch(t *testing.T) {
	mirrors, _, sha := newActionMirror(t, "acme", "hello", map[string]string{"action.yml": "runs: {using: node20, main: index.js}\n"})
	db := filepath.Join(t.TempDir(), "x.db")
	var out, errb strings.Builder
	err := run(context.Background(), []string{"--db", db, "actions", "fetch", "acme/hello@v1", "--actions-url", "file://" + mirrors}, strings.NewReader(""), &out, &errb)
	if err != nil || !strings.HasPrefix(out.String(), "acme/hello@v1 "+sha+" from file://") {
		t.Fatalf("actions fetch: %v; stdout %q stderr %q", err, out.String(), errb.String())
	}
	if _, err := os.Stat(filepath.Join(db+".d", "actions", "trees", "acme", "hello", sha, "action.yml")); err != nil {
		t.Errorf("the default data directory has no tree: %v", err)
	}
	for _, args := range [][]string{
		{"actions", "fetch"},
		{"actions", "fetch", "./local"},
		{"actions", "fetch", "nope"},
		{"actions", "fetch", "a/b@v1", "--actions-url", "ftp://x"},
	} {
		var errb strings.Builder
		err := run(context.Background(), append([]string{"--db", db}, args...), strings.NewReader(""), io.Discard, &errb)
		if code := exitCode(err, &errb); code != exitUsage {
			t.Errorf("%v: exit %d (%v), want %d", args, code, err, exitUsage)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "512K": 512 << 10, "2GiB": 2 << 30, "10g": 10 << 30, "3MB": 3 << 20, "1T": 1 << 40} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "2X", "G", "99999999999T"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) = nil error", bad)
		}
	}
}

// newActionMirror makes a file:// mirrors directory holding OWNER/REPO with
// files committed on main and tagged v1; it returns the directory, the
// repository's path and the commit.
func newActionMirror(t *testing.T, owner, repo string, files map[string]string) (mirrors, dir, sha string) {
	t.Helper()
	mirrors = t.TempDir()
	dir = filepath.Join(mirrors, owner, repo)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, dir, "init", "-q", "-b", "main")
	sha = commitFiles(t, dir, files)
	gitCmd(t, dir, "tag", "v1")
	return mirrors, dir, sha
}
