package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseWorkflowFull(t *testing.T) {
	data, err := os.ReadFile("testdata/workflows/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseWorkflow("full.yml", data)
	if err != nil {
		t.Fatalf("parseWorkflow(full.yml): %v", err)
	}
	want := &Workflow{
		Name: "CI",
		Push: &PushTrigger{
			Branches:    []string{"main", "release/**", "!release/old"},
			Tags:        []string{"v*"},
			PathsIgnore: []string{"docs/**"},
		},
		Dispatch: &DispatchTrigger{Inputs: []DispatchInput{
			{Name: "env", Description: "Target environment", Type: "choice", Required: true, Options: []string{"staging", "production"}},
			{Name: "dry-run", Type: "boolean", Default: "true"},
			{Name: "count", Type: "number", Default: "3"},
			{Name: "note", Description: "Free text", Type: "string"},
		}},
		Env: map[string]string{"GOFLAGS": "-mod=mod", "CGO_ENABLED": "0", "VERBOSE": "true"},
		Jobs: []*WorkflowJob{
			{
				Key:            "build",
				Name:           "Build and test",
				RunsOn:         []string{"self-hosted", "linux"},
				Env:            map[string]string{"GOOS": "linux"},
				TimeoutMinutes: 30,
				Steps: []WorkflowStep{
					{Name: "Run actions/checkout@v4", Uses: "actions/checkout@v4"},
					{Name: "Test", Run: "go vet ./...\ngo test ./...\n", WorkingDirectory: "src", Env: map[string]string{"CI": "1"}},
				},
			},
			{
				Key:            "deploy",
				Name:           "deploy",
				Image:          "alpine:3.20",
				Needs:          []string{"build"},
				TimeoutMinutes: 360,
				Steps: []WorkflowStep{
					{Name: "Run ./deploy.sh --env prod", Run: "  ./deploy.sh --env prod  \n  echo done"},
				},
			},
		},
	}
	if got.Name != want.Name || !reflect.DeepEqual(got.Push, want.Push) ||
		!reflect.DeepEqual(got.Dispatch, want.Dispatch) || !reflect.DeepEqual(got.Env, want.Env) {
		t.Errorf("parseWorkflow(full.yml) =\n%+v %+v %+v %+v\nwant\n%+v %+v %+v %+v",
			got.Name, got.Push, got.Dispatch, got.Env, want.Name, want.Push, want.Dispatch, want.Env)
	}
	if len(got.Jobs) != len(want.Jobs) {
		t.Fatalf("parseWorkflow(full.yml): %d jobs, want %d", len(got.Jobs), len(want.Jobs))
	}
	for i := range want.Jobs {
		if !reflect.DeepEqual(got.Jobs[i], want.Jobs[i]) {
			t.Errorf("parseWorkflow(full.yml): job %d =\n%+v\nwant\n%+v", i, got.Jobs[i], want.Jobs[i])
		}
	}
}

func TestParseWorkflowValid(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(*Workflow) string // "" when fine
	}{
		{"default name is file name", "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: true}]\n", func(w *Workflow) string {
			if w.Name != "ok.yml" || w.Dispatch != nil || !reflect.DeepEqual(w.Push, &PushTrigger{}) {
				return "want name ok.yml, empty push trigger, no dispatch"
			}
			if w.Jobs[0].Steps[0].Run != "true" {
				return "boolean run should keep its text"
			}
			return ""
		}},
		{"event list", "on: [push, workflow_dispatch]\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n", func(w *Workflow) string {
			if w.Push == nil || w.Dispatch == nil || w.Dispatch.Inputs != nil {
				return "want both triggers, no inputs"
			}
			return ""
		}},
		{"null events and env", "on:\n  push:\n  workflow_dispatch:\nenv:\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x, env: {E: }}]\n", func(w *Workflow) string {
			if w.Push == nil || w.Dispatch == nil || w.Env != nil || w.Jobs[0].Steps[0].Env["E"] != "" {
				return "want both triggers and an empty E"
			}
			return ""
		}},
		{"container string and anchors", "on: push\njobs:\n  a:\n    container: img\n    steps: &s\n      - run: echo hi\n  b:\n    runs-on: x\n    steps: *s\n", func(w *Workflow) string {
			if w.Jobs[0].Image != "img" || w.Jobs[1].Steps[0].Name != "Run echo hi" {
				return "want image img and aliased steps"
			}
			return ""
		}},
		{"jobs keep file order", "on: push\njobs:\n  z:\n    runs-on: x\n    steps: [{run: x}]\n  a:\n    runs-on: x\n    needs: z\n    steps: [{run: x}]\n  m:\n    runs-on: x\n    needs: [a, z]\n    steps: [{run: x}]\n", func(w *Workflow) string {
			var keys []string
			for _, j := range w.Jobs {
				keys = append(keys, j.Key)
			}
			if strings.Join(keys, ",") != "z,a,m" {
				return "order " + strings.Join(keys, ",")
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := parseWorkflow("ok.yml", []byte(tt.src))
			if err != nil {
				t.Fatalf("parseWorkflow(ok.yml): %v", err)
			}
			if msg := tt.check(w); msg != "" {
				t.Errorf("parseWorkflow(ok.yml): %s", msg)
			}
		})
	}
}

func TestParseWorkflowFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/workflows/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseWorkflow(filepath.Base(f), data); err != nil {
				t.Errorf("parseWorkflow(%s): %v", f, err)
			}
		})
	}
}

