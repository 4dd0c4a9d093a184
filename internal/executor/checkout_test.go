package executor

import (
	"strings"
	"testing"
)

func TestParseCheckoutInputs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		with map[string]string
		want CheckoutSpec
		warn string
		err  string
	}{
		{name: "none", with: nil, want: DefaultCheckout},
		{name: "same repository, the token kept, other credentials ignored", with: map[string]string{"repository": "Alice/App", "token": " x ", "persist-credentials": "false"},
			want: CheckoutSpec{Depth: 1, Clean: true, Token: "x"}},
		{name: "all", with: map[string]string{"repository": "bob/lib", "ref": " v1 ", "fetch-depth": "0", "fetch-tags": "true",
			"path": "./sub/../src/", "submodules": "recursive", "clean": "False", "lfs": "false"},
			want: CheckoutSpec{Repository: "bob/lib", Ref: "v1", Depth: 0, Tags: true, Path: "src", Submodules: "recursive"}},
		{name: "path in workspace", with: map[string]string{"path": "/workspace/a/b", "submodules": "true"},
			want: CheckoutSpec{Depth: 1, Clean: true, Path: "a/b", Submodules: "true"}},
		{name: "workspace itself", with: map[string]string{"path": "."}, want: DefaultCheckout},
		{name: "sparse", with: map[string]string{"sparse-checkout": "src"}, want: DefaultCheckout, warn: "input sparse-checkout is not supported here and is ignored"},
		{name: "unknown", with: map[string]string{"fetch_depth": "0"}, want: DefaultCheckout, warn: "Unexpected input(s) 'fetch_depth', valid inputs are ['repository', 'ref'"},
		{name: "lfs", with: map[string]string{"lfs": "true"}, err: "input lfs: Git LFS is not supported here"},
		{name: "depth", with: map[string]string{"fetch-depth": "-1"}, err: `input fetch-depth: "-1" is not a whole number`},
		{name: "depth word", with: map[string]string{"fetch-depth": "all"}, err: `input fetch-depth: "all" is not a whole number`},
		{name: "clean", with: map[string]string{"clean": "yes"}, err: `input clean: "yes" is not a boolean`},
		{name: "submodules", with: map[string]string{"submodules": "deep"}, err: `input submodules: "deep" is not true, false or recursive`},
		{name: "escape", with: map[string]string{"path": "../x"}, err: `input path: repository path "../x" is not under /workspace`},
		{name: "absolute", with: map[string]string{"path": "/etc"}, err: `input path: repository path "/etc" is not under /workspace`},
		{name: "repository", with: map[string]string{"repository": "lib"}, err: `input repository: "lib" is not OWNER/REPO`},
	} {
		spec, warnings, err := ParseCheckoutInputs(tc.with, "alice/app")
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error = %v, want %q", tc.name, err, tc.err)
			}
			continue
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if spec != tc.want {
			t.Errorf("%s: spec = %+v, want %+v", tc.name, spec, tc.want)
		}
		if got := strings.Join(warnings, "\n"); tc.warn == "" && got != "" || !strings.Contains(got, tc.warn) {
			t.Errorf("%s: warnings = %q, want %q", tc.name, got, tc.warn)
		}
	}
}

func TestSubmoduleRepo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want, err string }{
		{url: "../lib.git", want: "alice/lib"},
		{url: "../../bob/lib", want: "bob/lib"},
		{url: "./sub", want: "app/sub"},
		{url: "https://github.com/bob/lib.git", want: "bob/lib"},
		{url: "https://ci.example/git/bob/lib/", want: "bob/lib"},
		{url: "git@github.com:bob/lib.git", want: "bob/lib"},
		{url: "ssh://git@host:22/bob/lib", want: "bob/lib"},
		{url: "https://host/lib", err: "names no OWNER/REPO"},
		{url: "../../../x", err: "names no OWNER/REPO"},
		{url: "lib", err: "names no OWNER/REPO"},
	} {
		got, err := submoduleRepo(tc.url, "alice/app")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("submoduleRepo(%q) = %q, %v; want error %q", tc.url, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("submoduleRepo(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
}
