package store

import (
	"fmt"
	"slices"
	"testing"
)

func TestWorkflowJobRefs(t *testing.T) {
	head := "on: push\n"
	tests := []struct {
		name    string
		wf      string
		job     string
		secrets []string
		all     bool
	}{
		{"none", head + "jobs:\n  a:\n    steps:\n      - run: echo hi\n", "a", []string{}, false},
		{"run and env", head + "env:\n  W: ${{ secrets.WORKFLOW_LEVEL }}\njobs:\n  a:\n    env:\n      J: ${{ secrets.Job_Level }}\n    steps:\n" +
			"      - run: echo ${{ secrets.RUN }} ${{ secrets['INDEXED'] }}\n      - uses: x/y@v1\n        with:\n          token: ${{ secrets.WITH }}\n", "a",
			[]string{"INDEXED", "JOB_LEVEL", "RUN", "WITH", "WORKFLOW_LEVEL"}, false},
		{"other job's secrets are not this job's", head + "jobs:\n  a:\n    steps:\n      - run: echo ${{ secrets.A }}\n  b:\n    steps:\n      - run: echo ${{ secrets.B }}\n", "b",
			[]string{"B"}, false},
		{"if is a condition", head + "jobs:\n  a:\n    steps:\n      - if: secrets.IN_IF != ''\n        run: echo\n", "a", []string{"IN_IF"}, false},
		{"text without ${{ }} is not an expression", head + "jobs:\n  a:\n    steps:\n      - run: echo secrets.NOT_ONE\n", "a", []string{}, false},
		{"dynamic", head + "jobs:\n  a:\n    steps:\n      - run: echo ${{ secrets[matrix.name] }}\n", "a", []string{}, true},
		{"toJSON(secrets)", head + "jobs:\n  a:\n    steps:\n      - run: echo '${{ toJSON(secrets) }}'\n", "a", []string{}, true},
		{"unknown job", head + "jobs:\n  a:\n    steps:\n      - run: ${{ secrets.X }}\n", "zzz", nil, false},
		{"not YAML", "::: [", "a", nil, false},
		{"anchors", head + "x: &run\n  run: ${{ secrets.VIA_ANCHOR }}\njobs:\n  a:\n    steps:\n      - *run\n", "a", []string{"VIA_ANCHOR"}, false},
	}
	for _, tc := range tests {
		got := WorkflowJobRefs([]byte(tc.wf), tc.job)
		if !slices.Equal(got.Secrets, tc.secrets) || got.AllSecrets != tc.all {
			t.Errorf("%s: workflowJobRefs = %+v, want secrets %v all %v", tc.name, got, tc.secrets, tc.all)
		}
	}
}

// TestWorkflowJobPerms: the token's permissions from the parsed
// `permissions:`, the job's over the workflow's.
func TestWorkflowJobPerms(t *testing.T) {
	job := "jobs:\n  a:\n    runs-on: ubuntu-latest\n%s    steps:\n      - run: x\n"
	tests := []struct {
		name, wf, jobPerms string
		want               TokenPerms
	}{
		{"default", "on: push\n", "", DefaultTokenPerms},
		{"write-all", "on: push\npermissions: write-all\n", "", TokenPerms{Contents: "write", Actions: "write"}},
		{"read-all", "on: push\npermissions: read-all\n", "", TokenPerms{Contents: "read", Actions: "read"}},
		{"job wins", "on: push\npermissions: read-all\n", "    permissions:\n      contents: write\n", TokenPerms{Contents: "write", Actions: "none"}},
		{"empty", "on: push\npermissions: {}\n", "", TokenPerms{Contents: "none", Actions: "none"}},
		{"other scopes", "on: push\npermissions:\n  actions: write\n  packages: read\n", "", TokenPerms{Contents: "none", Actions: "write"}},
		{"does not parse", "on: push\npermissions: bogus\n", "", DefaultTokenPerms},
	}
	for _, tc := range tests {
		wf := tc.wf + fmt.Sprintf(job, tc.jobPerms)
		if got := workflowJobPerms(".shithub/workflows/w.yml", []byte(wf), "a"); got != tc.want {
			t.Errorf("%s: %+v, want %+v\n%s", tc.name, got, tc.want, wf)
		}
	}
}

func TestIsForkPullRequest(t *testing.T) {
	same := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "alice/pub"}}}}
	other := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "dave/pub"}}}}
	tests := []struct {
		event   string
		payload map[string]any
		want    bool
	}{
		{"push", nil, false},
		{"pull_request", same, false},
		{"pull_request", other, true},
		{"pull_request", nil, true},
		{"pull_request_target", other, false},
		{"pull_request_review", other, true},
	}
	for _, tc := range tests {
		if got := isForkPullRequest(tc.event, tc.payload, "alice/pub"); got != tc.want {
			t.Errorf("isForkPullRequest(%s, %v) = %v, want %v", tc.event, tc.payload, got, tc.want)
		}
	}
}