func TestParseWorkflowErrors(t *testing.T) {
	const steps = "    steps:\n      - run: x\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty file", "", "bad.yml: empty workflow file"},
		{"only comments", "# nothing\n", "bad.yml: empty workflow file"},
		{"syntax error", "on: push\njobs:\n  a: [\n", "bad.yml:3: did not find expected node content"},
		{"bad indentation", "on: push\njobs:\n  a:\n    runs-on: x\n   steps: y\n", "bad.yml:2: did not find expected key"},
		{"non-map document", "- on\n- jobs\n", "bad.yml:1: workflow must be a mapping"},
		{"scalar document", "hello\n", "bad.yml:1: workflow must be a mapping"},
		{"two documents", "on: push\n---\njobs: {}\n", "bad.yml:2: more than one YAML document"},
		{"unknown top key", "on: push\npermissions: read\n", `bad.yml:2: unknown key "permissions" in workflow`},
		{"duplicate top key", "on: push\nname: a\nname: b\n", `bad.yml:3: duplicate key "name" in workflow`},
		{"missing on", "jobs:\n  a:\n    runs-on: x\n" + steps, `bad.yml:1: missing "on"`},
		{"missing jobs", "on: push\n", `bad.yml:1: missing "jobs"`},
		{"empty jobs", "on: push\njobs: {}\n", "bad.yml:2: jobs must not be empty"},
		{"null jobs", "on: push\njobs:\n", "bad.yml:2: jobs must not be empty"},
		{"bad event", "on: pull_request\n", `bad.yml:1: unsupported event "pull_request"`},
		{"bad event in list", "on:\n  - push\n  - schedule\n", `bad.yml:3: unsupported event "schedule"`},
		{"bad event in map", "on:\n  push:\n  issues:\n", `bad.yml:3: unsupported event "issues"`},
		{"duplicate event", "on: [push, push]\n", `bad.yml:1: duplicate event "push"`},
		{"empty on map", "on: {}\n", "bad.yml:1: on must name at least one event"},
		{"unknown push key", "on:\n  push:\n    branch: main\n", `bad.yml:3: unknown key "branch" in on.push`},
		{"branches and branches-ignore", "on:\n  push:\n    branches: [main]\n    branches-ignore: [dev]\n", "bad.yml:4: on.push cannot have both branches and branches-ignore"},
		{"tags and tags-ignore", "on:\n  push:\n    tags-ignore: [v1]\n    tags: [v2]\n", "bad.yml:4: on.push cannot have both tags and tags-ignore"},
		{"paths and paths-ignore", "on:\n  push:\n    paths: [a]\n    paths-ignore: [b]\n", "bad.yml:4: on.push cannot have both paths and paths-ignore"},
		{"empty branch list", "on:\n  push:\n    branches: []\n", "bad.yml:3: on.push.branches must be a string or a non-empty list"},
		{"bad dispatch key", "on:\n  workflow_dispatch:\n    input: {}\n", `bad.yml:3: unknown key "input" in on.workflow_dispatch`},
		{"bad input key", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        kind: x\n", `bad.yml:5: unknown key "kind" in input "a"`},
		{"bad input type", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: environment\n", `bad.yml:5: type of input "a" must be`},
		{"choice without options", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: choice\n", `bad.yml:5: choice input "a" needs options`},
		{"options without choice", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        options: [x]\n", `bad.yml:5: options of input "a" require type: choice`},
		{"bad choice default", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: choice\n        options: [x, y]\n        default: z\n", `bad.yml:7: default of input "a": must be one of x, y`},
		{"bad boolean default", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: boolean\n        default: yes\n", `bad.yml:6: default of input "a": must be true or false`},
		{"bad required", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        required: sure\n", `bad.yml:5: required of input "a" must be true or false`},
		{"bad env name", "on: push\nenv:\n  OK: 1\n  BAD-NAME: 2\n", `bad.yml:4: invalid variable name "BAD-NAME" in env`},
		{"env not scalar", "on: push\nenv:\n  A: [1]\n", "bad.yml:3: env.A must be a string, number or boolean"},
		{"bad job id", "on: push\njobs:\n  1job:\n    runs-on: x\n" + steps, `bad.yml:3: invalid job id "1job"`},
		{"unknown job key", "on: push\njobs:\n  build:\n    runs-on: x\n    strategy: {}\n" + steps, `bad.yml:5: unknown key "strategy" in job "build"`},
		{"duplicate job key", "on: push\njobs:\n  build:\n    runs-on: x\n    runs-on: y\n" + steps, `bad.yml:5: duplicate key "runs-on" in job "build"`},
		{"duplicate job", "on: push\njobs:\n  a:\n    runs-on: x\n" + steps + "  a:\n    runs-on: x\n" + steps, `bad.yml:7: duplicate key "a" in jobs`},
		{"no runs-on or container", "on: push\njobs:\n  build:\n" + steps, `bad.yml:3: job "build" must have runs-on or container`},
		{"no steps", "on: push\njobs:\n  build:\n    runs-on: x\n", `bad.yml:3: job "build" has no steps`},
		{"empty steps", "on: push\njobs:\n  build:\n    runs-on: x\n    steps: []\n", `bad.yml:5: steps of job "build" must be a non-empty list`},
		{"container map extra key", "on: push\njobs:\n  a:\n    container:\n      image: x\n      ports: [80]\n" + steps, `bad.yml:6: unknown key "ports" in container of job "a"`},
		{"container without image", "on: push\njobs:\n  a:\n    container: {}\n" + steps, `bad.yml:4: container of job "a" must have an image`},
		{"needs unknown job", "on: push\njobs:\n  a:\n    runs-on: x\n    needs: [b]\n" + steps, `bad.yml:5: job "a" needs unknown job "b"`},
		{"needs itself", "on: push\njobs:\n  a:\n    runs-on: x\n    needs: a\n" + steps, `bad.yml:5: job "a" needs itself`},
		{"needs cycle", "on: push\njobs:\n  a:\n    runs-on: x\n    needs: c\n" + steps + "  b:\n    runs-on: x\n    needs: a\n" + steps + "  c:\n    runs-on: x\n    needs: b\n" + steps,
			"bad.yml:10: needs cycle: a -> c -> b -> a"},
		{"needs twice", "on: push\njobs:\n  a:\n    runs-on: x\n" + steps + "  b:\n    runs-on: x\n    needs: [a, a]\n" + steps, `bad.yml:9: job "b" lists "a" twice`},
		{"zero timeout", "on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: 0\n" + steps, `bad.yml:5: timeout-minutes of job "a" must be a whole number from 1 to 4320`},
		{"timeout over 72 hours", "on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: 4321\n" + steps, `bad.yml:5: timeout-minutes of job "a" must be a whole number from 1 to 4320`},
		{"float timeout", "on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: 1.5\n" + steps, `bad.yml:5: timeout-minutes of job "a" must be a whole number from 1 to 4320`},
		{"huge timeout", "on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: 99999999999999999999\n" + steps, `bad.yml:5: timeout-minutes`},
		{"unknown step key", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n      - run: y\n        shell: bash\n", `bad.yml:8: unknown key "shell" in step 2 of job "a"`},
		{"duplicate step key", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n        run: y\n", `bad.yml:7: duplicate key "run" in step 1 of job "a"`},
		{"run and uses", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n        uses: actions/checkout@v4\n", `bad.yml:6: step 1 of job "a" has both run and uses`},
		{"neither run nor uses", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - name: x\n", `bad.yml:6: step 1 of job "a" must have run or uses`},
		{"empty run", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: \"  \"\n", `bad.yml:6: run of step 1 of job "a" must not be empty`},
		{"unsupported action", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: actions/setup-go@v5\n", `bad.yml:6: unsupported action "actions/setup-go@v5"`},
		{"checkout without ref", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: actions/checkout@\n", `bad.yml:6: unsupported action "actions/checkout@"`},
		{"bad step env", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n        env:\n          1X: y\n", `bad.yml:8: invalid variable name "1X" in env of step 1 of job "a"`},
		{"step not a map", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - echo hi\n", `bad.yml:6: step 1 of job "a" must be a mapping`},
		{"merge key", "on: push\njobs:\n  a:\n    <<: {runs-on: x}\n" + steps, `bad.yml:4: unknown key "<<" in job "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := parseWorkflow("bad.yml", []byte(tt.src))
			if err == nil {
				t.Fatalf("parseWorkflow(bad.yml) = %+v, want error containing %q", w, tt.want)
			}
			if _, ok := err.(*workflowError); !ok {
				t.Errorf("parseWorkflow(bad.yml): err is %T, want *workflowError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseWorkflow(bad.yml): err = %v, want substring %q", err, tt.want)
			}
		})
	}
}

// TestParseWorkflowLimits: a workflow that would make a huge run is an
// error naming the file, found before anything is stored.
func TestParseWorkflowLimits(t *testing.T) {
	var b strings.Builder
	job := func(id string, steps int) {
		fmt.Fprintf(&b, "  %s:\n    runs-on: x\n    timeout-minutes: 4320\n    steps:\n", id)
		for range steps {
			b.WriteString("      - run: x\n")
		}
	}
	src := func(build func()) string {
		b.Reset()
		b.WriteString("on: push\njobs:\n")
		build()
		return b.String()
	}
	// The attack: one anchored job of 1,000 steps, aliased by
	// 1,000 jobs, in about 20 KB.
	bomb := "on: push\njobs:\n  j0: &j\n    runs-on: x\n    steps:\n      - &s {run: x}\n" +
		strings.Repeat("      - *s\n", 999)
	for i := 1; i < 1000; i++ {
		bomb += fmt.Sprintf("  j%d: *j\n", i)
	}
	// The classic one: nested lists of aliases.
	laughs := "on: push\nenv: {A: x}\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n  b:\n    runs-on: x\n    steps: &l0 [{run: x}]\n"
	for i := 1; i <= 6; i++ {
		laughs += fmt.Sprintf("  c%d:\n    runs-on: x\n    steps: &l%d [", i, i) + strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", ") + "]\n"
	}
	tests := []struct {
		name, src, want string
	}{
		{"file over 512 KiB", "on: push\n# " + strings.Repeat("x", maxWorkflowBytes) + "\n", "big.yml: the file is 524300 bytes; a workflow file may have at most 524288 (512 KiB)"},
		{"alias bomb", bomb, "big.yml:1: YAML aliases expand this workflow from"},
		{"billion laughs", laughs, "big.yml:1: YAML aliases expand this workflow from"},
		{"257 jobs", src(func() {
			for i := range 257 {
				job(fmt.Sprintf("j%d", i), 1)
			}
		}), "big.yml:3: jobs has 257 jobs; a run may have at most 256"},
		{"1001 steps", src(func() { job("a", 1001) }), `big.yml:7: steps of job "a" has 1001 steps; a job may have at most 1000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			w, err := parseWorkflow("big.yml", []byte(tt.src))
			if err == nil {
				t.Fatalf("parseWorkflow(big.yml) = %d jobs, want error containing %q", len(w.Jobs), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseWorkflow(big.yml): err = %v, want substring %q", err, tt.want)
			}
			t.Logf("%d bytes refused in %v: %v", len(tt.src), time.Since(start), err)
		})
	}
	// At the limits, and with aliases used as people use them, it parses.
	for name, ok := range map[string]string{
		"256 jobs": src(func() {
			for i := range 256 {
				job(fmt.Sprintf("j%d", i), 1)
			}
		}),
		"1000 steps": src(func() { job("a", 1000) }),
		"shared env and steps": "on: push\nenv: &e {A: x, B: y}\njobs:\n  a:\n    runs-on: x\n    env: *e\n    steps: &s [{run: make}, {run: make test}]\n" +
			"  b:\n    runs-on: x\n    env: *e\n    steps: *s\n  c:\n    runs-on: x\n    steps: *s\n",
	} {
		if _, err := parseWorkflow("ok.yml", []byte(ok)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"main", "main", true},
		{"main", "mainx", false},
		{"*", "feature", true},
		{"*", "feature/x", false},
		{"*", "", true},
		{"feature/*", "feature/a", true},
		{"feature/*", "feature/a/b", false},
		{"feature/**", "feature/a/b", true},
		{"**", "a/b/c", true},
		{"**.go", "cmd/x/main.go", true},
		{"*.go", "cmd/main.go", false},
		{"docs/**/*.md", "docs/a/b/x.md", true},
		{"docs/**/*.md", "docs/x.md", true},
		{"**/README.md", "README.md", true},
		{"**/README.md", "a/README.md", true},
		{"v?", "v1", true},
		{"v?", "v10", false},
		{"a?b", "a/b", false},
		{"v1.*", "v1.2", true},
		{"v1.*", "v12", false},
		{"ü?", "üß", true},
		{"***", "a/b", true},
		{"a*b*c*d*e*f*g", strings.Repeat("a", 40) + "b", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestPushMatches(t *testing.T) {
	tests := []struct {
		name    string
		trigger *PushTrigger
		ref     string
		changed []string
		want    bool
	}{
		{"nil trigger", nil, "refs/heads/main", nil, false},
		{"no filter branch", &PushTrigger{}, "refs/heads/main", nil, true},
		{"no filter tag", &PushTrigger{}, "refs/tags/v1", nil, true},
		{"not a branch or tag", &PushTrigger{}, "refs/notes/x", nil, false},
		{"branches match", &PushTrigger{Branches: []string{"main", "release/*"}}, "refs/heads/release/1", nil, true},
		{"branches miss", &PushTrigger{Branches: []string{"main"}}, "refs/heads/dev", nil, false},
		{"branches-only skips tags", &PushTrigger{Branches: []string{"**"}}, "refs/tags/v1", nil, false},
		{"branches-ignore", &PushTrigger{BranchesIgnore: []string{"dev/**"}}, "refs/heads/dev/x/y", nil, false},
		{"branches-ignore other", &PushTrigger{BranchesIgnore: []string{"dev/**"}}, "refs/heads/main", nil, true},
		{"branches-ignore skips tags", &PushTrigger{BranchesIgnore: []string{"dev"}}, "refs/tags/v1", nil, false},
		{"negation excludes", &PushTrigger{Branches: []string{"release/**", "!release/**-alpha"}}, "refs/heads/release/1.0-alpha", nil, false},
		{"negation keeps others", &PushTrigger{Branches: []string{"release/**", "!release/**-alpha"}}, "refs/heads/release/1.0", nil, true},
		{"last match wins", &PushTrigger{Branches: []string{"!main", "main"}}, "refs/heads/main", nil, true},
		{"only negative", &PushTrigger{Branches: []string{"!dev"}}, "refs/heads/main", nil, false},
		{"ignore with negation", &PushTrigger{BranchesIgnore: []string{"dev/*", "!dev/keep"}}, "refs/heads/dev/keep", nil, true},
		{"tags match", &PushTrigger{Tags: []string{"v*"}}, "refs/tags/v1.2", nil, true},
		{"tags miss", &PushTrigger{Tags: []string{"v*"}}, "refs/tags/x1", nil, false},
		{"tags-only skips branches", &PushTrigger{Tags: []string{"*"}}, "refs/heads/main", nil, false},
		{"tags-ignore", &PushTrigger{TagsIgnore: []string{"*-rc*"}}, "refs/tags/v1-rc1", nil, false},
		{"tags-ignore other", &PushTrigger{TagsIgnore: []string{"*-rc*"}}, "refs/tags/v1", nil, true},
		{"branches and tags: branch", &PushTrigger{Branches: []string{"main"}, Tags: []string{"v*"}}, "refs/heads/main", nil, true},
		{"branches and tags: tag", &PushTrigger{Branches: []string{"main"}, Tags: []string{"v*"}}, "refs/tags/v2", nil, true},
		{"paths hit", &PushTrigger{Paths: []string{"src/**"}}, "refs/heads/main", []string{"README", "src/a/b.go"}, true},
		{"paths miss", &PushTrigger{Paths: []string{"src/**"}}, "refs/heads/main", []string{"README"}, false},
		{"paths no changes", &PushTrigger{Paths: []string{"src/**"}}, "refs/heads/main", []string{}, false},
		{"paths unknown changes", &PushTrigger{Paths: []string{"src/**"}}, "refs/heads/new", nil, true},
		{"paths ignored for tags", &PushTrigger{Paths: []string{"src/**"}}, "refs/tags/v1", []string{"README"}, true},
		{"paths-ignore all ignored", &PushTrigger{PathsIgnore: []string{"docs/**", "*.md"}}, "refs/heads/main", []string{"docs/a", "README.md"}, false},
		{"paths-ignore some kept", &PushTrigger{PathsIgnore: []string{"docs/**"}}, "refs/heads/main", []string{"docs/a", "main.go"}, true},
		{"paths-ignore unknown changes", &PushTrigger{PathsIgnore: []string{"**"}}, "refs/heads/main", nil, true},
		{"paths with negation", &PushTrigger{Paths: []string{"**.go", "!**_test.go"}}, "refs/heads/main", []string{"a_test.go"}, false},
		{"branch and paths", &PushTrigger{Branches: []string{"main"}, Paths: []string{"src/**"}}, "refs/heads/dev", []string{"src/a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.trigger.matches(tt.ref, tt.changed); got != tt.want {
				t.Errorf("%+v.matches(%q, %q) = %v, want %v", tt.trigger, tt.ref, tt.changed, got, tt.want)
			}
		})
	}
}

func TestDispatchResolve(t *testing.T) {
	d := &DispatchTrigger{Inputs: []DispatchInput{
		{Name: "env", Type: "choice", Required: true, Options: []string{"staging", "production"}},
		{Name: "dry-run", Type: "boolean"},
		{Name: "count", Type: "number", Default: "3"},
		{Name: "note", Type: "string", Default: "none"},
		{Name: "tag", Type: "string"},
	}}
	tests := []struct {
		name    string
		in      map[string]any
		want    map[string]string
		wantErr string
	}{
		{"defaults", map[string]any{"env": "staging"},
			map[string]string{"env": "staging", "dry-run": "false", "count": "3", "note": "none", "tag": ""}, ""},
		{"json types", map[string]any{"env": "production", "dry-run": true, "count": 2.5, "note": 7.0, "tag": false},
			map[string]string{"env": "production", "dry-run": "true", "count": "2.5", "note": "7", "tag": "false"}, ""},
		{"boolean as string", map[string]any{"env": "staging", "dry-run": "true", "count": "-1e3"},
			map[string]string{"env": "staging", "dry-run": "true", "count": "-1e3", "note": "none", "tag": ""}, ""},
		{"null is absent", map[string]any{"env": "staging", "note": nil},
			map[string]string{"env": "staging", "dry-run": "false", "count": "3", "note": "none", "tag": ""}, ""},
		{"missing required", map[string]any{}, nil, `input "env": required`},
		{"empty required", map[string]any{"env": ""}, nil, `input "env": required`},
		{"bad choice", map[string]any{"env": "dev"}, nil, `input "env": must be one of staging, production`},
		{"bad boolean", map[string]any{"env": "staging", "dry-run": "yes"}, nil, `input "dry-run": must be true or false`},
		{"bad number", map[string]any{"env": "staging", "count": "many"}, nil, `input "count": must be a number`},
		{"nan", map[string]any{"env": "staging", "count": "NaN"}, nil, `input "count": must be a number`},
		{"unknown input", map[string]any{"env": "staging", "zzz": 1, "aaa": 2}, nil, `unknown input "aaa"`},
		{"bad type", map[string]any{"env": []any{"staging"}}, nil, `input "env": must be a string, number or boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.resolve(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve(%v): err = %v, want substring %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolve(%v) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}

	t.Run("no inputs", func(t *testing.T) {
		var none *DispatchTrigger
		if got, err := none.resolve(nil); err != nil || len(got) != 0 {
			t.Errorf("nil.resolve(nil) = %v, %v; want empty", got, err)
		}
		if _, err := (&DispatchTrigger{}).resolve(map[string]any{"x": "1"}); err == nil {
			t.Errorf("resolve with undeclared input: err = nil, want error")
		}
	})
}

func TestIsWorkflowFile(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{".shithub/workflows/ci.yml", true},
		{".shithub/workflows/ci.yaml", true},
		{".shithub/workflows/a.b.yml", true},
		{".shithub/workflows/ci.json", false},
		{".shithub/workflows/.yml", false},
		{".shithub/workflows/sub/ci.yml", false},
		{"x/.shithub/workflows/ci.yml", false},
		{".github/workflows/ci.yml", false},
		{".shithub/workflows/", false},
	}
	for _, tt := range tests {
		if got := isWorkflowFile(tt.path); got != tt.want {
			t.Errorf("isWorkflowFile(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func FuzzParseWorkflow(f *testing.F) {
	files, _ := filepath.Glob("testdata/workflows/*.yml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("on: push\njobs:\n  a: &a\n    runs-on: x\n    steps: [*a]\n"))
	f.Add([]byte("on:\n  workflow_dispatch:\n    inputs:\n      a: {type: choice, options: [x], default: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := parseWorkflow("fuzz.yml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml:") {
				t.Fatalf("parseWorkflow(fuzz.yml): err = %q, want prefix %q", err, "fuzz.yml:")
			}
			return
		}
		if len(w.Jobs) == 0 {
			t.Fatalf("parseWorkflow(fuzz.yml) succeeded with no jobs")
		}
		for _, j := range w.Jobs {
			if len(j.Steps) == 0 {
				t.Fatalf("parseWorkflow(fuzz.yml): job %q has no steps", j.Key)
			}
		}
		// The trigger helpers must cope with whatever the parser accepts.
		w.Push.matches("refs/heads/main", []string{"a/b.go"})
		w.Push.matches("refs/tags/v1", nil)
		w.Dispatch.resolve(nil)
	})
}
