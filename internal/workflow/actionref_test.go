package workflow

import (
	"strings"
	"testing"
)

func TestParseActionRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ActionRef
		err  string
	}{
		{in: "actions/setup-go@v5", want: ActionRef{Kind: ActionRepo, Owner: "actions", Repo: "setup-go", Ref: "v5"}},
		{in: "actions/cache/restore@v4", want: ActionRef{Kind: ActionRepo, Owner: "actions", Repo: "cache", Path: "restore", Ref: "v4"}},
		{in: "o/r/a/b@0123456789abcdef0123456789abcdef01234567", want: ActionRef{Kind: ActionRepo, Owner: "o", Repo: "r", Path: "a/b", Ref: "0123456789abcdef0123456789abcdef01234567"}},
		{in: "dtolnay/rust-toolchain@stable", want: ActionRef{Kind: ActionRepo, Owner: "dtolnay", Repo: "rust-toolchain", Ref: "stable"}},
		{in: "o/r@release/v1", want: ActionRef{Kind: ActionRepo, Owner: "o", Repo: "r", Ref: "release/v1"}},
		{in: "./.github/actions/build", want: ActionRef{Kind: ActionLocal, Local: ".github/actions/build"}},
		{in: "./", want: ActionRef{Kind: ActionLocal, Local: "."}},
		{in: "docker://alpine:3.20", want: ActionRef{Kind: ActionDocker, Image: "alpine:3.20"}},
		{in: "", err: "must name an action"},
		{in: "actions/checkout", err: "needs a version"},
		{in: "actions/checkout@", err: "needs a version"},
		{in: "checkout@v4", err: "want OWNER/REPO"},
		{in: "/abs/path", err: "inside the workspace"},
		{in: "../up", err: "inside the workspace"},
		{in: "./a/../../up", err: "leaves the workspace"},
		{in: "o/r@-upload-pack=x", err: "starts with '-'"},
		{in: "o/r@a..b", err: "not a valid"},
		{in: "o/r@v1 ", err: "spaces"},
		{in: "o/r/../x@v1", err: "bad path"},
		{in: "o/r//x@v1", err: "bad path"},
		{in: "o$/r@v1", err: "bad owner"},
		{in: "o/..@v1", err: "bad repository"},
		{in: "docker://", err: "needs an image"},
		{in: "docker://-v", err: "needs an image"},
	} {
		got, err := ParseActionRef(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseActionRef(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseActionRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// String gives back what was written (local paths cleaned).
		if back, _ := ParseActionRef(got.String()); back != got {
			t.Errorf("ParseActionRef(%q).String() = %q, which parses to %+v", tc.in, got.String(), back)
		}
	}
}

func TestActionAllowed(t *testing.T) {
	for _, tc := range []struct {
		patterns string
		uses     string
		want     bool
	}{
		{"", "anyone/anything@v1", true},
		{"actions/*", "actions/setup-go@v5", true},
		{"actions/*", "actions/cache/restore@v4", true},
		{"actions/*", "docker/login-action@v3", false},
		{"actions/*", "./local", true},
		{"actions/setup-go@v5", "actions/setup-go@v5", true},
		{"actions/setup-go@v5", "actions/setup-go@v4", false},
		{"actions/cache", "actions/cache/save@v4", true},
		{"actions/cache/save", "actions/cache/restore@v4", false},
		{"Actions/Setup-Go", "actions/setup-go@v5", true},
		{"octo/*@*", "octo/x@main", true},
		{"docker://alpine:*", "docker://alpine:3.20", true},
		{"docker://alpine:*", "docker://busybox", false},
		{"actions/*", "docker://alpine", false},
		{"*", "docker://alpine", true},
		{"a/b, c/*", "c/d@v1", true},
	} {
		pats, err := ParseAllowActions(tc.patterns)
		if err != nil {
			t.Fatalf("ParseAllowActions(%q): %v", tc.patterns, err)
		}
		ref, err := ParseActionRef(tc.uses)
		if err != nil {
			t.Fatalf("ParseActionRef(%q): %v", tc.uses, err)
		}
		if got := ActionAllowed(pats, ref); got != tc.want {
			t.Errorf("ActionAllowed(%q, %q) = %v, want %v", tc.patterns, tc.uses, got, tc.want)
		}
	}
	if _, err := ParseAllowActions("setup-go"); err == nil {
		t.Errorf("ParseAllowActions(%q) = nil error, want one", "setup-go")
	}
}

func TestGlobAll(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"a*a", "a", false}, {"a*a", "aa", true}, {"*", "", true}, {"a*b*c", "abc", true},
		{"a*b*c", "acb", false}, {"x", "x", true}, {"x", "xy", false}, {"*y", "xy", true},
	} {
		if got := globAll(tc.p, tc.s); got != tc.want {
			t.Errorf("globAll(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func FuzzParseActionRef(f *testing.F) {
	for _, s := range []string{"actions/checkout@v4", "./x", "docker://a", "o/r/p@x", "@", "a/b@-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseActionRef(s)
		if err != nil {
			return
		}
		switch r.Kind {
		case ActionRepo:
			if strings.HasPrefix(r.Ref, "-") || strings.Contains(r.Path, "..") || r.Owner == "" || r.Repo == "" {
				t.Fatalf("ParseActionRef(%q) = %+v: unsafe", s, r)
			}
		case ActionLocal:
			if strings.HasPrefix(r.Local, "..") || strings.HasPrefix(r.Local, "/") {
				t.Fatalf("ParseActionRef(%q) = %+v: leaves the workspace", s, r)
			}
		}
		if back, err := ParseActionRef(r.String()); err != nil || back != r {
			t.Fatalf("ParseActionRef(%q) = %+v, whose String %q parses to %+v, %v", s, r, r.String(), back, err)
		}
	})
}
