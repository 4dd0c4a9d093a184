// Action metadata files: parsing action.yml / action.yaml into an
// ActionDef, with `file:line:col: message` errors.

package workflow

// The format is GitHub's "Metadata syntax for GitHub Actions"
// (docs.github.com/en/actions/sharing-automations/creating-actions/
// metadata-syntax-for-github-actions). Like workflow.go, it walks yaml.Node
// trees so every mistake has a position. Keys GitHub ignores or that only
// matter to the Marketplace (branding, author) are accepted and ignored;
// unknown keys of a composite step are errors, as they are on GitHub.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ActionDef is a parsed action.yml.
type ActionDef struct {
	Name, Description string
	Inputs            []actionInput  // file order
	Outputs           []actionOutput // file order
	Runs              ActionRuns
}

// actionInput is one entry of `inputs`.
type actionInput struct {
	Name        string
	Description string
	Default     string // may hold expressions, evaluated when the step runs
	HasDefault  bool
	Required    bool
	Deprecation string // deprecationMessage
}

// actionOutput is one entry of `outputs`; Value (an expression over the
// composite's steps) is set for composite actions only.
type actionOutput struct {
	Name, Description, Value string
}

// ActionRuns is `runs`.
type ActionRuns struct {
	Using string // node16, node20, node24, composite or docker

	// JavaScript actions.
	Main, Pre, Post string // paths in the action's directory
	PreIf, PostIf   string // conditions; "" means always() for pre, always() for post

	// Composite actions.
	Steps []actionStep

	// Docker actions.
	Image                         string // "Dockerfile" (a path) or "docker://IMAGE"
	Args                          []string
	Entrypoint                    string
	PreEntrypoint, PostEntrypoint string
	Env                           []actionEnvVar // file order
}

// actionEnvVar is one entry of an env mapping, kept in order.
type actionEnvVar struct{ Name, Value string }

// actionStep is one step of a composite action.
type actionStep struct {
	Line, Col        int // of the step in action.yml
	ID, Name, If     string
	Run, Shell       string
	Uses             string
	With             []actionEnvVar
	Env              []actionEnvVar
	WorkingDirectory string
	ContinueOnError  string
}

// actionNodeVersions are the runs.using values of JavaScript actions.
var actionNodeVersions = map[string]bool{"node12": true, "node16": true, "node20": true, "node24": true}

// IsNode reports whether the action is a JavaScript action.
func (d *ActionDef) IsNode() bool { return actionNodeVersions[d.Runs.Using] }

// actionError is a located error in an action metadata file.
type actionError struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *actionError) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

type actionParser struct{ file string }

func (p *actionParser) errorf(n *yaml.Node, format string, args ...any) error {
	return &actionError{File: p.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// ActionMaxFile bounds an action.yml: real ones are a few KiB.
const ActionMaxFile = 1 << 20

// ParseActionYAML parses the metadata file named file (for errors).
func ParseActionYAML(file string, data []byte) (*ActionDef, error) {
	p := &actionParser{file: file}
	if len(data) > ActionMaxFile {
		return nil, &actionError{File: file, Msg: fmt.Sprintf("larger than %d bytes", ActionMaxFile)}
	}
	root, err := p.decode(data)
	if err != nil {
		return nil, err
	}
	pairs, err := p.mapping(root, "the action")
	if err != nil {
		return nil, err
	}
	d := &ActionDef{}
	var runs *yaml.Node
	for _, kv := range pairs {
		switch kv.key {
		case "name":
			d.Name, err = p.str(kv.v, "name")
		case "description":
			d.Description, err = p.optStr(kv.v, "description")
		case "inputs":
			d.Inputs, err = p.inputs(kv.v)
		case "outputs":
			d.Outputs, err = p.outputs(kv.v)
		case "runs":
			runs = kv.v
		}
		if err != nil {
			return nil, err
		}
	}
	if runs == nil {
		return nil, p.errorf(root, "the action has no runs")
	}
	if d.Runs, err = p.runs(runs); err != nil {
		return nil, err
	}
	return d, nil
}

func (p *actionParser) decode(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &actionError{File: p.file, Msg: "empty action metadata file"}
		}
		return nil, p.syntaxError(err)
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	return deref(root), nil
}

// syntaxError turns the yaml package's "yaml: line N: msg" into our format.
func (p *actionParser) syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
			}
		}
	}
	return &actionError{File: p.file, Line: line, Msg: msg}
}

func (p *actionParser) mapping(n *yaml.Node, where string) ([]pair, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, "%s must be a mapping", where)
	}
	pairs := make([]pair, 0, len(n.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, p.errorf(k, "keys of %s must be strings", where)
		}
		if seen[k.Value] {
			return nil, p.errorf(k, "duplicate key %q in %s", k.Value, where)
		}
		seen[k.Value] = true
		pairs = append(pairs, pair{k.Value, k, v})
	}
	return pairs, nil
}

// str is a scalar's text; numbers and booleans count as written.
func (p *actionParser) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", p.errorf(n, "%s must be a string", what)
	}
	return n.Value, nil
}

