package store

import (
	"shithub-actions/internal/workflow"
	"testing"
)

func TestPullRequestTriggerMatches(t *testing.T) {
	tests := []struct {
		name    string
		t       *workflow.PullRequestTrigger
		action  string
		base    string
		changed []string
		want    bool
	}{
		{"default types opened", &workflow.PullRequestTrigger{}, "opened", "main", nil, true},
		{"default types synchronize", &workflow.PullRequestTrigger{}, "synchronize", "main", nil, true},
		{"default types not closed", &workflow.PullRequestTrigger{}, "closed", "main", nil, false},
		{"explicit types", &workflow.PullRequestTrigger{Types: []string{"closed"}}, "closed", "main", nil, true},
		{"branches match base", &workflow.PullRequestTrigger{Branches: []string{"main", "release/*"}}, "opened", "release/1", nil, true},
		{"branches miss", &workflow.PullRequestTrigger{Branches: []string{"main"}}, "opened", "dev", nil, false},
		{"branches-ignore", &workflow.PullRequestTrigger{BranchesIgnore: []string{"dev"}}, "opened", "dev", nil, false},
		{"paths match", &workflow.PullRequestTrigger{Paths: []string{"src/**"}}, "opened", "main", []string{"README", "src/a/b.go"}, true},
		{"paths miss", &workflow.PullRequestTrigger{Paths: []string{"src/**"}}, "opened", "main", []string{"README"}, false},
		{"paths-ignore all ignored", &workflow.PullRequestTrigger{PathsIgnore: []string{"docs/**"}}, "opened", "main", []string{"docs/x.md"}, false},
		{"paths unknown", &workflow.PullRequestTrigger{Paths: []string{"src/**"}}, "opened", "main", nil, true},
		{"nil trigger", nil, "opened", "main", nil, false},
	}
	for _, tt := range tests {
		if got := tt.t.Matches(tt.action, tt.base, tt.changed); got != tt.want {
			t.Errorf("%s: matches(%q, %q, %v) = %v, want %v", tt.name, tt.action, tt.base, tt.changed, got, tt.want)
		}
	}
}
