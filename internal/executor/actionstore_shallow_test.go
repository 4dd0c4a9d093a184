package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shithub-actions/internal/workflow"
)

// TestActionStoreShallowMirror: a mirror made with `git clone --depth 1`
// (as people make them for servers without internet) serves its action by
// tag, branch and commit, also after it is made again at a newer commit;
// a fetch that fails says which action, ref and source.
func TestActionStoreShallowMirror(t *testing.T) {
	ctx := context.Background()
	_, upstream, _ := newActionMirror(t, "acme", "hello", map[string]string{"action.yml": "runs: {using: node20, main: index.js}\n", "index.js": "1\n"})
	commitFiles(t, upstream, map[string]string{"index.js": "2\n"})
	gitCmd(t, upstream, "tag", "-f", "v1")
	mirrors := t.TempDir()
	clone := func(args ...string) string {
		dst := filepath.Join(mirrors, "acme", "hello")
		os.RemoveAll(dst)
		gitCmd(t, mirrors, append([]string{"clone", "-q", "--depth", "1"}, append(args, "file://"+upstream, dst)...)...)
		return strings.TrimSpace(gitCmd(t, dst, "rev-parse", "HEAD"))
	}
	head := clone("--branch", "v1")
	st, err := NewActionStore(t.TempDir(), "file://"+mirrors)
	if err != nil {
		t.Fatal(err)
	}
	for _, uses := range []string{"acme/hello@v1", "acme/hello@" + head} {
		ref, _ := workflow.ParseActionRef(uses)
		fa, err := st.Fetch(ctx, ref, 0)
		if err != nil {
			t.Fatalf("%s from a shallow mirror: %v", uses, err)
		}
		if b, _ := os.ReadFile(filepath.Join(fa.Dir, "index.js")); fa.SHA != head || string(b) != "2\n" {
			t.Errorf("%s = %s with index.js %q, want %s with 2", uses, fa.SHA, b, head)
		}
	}
	// Made again, shallow, at a newer commit of a branch.
	commitFiles(t, upstream, map[string]string{"index.js": "3\n"})
	head2 := clone("--branch", "main")
	ref, _ := workflow.ParseActionRef("acme/hello@main")
	if fa, err := st.Fetch(ctx, ref, 0); err != nil || fa.SHA != head2 {
		t.Fatalf("acme/hello@main after the mirror was made again: %+v, %v; want %s", fa, err, head2)
	}

	// A failure names the action, the ref and the source.
	ref, _ = workflow.ParseActionRef("acme/hello@v9")
	_, err = st.Fetch(ctx, ref, 0)
	if err == nil || !strings.Contains(err.Error(), "acme/hello@v9") || !strings.Contains(err.Error(), "v9") || !strings.Contains(err.Error(), mirrors) {
		t.Errorf("a missing ref: %v", err)
	}
	missing := strings.Repeat("ab", 20)
	ref, _ = workflow.ParseActionRef("acme/hello@" + missing)
	_, err = st.Fetch(ctx, ref, 0)
	if err == nil || !strings.Contains(err.Error(), "acme/hello@"+missing) || !strings.Contains(err.Error(), mirrors) {
		t.Errorf("a missing commit: %v", err)
	}
}
