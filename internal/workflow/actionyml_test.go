package workflow

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseActionYAML(t *testing.T) {
	node := `name: Hello
description: says hello
author: someone
branding: {icon: box, color: blue}
inputs:
  who-to-greet:
    description: who
    required: true
    default: World
  old:
    deprecationMessage: use who-to-greet
  token:
    default: ${{ github.token }}
  count:
    default: 3
outputs:
  time:
    description: when
runs:
  using: node20
  main: dist/index.js
  pre: dist/setup.js
  pre-if: runner.os == 'Linux'
  post: dist/cleanup.js
  post-if: success()
`
	d, err := ParseActionYAML("action.yml", []byte(node))
	if err != nil {
		t.Fatal(err)
	}
	want := &ActionDef{
		Name: "Hello", Description: "says hello",
		Inputs: []actionInput{
			{Name: "who-to-greet", Description: "who", Default: "World", HasDefault: true, Required: true},
			{Name: "old", Deprecation: "use who-to-greet"},
			{Name: "token", Default: "${{ github.token }}", HasDefault: true},
			{Name: "count", Default: "3", HasDefault: true},
		},
		Outputs: []actionOutput{{Name: "time", Description: "when"}},
		Runs: ActionRuns{Using: "node20", Main: "dist/index.js", Pre: "dist/setup.js", PreIf: "runner.os == 'Linux'",
			Post: "dist/cleanup.js", PostIf: "success()"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("node action:\n got %+v\nwant %+v", d, want)
	}

	composite := `name: C
inputs:
  n: {default: "1"}
outputs:
  sum:
    value: ${{ steps.add.outputs.sum }}
runs:
  using: composite
  steps:
    - id: add
      run: echo "sum=$((1 + ${{ inputs.n }}))" >> "$GITHUB_OUTPUT"
      shell: bash
      env: {A: b}
      working-directory: sub
    - uses: ./other
      with:
        x: 1
      if: always()
      continue-on-error: true
`
	d, err = ParseActionYAML("action.yml", []byte(composite))
	if err != nil {
		t.Fatal(err)
	}
	wantSteps := []actionStep{
		{Line: 10, Col: 7, ID: "add", Run: `echo "sum=$((1 + ${{ inputs.n }}))" >> "$GITHUB_OUTPUT"`, Shell: "bash",
			Env: []actionEnvVar{{"A", "b"}}, WorkingDirectory: "sub"},
		{Line: 15, Col: 7, Uses: "./other", With: []actionEnvVar{{"x", "1"}}, If: "always()", ContinueOnError: "true"},
	}
	if !reflect.DeepEqual(d.Runs.Steps, wantSteps) || d.Outputs[0].Value != "${{ steps.add.outputs.sum }}" {
		t.Errorf("composite action:\n got %+v %+v\nwant %+v", d.Runs.Steps, d.Outputs, wantSteps)
	}

	docker := `name: D
runs:
  using: docker
  image: Dockerfile
  args: [a, "${{ inputs.x }}"]
  entrypoint: /entry.sh
  pre-entrypoint: /pre.sh
  post-entrypoint: /post.sh
  env:
    Z: 1
    A: 2
`
	d, err = ParseActionYAML("action.yaml", []byte(docker))
	if err != nil {
		t.Fatal(err)
	}
	wantRuns := ActionRuns{Using: "docker", Image: "Dockerfile", Args: []string{"a", "${{ inputs.x }}"}, Entrypoint: "/entry.sh",
		PreEntrypoint: "/pre.sh", PostEntrypoint: "/post.sh", Env: []actionEnvVar{{"Z", "1"}, {"A", "2"}}}
	if !reflect.DeepEqual(d.Runs, wantRuns) {
		t.Errorf("docker action:\n got %+v\nwant %+v", d.Runs, wantRuns)
	}
}

func TestParseActionYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"empty", "", "action.yml: empty action metadata file"},
		{"not a mapping", "- a\n", "action.yml:1:1: the action must be a mapping"},
		{"syntax", "name: [\n", "action.yml:1: did not find expected node content"},
		{"no runs", "name: x\n", "action.yml:1:1: the action has no runs"},
		{"no using", "runs:\n  main: a.js\n", "action.yml:2:3: runs has no using"},
		{"bad using", "runs:\n  using: python\n", `action.yml:2:10: runs.using "python" is not supported`},
		{"node no main", "runs:\n  using: node20\n", "action.yml:2:3: a node20 action needs runs.main"},
		{"node with steps", "runs:\n  using: node20\n  main: a.js\n  image: x\n", "action.yml:4:3: runs.image does not apply to a node20 action"},
		{"unknown runs key", "runs:\n  using: node20\n  mian: a.js\n", `action.yml:3:3: unknown key "mian" in runs`},
		{"composite no steps", "runs:\n  using: composite\n", "action.yml:2:3: a composite action needs runs.steps"},
		{"composite no shell", "runs:\n  using: composite\n  steps:\n    - run: echo\n", "action.yml:4:7: runs.steps[0]: a run step of a composite action needs shell"},
		{"composite both", "runs:\n  using: composite\n  steps:\n    - run: echo\n      uses: a/b@v1\n", "action.yml:4:7: runs.steps[0] has both run and uses"},
		{"composite neither", "runs:\n  using: composite\n  steps:\n    - name: x\n", "action.yml:4:7: runs.steps[0] must have run or uses"},
		{"composite bad uses", "runs:\n  using: composite\n  steps:\n    - uses: nope\n", `action.yml:4:13: uses "nope" needs a version`},
		{"composite unknown key", "runs:\n  using: composite\n  steps:\n    - run: x\n      shell: sh\n      timeout-minutes: 3\n", `action.yml:6:7: unknown key "timeout-minutes" in runs.steps[0]`},
		{"composite dup id", "runs:\n  using: composite\n  steps:\n    - {id: a, run: x, shell: sh}\n    - {id: a, run: x, shell: sh}\n", `action.yml:5:7: step id "a" is used twice`},
		{"docker no image", "runs:\n  using: docker\n", "action.yml:2:3: a docker action needs runs.image"},
		{"docker args mapping", "runs:\n  using: docker\n  image: x\n  args: {a: b}\n", "action.yml:4:9: runs.args must be a list of strings"},
		{"inputs list", "inputs: [a]\nruns: {using: node20, main: a.js}\n", "action.yml:1:9: inputs must be a mapping"},
		{"input bad name", "inputs:\n  'a b': {}\nruns: {using: node20, main: a.js}\n", `action.yml:2:3: input name "a b"`},
		{"input case dup", "inputs:\n  Ab: {}\n  aB: {}\nruns: {using: node20, main: a.js}\n", `action.yml:3:3: input "aB" is declared twice`},
		{"required not bool", "inputs:\n  a: {required: maybe}\nruns: {using: node20, main: a.js}\n", "action.yml:2:17: inputs.a.required must be true or false"},
		{"dup key", "name: a\nname: b\n", `action.yml:2:1: duplicate key "name" in the action`},
		{"name list", "name: [a]\nruns: {using: node20, main: a.js}\n", "action.yml:1:7: name must be a string"},
	} {
		_, err := ParseActionYAML("action.yml", []byte(tc.src))
		var ae *actionError
		if err == nil || !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one starting %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseActionYAML(f *testing.F) {
	for _, s := range []string{
		"runs: {using: node20, main: a.js}",
		"runs:\n  using: composite\n  steps:\n    - {run: x, shell: sh}\n    - uses: a/b@v1\n",
		"runs: {using: docker, image: Dockerfile, args: [a]}",
		"inputs: {a: {default: x, required: true}}\noutputs: {o: {value: y}}\nruns: {using: node24, main: m}",
		"a: &x [*x]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseActionYAML("action.yml", data)
		if err != nil {
			var ae *actionError
			if !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), "action.yml") {
				t.Fatalf("error %v is not a located actionError", err)
			}
			return
		}
		switch {
		case d.IsNode() && d.Runs.Main == "":
			t.Fatal("a JavaScript action without main parsed")
		case d.Runs.Using == "composite" && d.Runs.Steps == nil:
			t.Fatal("a composite action without steps parsed")
		case d.Runs.Using == "docker" && d.Runs.Image == "":
			t.Fatal("a docker action without image parsed")
		}
	})
}
