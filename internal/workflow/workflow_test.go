package workflow

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/expr"
)

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile("testdata/workflows/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("full.yml", data)
	if err != nil {
		t.Fatalf("Parse(full.yml): %v", err)
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
		Jobs: []*Job{
			{
				Key:            "build",
				Name:           "Build and test",
				RunsOn:         []string{"self-hosted", "linux"},
				Env:            map[string]string{"GOOS": "linux"},
				TimeoutMinutes: "30",
				Pos:            map[string]string{"name": "30:11", "runs-on": "31:14", "env": "33:7", "timeout-minutes": "34:22", "steps": "36:7"},
				Steps: []Step{
					{Name: "Run actions/checkout@v4", Uses: "actions/checkout@v4"},
					{Name: "Test", Run: "go vet ./...\ngo test ./...\n", WorkingDirectory: "src", Env: map[string]string{"CI": "1"}},
				},
			},
			{
				Key:       "deploy",
				Name:      "deploy",
				Container: &ContainerSpec{Image: "alpine:3.20"},
				Needs:     []string{"build"},
				Pos:       map[string]string{"container": "46:7", "needs": "47:12", "steps": "49:7"},
				Steps: []Step{
					{Name: "Run ./deploy.sh --env prod", Run: "  ./deploy.sh --env prod  \n  echo done"},
				},
			},
		},
	}
	if got.Name != want.Name || !reflect.DeepEqual(got.Push, want.Push) ||
		!reflect.DeepEqual(got.Dispatch, want.Dispatch) || !reflect.DeepEqual(got.Env, want.Env) {
		t.Errorf("Parse(full.yml) =\n%+v %+v %+v %+v\nwant\n%+v %+v %+v %+v",
			got.Name, got.Push, got.Dispatch, got.Env, want.Name, want.Push, want.Dispatch, want.Env)
	}
	if len(got.Jobs) != len(want.Jobs) {
		t.Fatalf("Parse(full.yml): %d jobs, want %d", len(got.Jobs), len(want.Jobs))
	}
	for i := range want.Jobs {
		if !reflect.DeepEqual(got.Jobs[i], want.Jobs[i]) {
			t.Errorf("Parse(full.yml): job %d =\n%+v\nwant\n%+v", i, got.Jobs[i], want.Jobs[i])
		}
	}
}

func TestParseValid(t *testing.T) {
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
			if w.Jobs[0].Image() != "img" || w.Jobs[1].Steps[0].Name != "Run echo hi" {
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
			w, err := Parse("ok.yml", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse(ok.yml): %v", err)
			}
			if msg := tt.check(w); msg != "" {
				t.Errorf("Parse(ok.yml): %s", msg)
			}
		})
	}
}