// optStr is str where null means "".
func (p *actionParser) optStr(n *yaml.Node, what string) (string, error) {
	if isNull(n) {
		return "", nil
	}
	return p.str(n, what)
}

func (p *actionParser) boolean(n *yaml.Node, what string) (bool, error) {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
	}
	return false, p.errorf(n, "%s must be true or false", what)
}

// vars reads a mapping of names to scalar values (env, with).
func (p *actionParser) vars(n *yaml.Node, where string) ([]actionEnvVar, error) {
	if isNull(n) {
		return nil, nil
	}
	pairs, err := p.mapping(n, where)
	if err != nil {
		return nil, err
	}
	out := make([]actionEnvVar, 0, len(pairs))
	for _, kv := range pairs {
		v := ""
		if !isNull(kv.v) {
			if v, err = p.str(kv.v, fmt.Sprintf("%s.%s", where, kv.key)); err != nil {
				return nil, err
			}
		}
		out = append(out, actionEnvVar{kv.key, v})
	}
	return out, nil
}

func (p *actionParser) inputs(n *yaml.Node) ([]actionInput, error) {
	if isNull(n) {
		return nil, nil
	}
	pairs, err := p.mapping(n, "inputs")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []actionInput
	for _, kv := range pairs {
		if !inputNameRE.MatchString(kv.key) {
			return nil, p.errorf(kv.k, "input name %q must start with a letter or _ and hold only letters, digits, - and _", kv.key)
		}
		// Inputs reach actions as INPUT_<NAME> in upper case: two names
		// that differ only in case would be the same variable.
		if up := strings.ToUpper(kv.key); seen[up] {
			return nil, p.errorf(kv.k, "input %q is declared twice (input names ignore case)", kv.key)
		} else {
			seen[up] = true
		}
		in := actionInput{Name: kv.key}
		if !isNull(kv.v) {
			fields, err := p.mapping(kv.v, "input "+kv.key)
			if err != nil {
				return nil, err
			}
			for _, f := range fields {
				what := fmt.Sprintf("inputs.%s.%s", kv.key, f.key)
				switch f.key {
				case "description":
					in.Description, err = p.optStr(f.v, what)
				case "default":
					if !isNull(f.v) {
						in.Default, err = p.str(f.v, what)
						in.HasDefault = true
					}
				case "required":
					in.Required, err = p.boolean(f.v, what)
				case "deprecationMessage":
					in.Deprecation, err = p.optStr(f.v, what)
				}
				if err != nil {
					return nil, err
				}
			}
		}
		out = append(out, in)
	}
	return out, nil
}

