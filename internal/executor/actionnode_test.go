package executor

import (
	"strings"
	"testing"
)

// TestNodeNote: the log names the node that runs an action, and warns,
// without refusing, when it is older than runs.using asks for.
func TestNodeNote(t *testing.T) {
	for _, tc := range []struct {
		name, version, using string
		warn                 bool
	}{
		{"same", "v20.19.2", "node20", false},
		{"newer", "v24.1.0", "node20", false},
		{"older", "v18.19.0", "node20", true},
		{"node24 asked", "v20.19.2", "node24", true},
		{"node12 on 20", "v20.19.2", "node12", false},
		{"unknown version", "", "node20", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &jobNode{path: "/usr/bin/node", version: tc.version, from: "the job image"}
			note, warning := nodeNote(n, tc.using)
			if !strings.Contains(note, "/usr/bin/node, from the job image") || (tc.version != "" && !strings.Contains(note, tc.version)) {
				t.Errorf("note = %q", note)
			}
			if (warning != "") != tc.warn {
				t.Errorf("warning = %q, want one: %v", warning, tc.warn)
			}
			if tc.warn && (!strings.Contains(warning, tc.using) || !strings.Contains(warning, "--node DIR") || !strings.Contains(warning, "running it anyway")) {
				t.Errorf("warning = %q: should name what is asked and the way out", warning)
			}
		})
	}
	for in, want := range map[string]int{"v20.19.2": 20, "node16": 16, "node24": 24, "v8": 8, "": 0, "nodex": 0, "v-1.0": 0} {
		if got := nodeMajor(in); got != want {
			t.Errorf("nodeMajor(%q) = %d, want %d", in, got, want)
		}
	}
}