func TestParseFixtures(t *testing.T) {
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
			if _, err := Parse(filepath.Base(f), data); err != nil {
				t.Errorf("Parse(%s): %v", f, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const steps = "    steps:\n      - run: x\n"
	const job = "jobs:\n  a:\n    runs-on: x\n" + steps
	tests := []struct {
		name, src string
		want      []string // every problem, in order, as workflow check prints them
	}{
		{"empty file", "", []string{"bad.yml: empty workflow file"}},
		{"only comments", "# nothing\n", []string{"bad.yml: empty workflow file"}},
		{"syntax error", "on: push\njobs:\n  a: [\n", []string{"bad.yml:3: did not find expected node content"}},
		{"bad indentation", "on: push\njobs:\n  a:\n    runs-on: x\n   steps: y\n", []string{"bad.yml:2: did not find expected key"}},
		{"non-map document", "- on\n- jobs\n", []string{"bad.yml:1:1: workflow must be a mapping"}},
		{"two documents", "on: push\n---\njobs: {}\n", []string{"bad.yml:2:1: more than one YAML document"}},
		{"unknown top key and missing jobs", "on: push\nstrategy: x\n", []string{`bad.yml:1:1: missing "jobs"`, `bad.yml:2:1: unknown key "strategy" in workflow`}},
		{"duplicate top key", "on: push\nname: a\nname: b\n" + job, []string{`bad.yml:3:1: duplicate key "name" in workflow`}},
		{"missing on", job, []string{`bad.yml:1:1: missing "on"`}},
		{"empty jobs", "on: push\njobs: {}\n", []string{"bad.yml:2:7: jobs must not be empty"}},
		{"unknown event", "on: pull-request\n" + job, []string{`bad.yml:1:5: unknown event "pull-request" in on`}},
		{"unknown event in map", "on:\n  push:\n  issue:\n" + job, []string{`bad.yml:3:3: unknown event "issue" in on`}},
		{"duplicate event", "on: [push, push]\n" + job, []string{`bad.yml:1:12: duplicate event "push" in on`}},
		{"empty on map", "on: {}\n" + job, []string{"bad.yml:1:5: on must name at least one event"}},
		{"unknown push key", "on:\n  push:\n    branch: main\n" + job, []string{`bad.yml:3:5: unknown key "branch" in on.push`}},
		{"branches and branches-ignore", "on:\n  push:\n    branches: [main]\n    branches-ignore: [dev]\n" + job, []string{"bad.yml:4:5: on.push cannot have both branches and branches-ignore"}},
		{"pr paths and paths-ignore", "on:\n  pull_request:\n    paths: [a]\n    paths-ignore: [b]\n" + job, []string{"bad.yml:4:5: on.pull_request cannot have both paths and paths-ignore"}},
		{"pr bad type", "on:\n  pull_request:\n    types: [opened, merged]\n" + job, []string{`bad.yml:3:21: unknown activity type "merged" in on.pull_request.types`}},
		{"pr tags", "on:\n  pull_request_target:\n    tags: [v1]\n" + job, []string{`bad.yml:3:5: unknown key "tags" in on.pull_request_target`}},
		{"release bad type", "on:\n  release:\n    types: published\n  issues:\n    types: [opened, bogus]\n" + job, []string{`bad.yml:5:21: unknown activity type "bogus" in on.issues.types`}},
		{"event without types", "on:\n  fork:\n    types: [x]\n" + job, []string{`bad.yml:3:5: unknown key "types" in on.fork`}},
		{"schedule not a list", "on:\n  schedule:\n    cron: '* * * * *'\n" + job, []string{"bad.yml:3:5: on.schedule must be a non-empty list of {cron: ...}"}},
		{"bad cron", "on:\n  schedule:\n    - cron: '61 * * * *'\n" + job, []string{`bad.yml:3:13: cron expression "61 * * * *": minute field "61"`}},
		{"workflow_call input without type", "on:\n  workflow_call:\n    inputs:\n      x:\n        required: true\n" + job, []string{`bad.yml:4:7: on.workflow_call input "x" needs a type`}},
		{"bad dispatch key", "on:\n  workflow_dispatch:\n    input: {}\n" + job, []string{`bad.yml:3:5: unknown key "input" in on.workflow_dispatch`}},
		{"bad input type", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: date\n" + job, []string{`bad.yml:5:15: type of input "a" must be string, boolean, choice, number or environment`}},
		{"choice without options", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: choice\n" + job, []string{`bad.yml:5:9: choice input "a" needs options`}},
		{"bad choice default", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        type: choice\n        options: [x, y]\n        default: z\n" + job, []string{`bad.yml:7:18: default of input "a": must be one of x, y`}},
		{"bad env name", "on: push\nenv:\n  OK-1: 1\n  BAD=NAME: 2\n" + job, []string{`bad.yml:4:3: invalid variable name "BAD=NAME" in env`}},
		{"bad permissions", "on: push\npermissions:\n  contents: read\n  id-token: read\n  pull_requests: write\n" + job,
			[]string{"bad.yml:4:13: permissions.id-token must be write, none", `bad.yml:5:3: unknown permission scope "pull_requests" in permissions`}},
		{"bad job id", "on: push\njobs:\n  1job:\n    runs-on: x\n" + steps, []string{`bad.yml:3:3: invalid job id "1job"`}},
		{"unknown job key", "on: push\njobs:\n  build:\n    runs-on: x\n    strategies: {}\n" + steps, []string{`bad.yml:5:5: unknown key "strategies" in job "build"`}},
		{"no runs-on", "on: push\njobs:\n  build:\n" + steps, []string{`bad.yml:3:3: job "build" must have runs-on`}},
		{"no steps", "on: push\njobs:\n  build:\n    runs-on: x\n", []string{`bad.yml:3:3: job "build" has no steps`}},
		{"reusable with steps", "on: push\njobs:\n  c:\n    uses: o/r/.github/workflows/x.yml@v1\n" + steps, []string{`bad.yml:3:3: job "c" calls a reusable workflow and cannot have steps`}},
		{"reusable bad path", "on: push\njobs:\n  c:\n    uses: o/r@v1\n", []string{`bad.yml:4:11: uses of job "c" must be a reusable workflow`}},
		{"needs unknown job", "on: push\njobs:\n  a:\n    runs-on: x\n    needs: [b]\n" + steps, []string{`bad.yml:5:13: job "a" needs unknown job "b"`}},
		{"needs cycle", "on: push\njobs:\n  a:\n    runs-on: x\n    needs: c\n" + steps + "  b:\n    runs-on: x\n    needs: a\n" + steps + "  c:\n    runs-on: x\n    needs: b\n" + steps,
			[]string{"bad.yml:10:12: needs cycle: a -> c -> b -> a"}},
		{"zero timeout", "on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: 0\n" + steps, []string{`bad.yml:5:22: timeout-minutes of job "a" must be a positive number or an expression`}},
		{"timeout over 72 hours", "on: push\njobs:\n  a:\n    runs-on: x\n    timeout-minutes: 4321\n" + steps, []string{`bad.yml:5:22: timeout-minutes of job "a" must be a whole number from 1 to 4320`}},
		{"continue-on-error text", "on: push\njobs:\n  a:\n    runs-on: x\n    continue-on-error: maybe\n" + steps, []string{`bad.yml:5:24: continue-on-error of job "a" must be true, false or an expression`}},
		{"job if with steps context", "on: push\njobs:\n  a:\n    runs-on: x\n    if: steps.x.outcome == 'success'\n" + steps,
			[]string{"bad.yml:5:9: context 'steps' is not available in jobs.<job_id>.if at column 1 in expression `steps.x.outcome == 'success'`"}},
		{"runs-on with env context", "on: push\njobs:\n  a:\n    runs-on: ${{ env.OS }}\n" + steps,
			[]string{"bad.yml:4:14: context 'env' is not available in jobs.<job_id>.runs-on at column 1 in expression `env.OS`"}},
		{"workflow env with matrix", "on: push\nenv:\n  A: ${{ matrix.x }}\n" + job, []string{"bad.yml:3:6: context 'matrix' is not available in env"}},
		{"bad expression syntax", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ github.sha ) }}\n", []string{"bad.yml:6:14: "}},
		{"unclosed expression", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ github.sha\n", []string{"bad.yml:6:14: the expression is not closed"}},
		{"step if with hashFiles", "on: push\njobs:\n  a:\n    runs-on: x\n    outputs:\n      o: ${{ hashFiles('x') }}\n" + steps, []string{"bad.yml:6:10: function 'hashFiles' is not available in jobs.<job_id>.outputs.<output_id>"}},
		{"matrix empty vector", "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        os: []\n" + steps, []string{"bad.yml:7:9: matrix of strategy of job \"a\": Matrix vector 'os' does not contain any values"}},
		{"matrix not a list", "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        os: linux\n" + steps, []string{`bad.yml:7:13: matrix vector "os" of matrix of strategy of job "a" must be a list or an expression`}},
		{"matrix too big", "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        a: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n        b: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n" + steps,
			[]string{"bad.yml:7:9: matrix of strategy of job \"a\": matrix produces 289 jobs; at most 256 are allowed"}},
		{"bad strategy key", "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      fail_fast: false\n" + steps, []string{`bad.yml:6:7: unknown key "fail_fast" in strategy of job "a"`}},
		{"concurrency without group", "on: push\nconcurrency:\n  cancel-in-progress: true\n" + job, []string{"bad.yml:3:3: concurrency needs a group"}},
		{"step both run and uses", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n        uses: a/b@v1\n", []string{"bad.yml:6:9: step 1 of job \"a\" has both run and uses"}},
		{"step bad uses", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: actions/checkout\n", []string{"bad.yml:6:15: uses of step 1 of job \"a\" must be OWNER/REPO[/PATH]@REF, ./PATH or docker://IMAGE"}},
		{"step unknown key and dup id", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - id: s\n        run: x\n        timeout: 3\n      - id: S\n        run: y\n",
			[]string{`bad.yml:8:9: unknown key "timeout" in step 1 of job "a"`, `bad.yml:9:13: step id "S" is used twice in job "a"`}},
		{"several problems", "on:\n  push:\n    branch: main\njobs:\n  a:\n    runs-on: x\n    bogus: 1\n    steps:\n      - run: x\n        shel: bash\n",
			[]string{`bad.yml:3:5: unknown key "branch" in on.push`, `bad.yml:7:5: unknown key "bogus" in job "a"`, `bad.yml:10:9: unknown key "shel" in step 1 of job "a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, errs := Check("bad.yml", []byte(tt.src))
			if w != nil {
				t.Fatalf("Check(bad.yml) = %+v, want errors %q", w, tt.want)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Check(bad.yml): %d problems\n%s\nwant %d\n%s", len(got), strings.Join(got, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("Check(bad.yml): problem %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
			// Parse reports the first of them.
			if _, err := Parse("bad.yml", []byte(tt.src)); err == nil || err.Error() != got[0] {
				t.Errorf("Parse(bad.yml) = %v, want %q", err, got[0])
			}
		})
	}
}

// TestParseLimits: a workflow that would make a huge run is an
// error naming the file, found before anything is stored.
func TestParseLimits(t *testing.T) {
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
		{"file over 512 KiB", "on: push\n# " + strings.Repeat("x", MaxBytes) + "\n", "big.yml: the file is 524300 bytes; a workflow file may have at most 524288 (512 KiB)"},
		{"alias bomb", bomb, "big.yml:1:1: YAML aliases expand this workflow from"},
		{"billion laughs", laughs, "big.yml:1:1: YAML aliases expand this workflow from"},
		{"257 jobs", src(func() {
			for i := range 257 {
				job(fmt.Sprintf("j%d", i), 1)
			}
		}), "big.yml:3:3: jobs has 257 jobs; a run may have at most 256"},
		{"1001 steps", src(func() { job("a", 1001) }), `big.yml:7:7: steps of job "a" has 1001 steps; a job may have at most 1000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			w, err := Parse("big.yml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse(big.yml) = %d jobs, want error containing %q", len(w.Jobs), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(big.yml): err = %v, want substring %q", err, tt.want)
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
		if _, err := Parse("ok.yml", []byte(ok)); err != nil {
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
		if got := GlobMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("GlobMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
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
			if got := tt.trigger.Matches(tt.ref, tt.changed); got != tt.want {
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
			got, err := d.Resolve(tt.in)
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
		if got, err := none.Resolve(nil); err != nil || len(got) != 0 {
			t.Errorf("nil.resolve(nil) = %v, %v; want empty", got, err)
		}
		if _, err := (&DispatchTrigger{}).Resolve(map[string]any{"x": "1"}); err == nil {
			t.Errorf("resolve with undeclared input: err = nil, want error")
		}
	})
}

func TestIsFile(t *testing.T) {
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
		{".github/workflows/ci.yml", true},
		{".github/workflows/ci.yaml", true},
		{".github/workflows/sub/ci.yml", false},
		{".github/workflows/README.md", false},
		{".gitea/workflows/ci.yml", false},
		{"github/workflows/ci.yml", false},
		{".shithub/workflows/", false},
	}
	for _, tt := range tests {
		if got := IsFile(tt.path); got != tt.want {
			t.Errorf("IsFile(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
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
	f.Add([]byte("on: [pull_request, schedule]\njobs:\n  a:\n    runs-on: ${{ matrix.os }}\n    strategy: {matrix: {os: [a, b], include: [{os: c}]}}\n    if: ${{ needs.x.result }}\n    steps: [{id: s, run: '${{ steps.s.outputs.x }}'}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Parse("fuzz.yml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml:") {
				t.Fatalf("Parse(fuzz.yml): err = %q, want prefix %q", err, "fuzz.yml:")
			}
			return
		}
		if len(w.Jobs) == 0 {
			t.Fatalf("Parse(fuzz.yml) succeeded with no jobs")
		}
		for _, j := range w.Jobs {
			if len(j.Steps) == 0 && j.Uses == "" {
				t.Fatalf("Parse(fuzz.yml): job %q has no steps", j.Key)
			}
		}
		// The trigger helpers must cope with whatever the parser accepts.
		w.Push.Matches("refs/heads/main", []string{"a/b.go"})
		w.Push.Matches("refs/tags/v1", nil)
		w.Dispatch.Resolve(nil)
		w.PullRequest.Matches("opened", "main", []string{"a"})
		for _, j := range w.Jobs {
			if j.Strategy != nil && j.Strategy.Matrix != nil {
				EvalMatrix(j.Strategy.Matrix, &expr.Env{})
			}
		}
		// Every problem Check reports carries the file name.
		if _, errs := Check("fuzz.yml", data); errs != nil {
			t.Fatalf("Check found %v where Parse found none", errs)
		}
	})
}

// TestPermissionScopes: every scope GitHub documents (checked 2026-12-07)
// is accepted at each level it takes and refused at the others; a scope
// GitHub does not have is an error at its line.
func TestPermissionScopes(t *testing.T) {
	want := []string{"actions", "artifact-metadata", "attestations", "checks", "code-quality", "contents",
		"deployments", "discussions", "id-token", "issues", "models", "packages", "pages", "pull-requests",
		"repository-projects", "security-events", "statuses", "vulnerability-alerts"}
	if got := PermissionScopes(); !slices.Equal(got, want) {
		t.Fatalf("PermissionScopes() = %v, want %v", got, want)
	}
	only := map[string][]string{"id-token": {"write", "none"}, "models": {"read", "none"}, "vulnerability-alerts": {"read", "none"}}
	for _, scope := range want {
		for _, lvl := range []string{"read", "write", "none"} {
			src := "on: push\npermissions:\n  " + scope + ": " + lvl + "\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n"
			_, err := Parse("p.yml", []byte(src))
			ok := !slices.Contains(slices.Collect(maps.Keys(only)), scope) || slices.Contains(only[scope], lvl)
			if ok && err != nil {
				t.Errorf("%s: %s: %v", scope, lvl, err)
			}
			if !ok && (err == nil || !strings.Contains(err.Error(), "p.yml:3:") || !strings.Contains(err.Error(), "permissions."+scope+" must be")) {
				t.Errorf("%s: %s: err = %v, want the level refused at 3:", scope, lvl, err)
			}
		}
	}
	_, err := Parse("p.yml", []byte("on: push\npermissions:\n  metadata: read\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: x\n"))
	if err == nil || !strings.Contains(err.Error(), `p.yml:3:3: unknown permission scope "metadata"`) {
		t.Errorf("metadata: err = %v", err)
	}
	// The fixture shaped as jq's CI: its jobs' scopes parse as written.
	data, err := os.ReadFile("testdata/workflows/attest.yml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := Parse("attest.yml", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Jobs[0].Permissions["artifact-metadata"]; got != "write" {
		t.Errorf("image: artifact-metadata = %q", got)
	}
	if got := w.Jobs[1].Permissions["vulnerability-alerts"]; got != "read" {
		t.Errorf("release: vulnerability-alerts = %q", got)
	}
}
