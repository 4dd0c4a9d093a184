package executor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// wfJob is a job of the new claim shape (with contexts), with a Set up job
// step and the given steps; step ids are id*100 + index.
func wfJob(id int64, steps ...protocol.Step) *protocol.Job {
	job := testJob(id)
	job.Steps = job.Steps[:1]
	for i, s := range steps {
		s.ID = id*100 + 1 + int64(i)
		s.Number = 2 + i
		if s.Kind == "" {
			s.Kind = "run"
		}
		if s.Name == "" {
			s.Name = "step"
		}
		job.Steps = append(job.Steps, s)
	}
	job.Contexts = map[string]any{
		"github":  map[string]any{"sha": job.HeadSHA, "repository": job.Repo, "workspace": "/workspace", "token": ""},
		"env":     map[string]any{},
		"matrix":  map[string]any{"go": "1.22"},
		"secrets": map[string]any{},
		"vars":    map[string]any{},
	}
	return job
}

// statuses lists each step's statuses, joined: "running,success", "skipped".
func statuses(src *fakeSource, job *protocol.Job) []string {
	var out []string
	for _, s := range job.Steps {
		out = append(out, strings.Join(src.stepStatuses(s.ID), ","))
	}
	return out
}

func TestStepConditions(t *testing.T) {
	t.Parallel()
	job := wfJob(101,
		protocol.Step{StepKey: "a", Run: "echo one\nexit 1"},
		protocol.Step{Run: "echo no if"},
		protocol.Step{If: "failure()", Run: "echo on failure"},
		protocol.Step{If: "${{ always() }}", Run: "echo always"},
		protocol.Step{If: "success()", Run: "echo on success"},
		protocol.Step{If: "failure() && steps.a.outcome == 'failure' && matrix.go == '1.22'", Run: "echo a failed"},
		protocol.Step{If: "steps.a.outcome == 'failure'", Run: "echo never: success() && is implied"},
		protocol.Step{If: "cancelled()", Run: "echo cancelled"},
		protocol.Step{If: "fromJSON('{'", Run: "echo bad if"},
	)
	src := newFakeSource()
	ex, _ := newTestExecutor(t, src)
	ex.runJob(job)

	if got := src.jobConclusion(101); got != "failure" {
		t.Errorf("job conclusion = %q, want failure", got)
	}
	want := []string{"running,success", "running,failure", "skipped", "running,success", "running,success",
		"skipped", "running,success", "skipped", "skipped", "running,failure"}
	if got := statuses(src, job); !slices.Equal(got, want) {
		t.Errorf("step statuses:\n got %q\nwant %q", got, want)
	}
	if got := src.log(t, job.Steps[6].ID); got != "a failed\n" {
		t.Errorf("log = %q", got)
	}
	if got := src.log(t, job.Steps[9].ID); !strings.HasPrefix(got, "##[error]if: ") || !strings.Contains(got, "fromJSON") {
		t.Errorf("bad if log = %q", got)
	}
}

func TestStepContinueOnError(t *testing.T) {
	t.Parallel()
	job := wfJob(102,
		protocol.Step{StepKey: "x", Run: "exit 2", ContinueOnError: "${{ matrix.go == '1.22' }}"},
		protocol.Step{Run: "echo ${{ steps.x.outcome }} ${{ steps.x.conclusion }} ${{ job.status }}"},
		protocol.Step{StepKey: "y", Run: "exit 3", ContinueOnError: "false"},
		protocol.Step{If: "always()", Run: "echo ${{ steps.y.outcome }} ${{ steps.y.conclusion }} ${{ job.status }}"},
	)
	src := newFakeSource()
	ex, _ := newTestExecutor(t, src)
	ex.runJob(job)
	want := []string{"running,success", "running,success", "running,success", "running,failure", "running,success"}
	if got := statuses(src, job); !slices.Equal(got, want) {
		t.Errorf("step statuses:\n got %q\nwant %q", got, want)
	}
	if got := src.log(t, job.Steps[2].ID); got != "failure success success\n" {
		t.Errorf("log = %q", got)
	}
	if got := src.log(t, job.Steps[4].ID); got != "failure failure failure\n" {
		t.Errorf("log = %q", got)
	}
	if got := src.jobConclusion(102); got != "failure" {
		t.Errorf("job conclusion = %q, want failure", got)
	}
}

