// Reusable workflows: `on.workflow_call` (the inputs, secrets and outputs
// a called workflow declares), the reference a calling job's `uses` names,
// and the checks a call's `with` and `secrets` must pass.

package workflow

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"shithub-actions/internal/expr"
)

// Limits on calls, as GitHub's "Reusing workflow configurations" states
// them (checked 2026-12: ten levels since November 2025): the top-level
// workflow and up to nine levels of called ones, and at most 50 called
// workflow files in one run.
const (
	MaxCallDepth = 9  // levels of called workflows under the top-level one
	MaxCalls     = 50 // called workflow files in one run
)

// CallTrigger is `on.workflow_call`.
type CallTrigger struct {
	Inputs  []CallInput  // file order
	Secrets []CallSecret // file order
	Outputs []CallOutput // file order
}

// CallInput is one input a called workflow declares.
type CallInput struct {
	Name, Type, Description string
	Required                bool
	Default                 string // raw; may hold an expression
	HasDefault              bool
	DefaultTag              string // the default's YAML tag
}

// CallSecret is one secret a called workflow declares.
type CallSecret struct {
	Name     string
	Required bool
}

// CallOutput is one output of a called workflow: its value reads `jobs`.
type CallOutput struct {
	Name, Value string
}

// OnlyCalled reports whether a workflow's one trigger is workflow_call:
// it runs only when another workflow calls it.
func (w *Workflow) OnlyCalled() bool {
	return len(w.Events) == 1 && w.Events[0] == "workflow_call"
}

// workflowCall parses `on.workflow_call` (reusable workflows): inputs,
// outputs and secrets.
func (p *parser) workflowCall(n *yaml.Node) *CallTrigger {
	c := &CallTrigger{}
	if n == nil || isNull(n) {
		return c
	}
	for _, kv := range p.mapping(n, "on.workflow_call") {
		if isNull(kv.v) {
			continue
		}
		switch kv.key {
		case "inputs":
			for _, in := range p.mapping(kv.v, "on.workflow_call.inputs") {
				if !inputNameRE.MatchString(in.key) {
					p.errorf(in.k, "invalid input name %q", in.key)
					continue
				}
				c.Inputs = append(c.Inputs, p.callInput(in))
			}
		case "outputs":
			for _, out := range p.mapping(kv.v, "on.workflow_call.outputs") {
				where := fmt.Sprintf("on.workflow_call output %q", out.key)
				o := CallOutput{Name: out.key}
				var sawValue bool
				for _, f := range p.mapping(out.v, where) {
					switch f.key {
					case "description":
						p.str(f.v, "description of "+where)
					case "value":
						sawValue = true
						if s, ok := p.scalar(f.v, "value of "+where); ok {
							o.Value = s
							p.expr(f.v, s, "on.workflow_call.outputs.<output_id>.value")
						}
					default:
						p.errorf(f.k, "unknown key %q in %s", f.key, where)
					}
				}
				if !sawValue && out.v.Kind == yaml.MappingNode {
					p.errorf(out.k, "%s needs a value", where)
				}
				c.Outputs = append(c.Outputs, o)
			}
		case "secrets":
			for _, sec := range p.mapping(kv.v, "on.workflow_call.secrets") {
				s := CallSecret{Name: sec.key}
				if !isNull(sec.v) {
					where := fmt.Sprintf("on.workflow_call secret %q", sec.key)
					for _, f := range p.mapping(sec.v, where) {
						switch f.key {
						case "description":
							p.str(f.v, "description of "+where)
						case "required":
							s.Required, _ = p.boolean(f.v, "required of "+where)
						default:
							p.errorf(f.k, "unknown key %q in %s", f.key, where)
						}
					}
				}
				c.Secrets = append(c.Secrets, s)
			}
		default:
			p.errorf(kv.k, "unknown key %q in on.workflow_call", kv.key)
		}
	}
	return c
}

func (p *parser) callInput(in pair) CallInput {
	where := fmt.Sprintf("on.workflow_call input %q", in.key)
	ci := CallInput{Name: in.key}
	var typ, def *yaml.Node
	for _, f := range p.mapping(in.v, where) {
		switch f.key {
		case "description":
			ci.Description, _ = p.str(f.v, "description of "+where)
		case "required":
			ci.Required, _ = p.boolean(f.v, "required of "+where)
		case "type":
			typ = f.v
			if t, ok := p.str(f.v, "type of "+where); ok {
				if t != "boolean" && t != "number" && t != "string" {
					p.errorf(f.v, "type of %s must be boolean, number or string", where)
				}
				ci.Type = t
			}
		case "default":
			if s, ok := p.scalar(f.v, "default of "+where); ok {
				ci.Default, ci.HasDefault, ci.DefaultTag, def = s, true, f.v.ShortTag(), f.v
				p.expr(f.v, s, "on.workflow_call.inputs.<inputs_id>.default")
			}
		default:
			p.errorf(f.k, "unknown key %q in %s", f.key, where)
		}
	}
	if typ == nil && in.v.Kind == yaml.MappingNode {
		p.errorf(in.k, "%s needs a type", where)
	}
	// A default written as a plain value must have the input's type.
	if def != nil && !strings.Contains(ci.Default, "${{") && ci.Type != "" && !isNull(def) {
		if _, err := CoerceInput(ci.Type, TaggedValue(ci.Default, ci.DefaultTag)); err != nil {
			p.errorf(def, "default of %s: %v", where, err)
		}
	}
	return ci
}

