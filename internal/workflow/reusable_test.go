package workflow

import (
	"reflect"
	"strings"
	"testing"
)

const calledWorkflow = `on:
  workflow_call:
    inputs:
      target:
        type: string
        required: true
      debug:
        type: boolean
        default: true
      level:
        type: number
        default: 2
      when:
        type: string
        default: ${{ github.ref }}
    secrets:
      token:
        required: true
      extra:
    outputs:
      artifact:
        description: where it is
        value: ${{ jobs.build.outputs.path }}
jobs:
  build:
    runs-on: x
    steps:
      - run: echo ${{ inputs.target }}
`

func TestParseWorkflowCall(t *testing.T) {
	w, err := Parse("called.yml", []byte(calledWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	if !w.OnlyCalled() || w.Push != nil || w.Dispatch != nil {
		t.Fatalf("events %v: want only workflow_call", w.Events)
	}
	want := &CallTrigger{
		Inputs: []CallInput{
			{Name: "target", Type: "string", Required: true},
			{Name: "debug", Type: "boolean", Default: "true", HasDefault: true, DefaultTag: "!!bool"},
			{Name: "level", Type: "number", Default: "2", HasDefault: true, DefaultTag: "!!int"},
			{Name: "when", Type: "string", Default: "${{ github.ref }}", HasDefault: true, DefaultTag: "!!str"},
		},
		Secrets: []CallSecret{{Name: "token", Required: true}, {Name: "extra"}},
		Outputs: []CallOutput{{Name: "artifact", Value: "${{ jobs.build.outputs.path }}"}},
	}
	if !reflect.DeepEqual(w.Call, want) {
		t.Fatalf("call trigger:\n got %+v\nwant %+v", w.Call, want)
	}
	if w2, _ := Parse("ci.yml", []byte("on: [push, workflow_call]\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n")); w2.OnlyCalled() || w2.Call == nil {
		t.Fatalf("push and workflow_call: OnlyCalled %v, Call %v", w2.OnlyCalled(), w2.Call)
	}
}

func TestParseCallingJob(t *testing.T) {
	src := `on: push
jobs:
  call:
    uses: ./.shithub/workflows/called.yml
    with:
      target: linux
      debug: false
      level: 3
    secrets:
      token: ${{ secrets.DEPLOY }}
  inherit:
    uses: alice/lib/.github/workflows/w.yml@v1
    secrets: inherit
`
	w, err := Parse("ci.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := w.Jobs[0]
	if c.Uses != "./.shithub/workflows/called.yml" || c.With["debug"] != "false" || c.WithTags["debug"] != "!!bool" || c.WithTags["level"] != "!!int" ||
		c.Secrets["token"] != "${{ secrets.DEPLOY }}" || c.SecretsInherit || c.Pos["with.level"] != "8:14" || c.Pos["secrets.token"] != "10:14" {
		t.Fatalf("calling job: %+v", c)
	}
	if !w.Jobs[1].SecretsInherit {
		t.Fatal("secrets: inherit not read")
	}
}

func TestParseCallErrors(t *testing.T) {
	const caller = "on: push\njobs:\n  c:\n    uses: ./.github/workflows/x.yml\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"env on a calling job", caller + "    env: {A: b}\n", []string{`bad.yml:5:5: job "c" calls a reusable workflow and cannot have env`}},
		{"timeout on a calling job", caller + "    timeout-minutes: 3\n", []string{`bad.yml:5:5: job "c" calls a reusable workflow and cannot have timeout-minutes`}},
		{"steps on a calling job", caller + "    steps: [{run: x}]\n", []string{`bad.yml:3:3: job "c" calls a reusable workflow and cannot have steps`}},
		{"secrets neither inherit nor a mapping", caller + "    secrets: all\n", []string{`bad.yml:5:14: secrets of job "c" must be inherit or a mapping`}},
		{"uses not a workflow", "on: push\njobs:\n  c:\n    uses: actions/checkout@v4\n", []string{
			`bad.yml:4:11: uses of job "c" must be a reusable workflow, OWNER/REPO/.github/workflows/FILE.yml@REF or ./.github/workflows/FILE.yml`}},
		{"remote without ref", "on: push\njobs:\n  c:\n    uses: a/b/.github/workflows/x.yml\n", []string{
			`bad.yml:4:11: uses of job "c" must be a reusable workflow, OWNER/REPO/.github/workflows/FILE.yml@REF or ./.github/workflows/FILE.yml`}},
		{"input type unknown", "on:\n  workflow_call:\n    inputs:\n      a: {type: choice}\n" + caller[9:], []string{
			`bad.yml:4:17: type of on.workflow_call input "a" must be boolean, number or string`}},
		{"input without type", "on:\n  workflow_call:\n    inputs:\n      a: {required: true}\n" + caller[9:], []string{
			`bad.yml:4:7: on.workflow_call input "a" needs a type`}},
		{"boolean default not a boolean", "on:\n  workflow_call:\n    inputs:\n      a: {type: boolean, default: yes-please}\n" + caller[9:], []string{
			`bad.yml:4:35: default of on.workflow_call input "a": must be a boolean, not "yes-please"`}},
		{"number default not a number", "on:\n  workflow_call:\n    inputs:\n      a: {type: number, default: many}\n" + caller[9:], []string{
			`bad.yml:4:34: default of on.workflow_call input "a": must be a number, not "many"`}},
		{"output without value", "on:\n  workflow_call:\n    outputs:\n      o: {description: x}\n" + caller[9:], []string{
			`bad.yml:4:7: on.workflow_call output "o" needs a value`}},
		{"unknown workflow_call key", "on:\n  workflow_call:\n    with: {}\n" + caller[9:], []string{
			`bad.yml:3:5: unknown key "with" in on.workflow_call`}},
		{"secret required not a boolean", "on:\n  workflow_call:\n    secrets:\n      s: {required: maybe}\n" + caller[9:], []string{
			`bad.yml:4:21: required of on.workflow_call secret "s" must be true or false`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Check("bad.yml", []byte(tt.src))
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCallInputs(t *testing.T) {
	w, err := Parse("called.yml", []byte(calledWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	evalDefault := func(raw string) (any, error) { return "refs/heads/main", nil }
	tests := []struct {
		name string
		with map[string]any
		want map[string]any
		err  string // "KEY: message"
	}{
		{"defaults", map[string]any{"target": "linux"}, map[string]any{"target": "linux", "debug": true, "level": 2.0, "when": "refs/heads/main"}, ""},
		{"typed values", map[string]any{"target": "x", "debug": false, "level": 7.5}, map[string]any{"target": "x", "debug": false, "level": 7.5, "when": "refs/heads/main"}, ""},
		{"text that reads as the type", map[string]any{"target": 3.0, "debug": "FALSE", "level": "4"}, map[string]any{"target": "3", "debug": false, "level": 4.0, "when": "refs/heads/main"}, ""},
		{"null is not given", map[string]any{"target": "x", "debug": nil}, map[string]any{"target": "x", "debug": true, "level": 2.0, "when": "refs/heads/main"}, ""},
		{"missing required", map[string]any{"debug": true}, nil, `uses: input "target" is required by the called workflow`},
		{"boolean given text", map[string]any{"target": "x", "debug": "yes"}, nil, `with.debug: input "debug" must be a boolean, not "yes"`},
		{"number given a boolean", map[string]any{"target": "x", "level": true}, nil, `with.level: input "level" must be a number, not true`},
		{"string given an object", map[string]any{"target": map[string]any{}}, nil, `with.target: input "target" must be a string, not an object`},
		{"unknown input", map[string]any{"target": "x", "nope": 1.0}, nil, `with.nope: input "nope" is not defined in the called workflow`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.Call.CallInputs(tt.with, evalDefault)
			if tt.err != "" {
				ce, ok := err.(*CallError)
				if !ok || ce.Key+": "+ce.Msg != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("inputs = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCheckSecrets(t *testing.T) {
	w, err := Parse("called.yml", []byte(calledWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		names []string
		err   string
	}{
		{[]string{"TOKEN"}, ""},
		{[]string{"token", "extra"}, ""},
		{nil, `secrets: secret "token" is required by the called workflow`},
		{[]string{"token", "other"}, `secrets.other: secret "other" is not defined in the called workflow`},
	}
	for _, tt := range tests {
		err := w.Call.CheckSecrets(tt.names)
		got := ""
		if ce, ok := err.(*CallError); ok {
			got = ce.Key + ": " + ce.Msg
		}
		if got != tt.err {
			t.Errorf("CheckSecrets(%v) = %q, want %q", tt.names, got, tt.err)
		}
	}
}

func TestParseCallRef(t *testing.T) {
	tests := []struct {
		uses string
		want CallRef
		ok   bool
	}{
		{"./.github/workflows/a.yml", CallRef{Local: true, Path: ".github/workflows/a.yml"}, true},
		{"./.shithub/workflows/a.yaml", CallRef{Local: true, Path: ".shithub/workflows/a.yaml"}, true},
		{"alice/lib/.github/workflows/a.yml@v1.2", CallRef{Owner: "alice", Repo: "lib", Path: ".github/workflows/a.yml", Ref: "v1.2"}, true},
		{"alice/lib/.github/workflows/a.yml@" + strings.Repeat("a", 40), CallRef{Owner: "alice", Repo: "lib", Path: ".github/workflows/a.yml", Ref: strings.Repeat("a", 40)}, true},
		{"./.github/workflows/sub/a.yml", CallRef{}, false},
		{"alice/lib/a.yml@v1", CallRef{}, false},
		{"../x/.github/workflows/a.yml", CallRef{}, false},
	}
	for _, tt := range tests {
		got, err := ParseCallRef(tt.uses)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseCallRef(%q) = %+v, %v", tt.uses, got, err)
		}
	}
}

// FuzzCallInputs: whatever a called workflow declares and a caller
// passes, checking the call returns inputs or a CallError, never panics,
// and every declared input gets a value of its type.
func FuzzCallInputs(f *testing.F) {
	f.Add([]byte(calledWorkflow), "linux", "true", "3")
	f.Add([]byte("on:\n  workflow_call:\n    inputs:\n      a: {type: number, default: 1e400}\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n"), "", "", "nan")
	f.Fuzz(func(t *testing.T, data []byte, a, b, c string) {
		w, err := Parse("fuzz.yml", data)
		if err != nil || w.Call == nil {
			return
		}
		with := map[string]any{}
		for i, in := range w.Call.Inputs {
			with[in.Name] = []any{a, TaggedValue(b, "!!bool"), TaggedValue(c, "!!float")}[i%3]
		}
		got, err := w.Call.CallInputs(with, func(string) (any, error) { return a, nil })
		if err != nil {
			if _, ok := err.(*CallError); !ok {
				t.Fatalf("error %T %v, want a CallError", err, err)
			}
			return
		}
		for _, in := range w.Call.Inputs {
			v := got[in.Name]
			var ok bool
			switch in.Type {
			case "boolean":
				_, ok = v.(bool)
			case "number":
				_, ok = v.(float64)
			default:
				_, ok = v.(string)
			}
			if !ok {
				t.Fatalf("input %q of type %s got %T %v", in.Name, in.Type, v, v)
			}
		}
	})
}