func (p *actionParser) outputs(n *yaml.Node) ([]actionOutput, error) {
	if isNull(n) {
		return nil, nil
	}
	pairs, err := p.mapping(n, "outputs")
	if err != nil {
		return nil, err
	}
	var out []actionOutput
	for _, kv := range pairs {
		if !inputNameRE.MatchString(kv.key) {
			return nil, p.errorf(kv.k, "output name %q must start with a letter or _ and hold only letters, digits, - and _", kv.key)
		}
		o := actionOutput{Name: kv.key}
		if !isNull(kv.v) {
			fields, err := p.mapping(kv.v, "output "+kv.key)
			if err != nil {
				return nil, err
			}
			for _, f := range fields {
				what := fmt.Sprintf("outputs.%s.%s", kv.key, f.key)
				switch f.key {
				case "description":
					o.Description, err = p.optStr(f.v, what)
				case "value":
					o.Value, err = p.str(f.v, what)
				}
				if err != nil {
					return nil, err
				}
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func (p *actionParser) runs(n *yaml.Node) (ActionRuns, error) {
	var r ActionRuns
	pairs, err := p.mapping(n, "runs")
	if err != nil {
		return r, err
	}
	keys := map[string]*yaml.Node{}
	var usingNode *yaml.Node
	for _, kv := range pairs {
		keys[kv.key] = kv.k
		what := "runs." + kv.key
		switch kv.key {
		case "using":
			usingNode = kv.v
			r.Using, err = p.str(kv.v, what)
		case "main":
			r.Main, err = p.str(kv.v, what)
		case "pre":
			r.Pre, err = p.str(kv.v, what)
		case "post":
			r.Post, err = p.str(kv.v, what)
		case "pre-if":
			r.PreIf, err = p.str(kv.v, what)
		case "post-if":
			r.PostIf, err = p.str(kv.v, what)
		case "image":
			r.Image, err = p.str(kv.v, what)
		case "entrypoint":
			r.Entrypoint, err = p.str(kv.v, what)
		case "pre-entrypoint":
			r.PreEntrypoint, err = p.str(kv.v, what)
		case "post-entrypoint":
			r.PostEntrypoint, err = p.str(kv.v, what)
		case "args":
			r.Args, err = p.args(kv.v)
		case "env":
			r.Env, err = p.vars(kv.v, "runs.env")
		case "steps":
			r.Steps, err = p.steps(kv.v)
		default:
			err = p.errorf(kv.k, "unknown key %q in runs", kv.key)
		}
		if err != nil {
			return r, err
		}
	}
	if usingNode == nil {
		return r, p.errorf(n, "runs has no using (node20, node24, composite or docker)")
	}
	// The keys each kind of action may have.
	var allowed []string
	switch {
	case actionNodeVersions[r.Using]:
		allowed = []string{"using", "main", "pre", "post", "pre-if", "post-if"}
		if r.Main == "" {
			return r, p.errorf(n, "a %s action needs runs.main, the script to run", r.Using)
		}
	case r.Using == "composite":
		allowed = []string{"using", "steps"}
		if keys["steps"] == nil {
			return r, p.errorf(n, "a composite action needs runs.steps")
		}
	case r.Using == "docker":
		allowed = []string{"using", "image", "args", "entrypoint", "pre-entrypoint", "post-entrypoint", "env", "pre-if", "post-if"}
		if r.Image == "" {
			return r, p.errorf(n, "a docker action needs runs.image (Dockerfile or docker://IMAGE)")
		}
		if img, ok := strings.CutPrefix(r.Image, "docker://"); ok && img == "" {
			return r, p.errorf(n, "runs.image %q names no image", r.Image)
		}
	default:
		return r, p.errorf(usingNode, "runs.using %q is not supported: want node20, node24 (or node16), composite or docker", r.Using)
	}
	for _, kv := range pairs {
		if !slices.Contains(allowed, kv.key) {
			return r, p.errorf(kv.k, "runs.%s does not apply to a %s action", kv.key, r.Using)
		}
	}
	return r, nil
}

// args is runs.args: a list of strings (GitHub also splits a single
// string on spaces, which we accept the same way).
func (p *actionParser) args(n *yaml.Node) ([]string, error) {
	switch {
	case isNull(n):
		return nil, nil
	case n.Kind == yaml.ScalarNode:
		return strings.Fields(n.Value), nil
	case n.Kind != yaml.SequenceNode:
		return nil, p.errorf(n, "runs.args must be a list of strings")
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		c = deref(c)
		if c.Kind != yaml.ScalarNode {
			return nil, p.errorf(c, "runs.args must be a list of strings")
		}
		out = append(out, c.Value)
	}
	return out, nil
}

// actionMaxSteps bounds a composite action's steps.
const actionMaxSteps = 1000

func (p *actionParser) steps(n *yaml.Node) ([]actionStep, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n, "runs.steps must be a list of steps")
	}
	if len(n.Content) > actionMaxSteps {
		return nil, p.errorf(n, "runs.steps has %d steps; the limit is %d", len(n.Content), actionMaxSteps)
	}
	ids := map[string]bool{}
	out := make([]actionStep, 0, len(n.Content))
	for i, c := range n.Content {
		s, err := p.step(deref(c), fmt.Sprintf("runs.steps[%d]", i))
		if err != nil {
			return nil, err
		}
		if s.ID != "" {
			if ids[s.ID] {
				return nil, p.errorf(c, "step id %q is used twice", s.ID)
			}
			ids[s.ID] = true
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *actionParser) step(n *yaml.Node, where string) (actionStep, error) {
	s := actionStep{Line: n.Line, Col: n.Column}
	pairs, err := p.mapping(n, where)
	if err != nil {
		return s, err
	}
	var run, uses, shell *yaml.Node
	for _, kv := range pairs {
		what := where + "." + kv.key
		switch kv.key {
		case "id":
			s.ID, err = p.str(kv.v, what)
			if err == nil && !jobIDRE.MatchString(s.ID) {
				err = p.errorf(kv.v, "step id %q must start with a letter or _ and hold only letters, digits, - and _", s.ID)
			}
		case "name":
			s.Name, err = p.str(kv.v, what)
		case "if":
			s.If, err = p.str(kv.v, what)
		case "run":
			run = kv.v
			s.Run, err = p.str(kv.v, what)
		case "shell":
			shell = kv.v
			s.Shell, err = p.str(kv.v, what)
		case "uses":
			uses = kv.v
			s.Uses, err = p.str(kv.v, what)
			if err == nil {
				if _, perr := ParseActionRef(s.Uses); perr != nil {
					err = p.errorf(kv.v, "%v", perr)
				}
			}
		case "with":
			s.With, err = p.vars(kv.v, what)
		case "env":
			s.Env, err = p.vars(kv.v, what)
		case "working-directory":
			s.WorkingDirectory, err = p.str(kv.v, what)
		case "continue-on-error":
			s.ContinueOnError, err = p.str(kv.v, what)
		default:
			err = p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
		if err != nil {
			return s, err
		}
	}
	switch {
	case run != nil && uses != nil:
		return s, p.errorf(n, "%s has both run and uses", where)
	case run == nil && uses == nil:
		return s, p.errorf(n, "%s must have run or uses", where)
	case run != nil && shell == nil:
		// GitHub requires it: a composite action must not depend on the
		// calling workflow's defaults.
		return s, p.errorf(n, "%s: a run step of a composite action needs shell", where)
	case uses != nil && shell != nil:
		return s, p.errorf(shell, "%s: shell applies to run steps only", where)
	case uses != nil && s.WorkingDirectory != "":
		return s, p.errorf(n, "%s: working-directory applies to run steps only", where)
	}
	return s, nil
}