// TaggedValue is the value of a plain YAML scalar as its tag types it:
// a boolean, a number or text.
func TaggedValue(s, tag string) any {
	switch tag {
	case "!!bool":
		if b, err := strconv.ParseBool(strings.ToLower(s)); err == nil {
			return b
		}
	case "!!int", "!!float":
		if f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64); err == nil {
			return f
		}
	case "!!null":
		return nil
	}
	return s
}

// CoerceInput checks a value given to a called workflow's input of type
// typ and returns it as that type. Text that reads as the type is taken
// ("true" for a boolean, "3" for a number), since a caller's values often
// come from contexts that hold only text (workflow_dispatch inputs).
func CoerceInput(typ string, v any) (any, error) {
	switch typ {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.ToLower(x)); err == nil && (strings.EqualFold(x, "true") || strings.EqualFold(x, "false")) {
				return b, nil
			}
		}
		return nil, fmt.Errorf("must be a boolean, not %s", describe(v))
	case "number":
		switch x := v.(type) {
		case float64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, nil
			}
		}
		return nil, fmt.Errorf("must be a number, not %s", describe(v))
	default:
		switch v.(type) {
		case string, bool, float64:
			return expr.String(v), nil
		}
		return nil, fmt.Errorf("must be a string, not %s", describe(v))
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case nil:
		return "null"
	case bool, float64:
		return expr.String(x)
	case []any:
		return "an array"
	}
	return "an object"
}

// CallError is a call's problem with one of the caller's keys: Key is
// "with.NAME", "secrets.NAME", "with", "secrets" or "uses".
type CallError struct {
	Key, Msg string
}

func (e *CallError) Error() string { return e.Msg }

// CallInputs checks a call's `with` (evaluated; nil values count as not
// given) against the declared inputs and returns the `inputs` context of
// the called workflow: every declared input, defaults filled (evalDefault
// evaluates a default holding an expression), unset ones false, 0 or "".
func (c *CallTrigger) CallInputs(with map[string]any, evalDefault func(raw string) (any, error)) (map[string]any, error) {
	for _, name := range SortedNames(with) {
		if !slices.ContainsFunc(c.Inputs, func(in CallInput) bool { return in.Name == name }) {
			return nil, &CallError{"with." + name, fmt.Sprintf("input %q is not defined in the called workflow", name)}
		}
	}
	out := map[string]any{}
	for _, in := range c.Inputs {
		v, given := with[in.Name]
		given = given && v != nil
		switch {
		case given:
		case in.Required:
			return nil, &CallError{"uses", fmt.Sprintf("input %q is required by the called workflow", in.Name)}
		case in.HasDefault && strings.Contains(in.Default, "${{"):
			var err error
			if v, err = evalDefault(in.Default); err != nil {
				return nil, &CallError{"uses", fmt.Sprintf("default of input %q: %v", in.Name, err)}
			}
		case in.HasDefault:
			v = TaggedValue(in.Default, in.DefaultTag)
		}
		if v == nil {
			switch in.Type {
			case "boolean":
				v = false
			case "number":
				v = 0.0
			default:
				v = ""
			}
		}
		x, err := CoerceInput(in.Type, v)
		if err != nil {
			key := "uses"
			if given {
				key = "with." + in.Name
			}
			return nil, &CallError{key, fmt.Sprintf("input %q %v", in.Name, err)}
		}
		out[in.Name] = x
	}
	return out, nil
}

// CheckSecrets checks a call's named secrets against the declared ones:
// each must be declared, and every required one given. A call with
// `secrets: inherit` passes them all and is not checked.
func (c *CallTrigger) CheckSecrets(names []string) error {
	for _, name := range names {
		if !slices.ContainsFunc(c.Secrets, func(s CallSecret) bool { return strings.EqualFold(s.Name, name) }) {
			return &CallError{"secrets." + name, fmt.Sprintf("secret %q is not defined in the called workflow", name)}
		}
	}
	for _, s := range c.Secrets {
		if s.Required && !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(s.Name, n) }) {
			return &CallError{"secrets", fmt.Sprintf("secret %q is required by the called workflow", s.Name)}
		}
	}
	return nil
}

// SortedNames is the keys of m, sorted.
func SortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// CallRef is a calling job's `uses`: a workflow of the same repository
// and commit (Local, "./.github/workflows/x.yml"), or OWNER/REPO's at Ref.
type CallRef struct {
	Local             bool
	Owner, Repo, Path string
	Ref               string // "" when Local
}

// ParseCallRef reads a calling job's `uses`, which the parser checked.
func ParseCallRef(uses string) (CallRef, error) {
	if !reusableRE.MatchString(uses) {
		return CallRef{}, fmt.Errorf("uses %q is not a reusable workflow: OWNER/REPO/.github/workflows/FILE.yml@REF or ./.github/workflows/FILE.yml", uses)
	}
	if p, ok := strings.CutPrefix(uses, "./"); ok {
		return CallRef{Local: true, Path: p}, nil
	}
	rest, ref, _ := strings.Cut(uses, "@")
	parts := strings.SplitN(rest, "/", 3)
	return CallRef{Owner: parts[0], Repo: parts[1], Path: parts[2], Ref: ref}, nil
}