func TestStepEnvironmentFiles(t *testing.T) {
	t.Parallel()
	job := wfJob(103,
		protocol.Step{StepKey: "s1", Run: "append GITHUB_OUTPUT greeting=hello\n" +
			"append GITHUB_OUTPUT multi<<EOF\\nline 1\\nline 2\\nEOF\n" +
			"append GITHUB_ENV FOO=from-env-file\n" +
			"append GITHUB_ENV GITHUB_SHA=forged\n" +
			"append GITHUB_PATH /opt/one/bin\n" +
			"append GITHUB_PATH /opt/two/bin\n" +
			"append GITHUB_STEP_SUMMARY # Title\n" +
			"append GITHUB_STATE pid=42"},
		protocol.Step{Run: "echo ${{ steps.s1.outputs.greeting }} ${{ env.FOO }}\nenv FOO\nenv GITHUB_SHA\npath"},
		protocol.Step{Run: "env FOO", Env: map[string]string{"FOO": "step wins over ${{ env.FOO }}"}},
		protocol.Step{StepKey: "bad", Run: "append GITHUB_OUTPUT no-equals-sign"},
	)
	job.Env = map[string]string{"GITHUB_SHA": job.HeadSHA, "PATH": "/usr/bin:/bin"}
	job.Outputs = map[string]string{"g": "${{ steps.s1.outputs.greeting }}", "m": "${{ steps.s1.outputs.multi }}", "none": "${{ steps.nope.outputs.x }}"}
	job.EnvironmentURL = "https://${{ steps.s1.outputs.greeting }}.example.com/"
	src := newFakeSource()
	ex, _ := newTestExecutor(t, src)
	ex.runJob(job)

	if got := src.log(t, job.Steps[1].ID); got != "##[warning]Can't overwrite the default environment variable GITHUB_SHA.\n" {
		t.Errorf("s1 log = %q", got)
	}
	want := "hello from-env-file\nFOO=from-env-file\nGITHUB_SHA=" + job.HeadSHA + "\n/usr/bin:/bin prepend=/opt/two/bin:/opt/one/bin\n"
	if got := src.log(t, job.Steps[2].ID); got != want {
		t.Errorf("s2 log:\n got %q\nwant %q", got, want)
	}
	if got := src.log(t, job.Steps[3].ID); got != "FOO=step wins over from-env-file\n" {
		t.Errorf("s3 log = %q", got)
	}
	if got := src.log(t, job.Steps[4].ID); !strings.Contains(got, "##[error]Unable to process file command 'output' successfully.") {
		t.Errorf("bad step log = %q", got)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if got := src.summaries[job.Steps[1].ID]; got != "# Title\n" {
		t.Errorf("summary = %q", got)
	}
	outs := src.outputs[103]
	if _, ok := outs["none"]; outs["g"] != "hello" || outs["m"] != "line 1\nline 2" || ok || len(outs) != 2 {
		t.Errorf("job outputs = %q", outs)
	}
	if got := src.envURLs[103]; got != "https://hello.example.com/" {
		t.Errorf("environment url = %q", got)
	}
	if got := src.jobs[103]; got != "failure" {
		t.Errorf("job conclusion = %q, want failure (the bad output file)", got)
	}
}

func TestStepWorkflowCommands(t *testing.T) {
	t.Parallel()
	for _, debug := range []bool{false, true} {
		job := wfJob(104,
			protocol.Step{Run: "echo ::group::Build it\n" +
				"echo inside\n" +
				"echo ::endgroup::\n" +
				"echo ::error file=a.go,line=3,col=5,title=Bad::it broke\n" +
				"echo ::warning::careful\n" +
				"echo ::add-mask::hunter2\n" +
				"echo password is hunter2!\n" +
				"echo ::debug::for debugging\n" +
				"echo ::stop-commands::pause123\n" +
				"echo ::warning::not a command now\n" +
				"echo ::pause123::\n" +
				"echo ::notice title=Done::all good"},
			protocol.Step{Run: "echo still masked: hunter2"},
			protocol.Step{Run: "echo ::set-env name=X::y"},
		)
		if debug {
			job.JobID = 105
			job.Env = map[string]string{"ACTIONS_STEP_DEBUG": "true"}
		}
		src := newFakeSource()
		ex, _ := newTestExecutor(t, src)
		ex.runJob(job)
		want := "##[group]Build it\ninside\n##[endgroup]\n##[error]it broke\n##[warning]careful\npassword is ***!\n"
		if debug {
			want = "::group::Build it\n##[group]Build it\ninside\n::endgroup::\n##[endgroup]\n##[error]it broke\n##[warning]careful\n" +
				"::add-mask::***\npassword is ***!\n##[debug]for debugging\n"
		}
		want += "::stop-commands::pause123\n::warning::not a command now\n::pause123::\n##[notice]all good\n"
		if got := src.log(t, job.Steps[1].ID); got != want {
			t.Errorf("debug %v: log:\n got %q\nwant %q", debug, got, want)
		}
		if got := src.log(t, job.Steps[2].ID); got != "still masked: ***\n" {
			t.Errorf("debug %v: log = %q", debug, got)
		}
		if got := statuses(src, job)[3]; got != "running,failure" {
			t.Errorf("set-env without ACTIONS_ALLOW_UNSECURE_COMMANDS: step = %q, want a failure", got)
		}
		src.mu.Lock()
		anns := src.annotations
		src.mu.Unlock()
		wantAnns := []protocol.Annotation{
			{StepID: job.Steps[1].ID, Level: "error", Message: "it broke", File: "a.go", Line: 3, Col: 5, Title: "Bad"},
			{StepID: job.Steps[1].ID, Level: "warning", Message: "careful"},
			{StepID: job.Steps[1].ID, Level: "notice", Message: "all good", Title: "Done"},
		}
		if !slices.Equal(anns, wantAnns) {
			t.Errorf("debug %v: annotations:\n got %+v\nwant %+v", debug, anns, wantAnns)
		}
	}
}

func TestStepTimeout(t *testing.T) {
	t.Parallel()
	job := wfJob(106,
		protocol.Step{Run: "echo started\nwait-stop", TimeoutMinutes: "${{ 1 }}"},
		protocol.Step{Run: "echo skipped"},
		protocol.Step{If: "always()", Run: "echo after"},
		protocol.Step{StepKey: "c", If: "always()", Run: "wait-stop", TimeoutMinutes: "1", ContinueOnError: "true"},
		protocol.Step{If: "always()", Run: "echo ${{ steps.c.outcome }} ${{ steps.c.conclusion }}"},
	)
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	ex.minute = 300 * time.Millisecond
	ex.runJob(job)
	want := []string{"running,success", "running,failure", "skipped", "running,success", "running,success", "running,success"}
	if got := statuses(src, job); !slices.Equal(got, want) {
		t.Errorf("step statuses:\n got %q\nwant %q", got, want)
	}
	if got := src.log(t, job.Steps[5].ID); got != "failure success\n" {
		t.Errorf("log = %q", got)
	}
	if got := src.log(t, job.Steps[1].ID); got != "started\n##[error]The action has timed out.\n" {
		t.Errorf("log = %q", got)
	}
	if got := src.log(t, job.Steps[3].ID); got != "after\n" {
		t.Errorf("log = %q", got)
	}
	if n := len(fe.commands(t, "stop")); n != 2 {
		t.Errorf("%d docker stops, want 2", n)
	}
	if n := len(fe.commands(t, "start")); n != 2 { // one after each stop (docker run -d made the first)
		t.Errorf("%d docker starts, want 2", n)
	}
	if got := src.jobConclusion(106); got != "failure" {
		t.Errorf("job conclusion = %q", got)
	}
}

func TestStepAlwaysAfterCancel(t *testing.T) {
	t.Parallel()
	job := wfJob(107,
		protocol.Step{Run: "echo started\nwait-stop"},
		protocol.Step{Run: "echo never"},
		protocol.Step{If: "always()", Run: "echo cleanup ${{ job.status }}"},
		protocol.Step{If: "cancelled()", Run: "echo was cancelled"},
		protocol.Step{If: "failure()", Run: "echo never"},
	)
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	done := startJob(ex, job)
	waitUntil(t, "the step's output", func() bool { return src.log(t, job.Steps[1].ID) == "started\n" })
	ex.Cancel(107)
	<-done
	if got := src.jobConclusion(107); got != "cancelled" {
		t.Errorf("job conclusion = %q, want cancelled", got)
	}
	want := []string{"running,success", "running,cancelled", "skipped", "running,success", "running,success", "skipped"}
	if got := statuses(src, job); !slices.Equal(got, want) {
		t.Errorf("step statuses:\n got %q\nwant %q", got, want)
	}
	if got := src.log(t, job.Steps[3].ID); got != "cleanup cancelled\n" {
		t.Errorf("log = %q", got)
	}
	if len(fe.commands(t, "stop")) != 1 || len(fe.commands(t, "start")) != 1 {
		t.Errorf("want one docker stop and one docker start after it: %v", fe.calls(t))
	}

	// The time for the steps after a cancel is bounded.
	job = wfJob(108,
		protocol.Step{Run: "echo started\nwait-stop"},
		protocol.Step{If: "always()", Run: "echo cleanup\nwait-stop"},
		protocol.Step{If: "always()", Run: "echo never"},
	)
	src = newFakeSource()
	ex, _ = newTestExecutor(t, src)
	done = startJob(ex, job)
	waitUntil(t, "the step's output", func() bool { return src.log(t, job.Steps[1].ID) == "started\n" })
	ex.Cancel(108)
	waitUntil(t, "the always() step", func() bool { return src.log(t, job.Steps[2].ID) == "cleanup\n" })
	ex.mu.Lock()
	j := ex.jobs[108]
	ex.mu.Unlock()
	j.mu.Lock()
	j.forceTimer.Reset(0) // what the timer does when cancelTimeout is up
	j.mu.Unlock()
	<-done
	want = []string{"running,success", "running,cancelled", "running,cancelled", "skipped"}
	if got := statuses(src, job); !slices.Equal(got, want) {
		t.Errorf("step statuses:\n got %q\nwant %q", got, want)
	}
}

func TestStepShells(t *testing.T) {
	t.Parallel()
	job := wfJob(109,
		protocol.Step{Run: "shell"},
		protocol.Step{Run: "shell", Shell: "bash"},
		protocol.Step{Run: "shell", Shell: "python"},
		protocol.Step{Run: "shell", Shell: "pwsh"},
		protocol.Step{Run: "shell", Shell: "perl -w {0}"},
		protocol.Step{Run: "shell", Shell: "${{ 'sh' }}"},
		protocol.Step{Run: "shell", Shell: "fish"},
		protocol.Step{If: "always()", Run: "pwd\nscript", WorkingDirectory: "${{ matrix.go }}"},
		protocol.Step{If: "always()", Kind: "uses", Uses: "actions/setup-go@v5", With: map[string]string{"go-version": "1.22"}},
	)
	job.Defaults = workflow.RunDefaults{Shell: "bash", WorkingDirectory: "default/dir"}
	src := newFakeSource()
	ex, _ := newTestExecutor(t, src)
	ex.runJob(job)
	want := []string{
		"bash --noprofile --norc -e -o pipefail {0}\n", // defaults.run.shell
		"bash --noprofile --norc -e -o pipefail {0}\n",
		"python {0}\n",
		`pwsh -command . '{0}'` + "\n",
		"perl -w {0}\n",
		"sh -e {0}\n",
		"##[error]Invalid shell option. Shell must be a valid built-in (bash, sh, cmd, powershell, pwsh) or a format string containing '{0}'\n",
		"/workspace/1.22\n/tmp/_shithub/temp/_runner_file_commands/10908/script.sh\n",
		"##[error]cannot fetch actions/setup-go@v5: this runner has no data directory for actions (--data-dir)\n",
	}
	for i, w := range want {
		if got := src.log(t, job.Steps[i+1].ID); got != w {
			t.Errorf("step %d log = %q, want %q", i+1, got, w)
		}
	}

	// In a job container of the workflow's choosing the default is sh.
	job = wfJob(110, protocol.Step{Run: "shell\npwd"})
	job.Container = &workflow.ContainerSpec{Image: "alpine:3"}
	job.Defaults = workflow.RunDefaults{WorkingDirectory: "/abs"}
	src = newFakeSource()
	ex, _ = newTestExecutor(t, src)
	ex.runJob(job)
	if got := src.log(t, job.Steps[1].ID); got != "sh -e {0}\n/abs\n" {
		t.Errorf("container job log = %q", got)
	}
}

func TestStepLegacyClaim(t *testing.T) {
	t.Parallel()
	// An old claim: no contexts, so ${{ }} stays as written.
	job := testJob(111, "echo ${{ github.sha }}")
	src := newFakeSource()
	ex, _ := newTestExecutor(t, src)
	ex.runJob(job)
	if got := src.log(t, job.Steps[2].ID); got != "${{ github.sha }}\n" {
		t.Errorf("log = %q", got)
	}
	if got := src.jobConclusion(111); got != "success" {
		t.Errorf("job conclusion = %q", got)
	}
}

func TestStepHashFiles(t *testing.T) {
	t.Parallel()
	job := wfJob(112,
		protocol.Step{Run: "echo ${{ hashFiles('**/go.sum', '!vendor/**') }}"},
		protocol.Step{Run: "echo [${{ hashFiles('nothing/*') }}]"},
	)
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	fe.set(t, "find-output", strings.Join([]string{"./vendor/x/go.sum", "./b/go.sum", "./go.sum", "./a-c/go.sum", "./a/go.sum", "./README"}, "\x00")+"\x00")
	ex.runJob(job)
	total := sha256.New()
	for _, f := range []string{"a/go.sum", "a-c/go.sum", "b/go.sum", "go.sum"} { // a walk's order
		sum := sha256.Sum256([]byte("content of " + f))
		total.Write(sum[:])
	}
	if got, want := src.log(t, job.Steps[1].ID), hex.EncodeToString(total.Sum(nil))+"\n"; got != want {
		t.Errorf("hashFiles = %q, want %q", got, want)
	}
	if got := src.log(t, job.Steps[2].ID); got != "[]\n" {
		t.Errorf("hashFiles of nothing = %q", got)
	}
}

func TestGlobSelect(t *testing.T) {
	t.Parallel()
	files := []string{"go.mod", "go.sum", "a/go.sum", "a/b/c.txt", "vendor/m/go.sum", ".hidden/x", "docs/readme.md"}
	tests := []struct {
		patterns []string
		want     []string
	}{
		{[]string{"**/go.sum"}, []string{"a/go.sum", "go.sum", "vendor/m/go.sum"}},
		{[]string{"**/go.sum\n!vendor/**"}, []string{"a/go.sum", "go.sum"}},
		{[]string{"!vendor/**", "**/go.sum"}, []string{"a/go.sum", "go.sum", "vendor/m/go.sum"}},
		{[]string{"a"}, []string{"a/b/c.txt", "a/go.sum"}}, // a directory brings its files
		{[]string{"*"}, []string{".hidden/x", "a/b/c.txt", "a/go.sum", "docs/readme.md", "go.mod", "go.sum", "vendor/m/go.sum"}},
		{[]string{"/workspace/go.*"}, []string{"go.mod", "go.sum"}},
		{[]string{"/etc/passwd", "# comment", ""}, nil},
		{[]string{"go.[!m]*"}, []string{"go.sum"}},
	}
	for _, tc := range tests {
		if got := globSelect(parseGlobPatterns(tc.patterns), files); !slices.Equal(got, tc.want) {
			t.Errorf("globSelect(%q) = %q, want %q", tc.patterns, got, tc.want)
		}
	}
}

func TestStepServices(t *testing.T) {
	t.Parallel()
	job := wfJob(113,
		protocol.Step{Run: "echo ${{ job.services.db.ports['5432'] }} ${{ job.services.db.id }}"},
	)
	job.Services = map[string]*workflow.ContainerSpec{
		"db": {Image: "postgres:16", Env: map[string]string{"POSTGRES_PASSWORD": "pw-secret"}, Ports: []string{"5432"},
			Options: `--health-cmd "pg_isready -U postgres" --health-interval=1s`},
	}
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	fe.set(t, "health-shithub-actions-test-113-svc-db", "starting\nstarting\nhealthy")
	ex.runJob(job)
	if got := src.jobConclusion(113); got != "success" {
		t.Fatalf("job conclusion = %q; set-up log %q", got, src.log(t, job.Steps[0].ID))
	}
	if got := src.log(t, job.Steps[1].ID); got != "49153 shithub-actions-test-113-svc-db\n" {
		t.Errorf("log = %q", got)
	}
	runs := fe.commands(t, "run") // the services; the job's container counts as a create
	if len(runs) != 1 {
		t.Fatalf("docker runs = %v", runs)
	}
	svc := strings.Join(runs[0].Args, " ")
	for _, s := range []string{"--name shithub-actions-test-113-svc-db", "--network shithub-actions-test-113 --network-alias db", "--cap-drop ALL",
		"-p 127.0.0.1::5432", "--health-cmd=pg_isready -U postgres", "--health-interval=1s", "--env-file ", "-- postgres:16"} {
		if !strings.Contains(svc, s) {
			t.Errorf("service run %q lacks %q", svc, s)
		}
	}
	if strings.Contains(svc, "pw-secret") {
		t.Errorf("a service's env value in argv: %q", svc)
	}
	if creates := fe.commands(t, "create"); len(creates) != 1 || !strings.Contains(strings.Join(creates[0].Args, " "), "--network shithub-actions-test-113 ") {
		t.Errorf("job container not on the network: %q", creates)
	}
	var tail []string
	for _, c := range fe.jobCalls(t) {
		if c.Args[0] == "rm" || c.Args[0] == "network" {
			tail = append(tail, strings.Join(c.Args, " "))
		}
	}
	wantTail := []string{"network create --label shithub-actions.instance=test --label shithub-actions.run=7 --label shithub-actions.job=113 shithub-actions-test-113",
		"network inspect -f {{range .IPAM.Config}}{{.Gateway}} {{end}} shithub-actions-test-113",
		"rm -f -v shithub-actions-test-113", "rm -f -v shithub-actions-test-113-svc-db", "network rm shithub-actions-test-113"}
	if !slices.Equal(tail, wantTail) {
		t.Errorf("network and rm calls:\n got %q\nwant %q", tail, wantTail)
	}
	if entries, _ := filepath.Glob(filepath.Join(ex.cfg.WorkDir, "*-env-*")); len(entries) != 0 {
		t.Errorf("env files left behind: %v", entries)
	}

	// Refused options and an unhealthy service fail Set up job.
	for i, tc := range []struct {
		svc    workflow.ContainerSpec
		health string
		want   string
	}{
		{workflow.ContainerSpec{Image: "x", Options: "--privileged"}, "", "--privileged is not allowed here"},
		{workflow.ContainerSpec{Image: "x", Options: "--network=host"}, "", "--network is not allowed here"},
		{workflow.ContainerSpec{Image: "x", Volumes: []string{"/etc:/host-etc"}}, "", "a volume's source must be the workspace itself"},
		{workflow.ContainerSpec{Image: "x", Ports: []string{"0.0.0.0:80:80"}}, "", "only 127.0.0.1 may be a host address"},
		{workflow.ContainerSpec{Image: "x"}, "starting\nunhealthy", "the service's health check says unhealthy"},
	} {
		job := wfJob(int64(120+i), protocol.Step{Run: "echo never"})
		job.Services = map[string]*workflow.ContainerSpec{"svc": &tc.svc}
		src := newFakeSource()
		ex, fe := newTestExecutor(t, src)
		if tc.health != "" {
			fe.set(t, fmt.Sprintf("health-shithub-actions-test-%d-svc-svc", job.JobID), tc.health)
		}
		ex.runJob(job)
		if got := src.jobConclusion(job.JobID); got != "failure" {
			t.Errorf("%+v: job conclusion = %q", tc.svc, got)
		}
		if got := src.log(t, job.Steps[0].ID); !strings.Contains(got, tc.want) {
			t.Errorf("%+v: Set up job log %q lacks %q", tc.svc, got, tc.want)
		}
		if n := len(fe.commands(t, "network")); n != 3 {
			t.Errorf("%+v: network calls = %d, want create, inspect and rm", tc.svc, n)
		}
	}
}

func TestResolveShell(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opt       string
		def       string
		container bool
		want      []string
		err       string
	}{
		{"", "/usr/bin/bash", false, []string{"/usr/bin/bash", "-e", "F"}, ""},
		{"", "/usr/bin/bash", true, []string{"sh", "-e", "F"}, ""},
		{"bash", "sh", false, []string{"bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "F"}, ""},
		{"sh", "", false, []string{"sh", "-e", "F"}, ""},
		{"python", "", false, []string{"python", "F"}, ""},
		{"pwsh", "", false, []string{"pwsh", "-command", ". 'F'"}, ""},
		{`node --eval "require('{0}')"`, "", false, []string{"node", "--eval", "require('F')"}, ""},
		{"bash -x {0}", "", false, []string{"bash", "-x", "F"}, ""},
		{"ruby", "", false, nil, "Invalid shell option"},
		{"cmd", "", false, nil, "Windows"},
		{`x "{0}`, "", false, nil, "unterminated quote"},
	}
	for _, tc := range tests {
		got, err := resolveShell(tc.opt, tc.def, tc.container, "F")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveShell(%q) error = %v, want %q", tc.opt, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.argv, tc.want) {
			t.Errorf("resolveShell(%q) = %q, %v; want %q", tc.opt, got.argv, err, tc.want)
		}
	}
}

func TestParseContainerOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts    string
		service bool
		want    []string
		err     string
	}{
		{`--health-cmd "redis-cli ping" --health-interval 10s --health-retries=5`, true,
			[]string{"--health-cmd=redis-cli ping", "--health-interval=10s", "--health-retries=5"}, ""},
		{"--entrypoint redis-server --user 1000", true, []string{"--entrypoint=redis-server", "--user=1000"}, ""},
		{"--entrypoint sh", false, nil, "--entrypoint is not allowed"},
		{"--privileged", true, nil, "not allowed"},
		{"--cap-add ALL", true, nil, "not allowed"},
		{"-v /:/host", true, nil, "not allowed"},
		{"--health-cmd", true, nil, "needs a value"},
		{"--no-healthcheck", true, []string{"--no-healthcheck"}, ""},
		{"", true, nil, ""},
	}
	for _, tc := range tests {
		got, err := parseContainerOptions(tc.opts, tc.service)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseContainerOptions(%q) error = %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseContainerOptions(%q) = %q, %v; want %q", tc.opts, got, err, tc.want)
		}
	}
}
