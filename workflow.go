// Workflow files: parsing .shithub/workflows/*.yml and matching triggers.

package main

// Workflow files are walked as yaml.Node trees instead of being decoded into
// structs: that is the only way to report a line for every mistake and to
// reject unknown or duplicated keys, which a struct decode silently accepts.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Workflow is a parsed workflow file.
type Workflow struct {
	Name     string           // `name`, or the file's base name when absent
	Push     *PushTrigger     // nil when the workflow has no push trigger
	Dispatch *DispatchTrigger // nil when the workflow has no workflow_dispatch trigger
	Env      map[string]string
	Jobs     []*WorkflowJob // file order
}

// PushTrigger holds the `on.push` filters. A nil slice means the filter is
// absent; the parser never produces an empty non-nil one.
type PushTrigger struct {
	Branches, BranchesIgnore, Tags, TagsIgnore, Paths, PathsIgnore []string
}

// DispatchTrigger is `on.workflow_dispatch`.
type DispatchTrigger struct {
	Inputs []DispatchInput // file order
}

// DispatchInput is one declared workflow_dispatch input.
type DispatchInput struct {
	Name, Description, Type, Default string
	Required                         bool
	Options                          []string // choice inputs only
}

// WorkflowJob is one entry of `jobs`.
type WorkflowJob struct {
	Key            string
	Name           string // `name`, or Key
	RunsOn         []string
	Image          string // from `container`, "" when absent
	Needs          []string
	Env            map[string]string // the job's own env, not merged
	TimeoutMinutes int
	Steps          []WorkflowStep
}

// WorkflowStep is one entry of a job's `steps`.
type WorkflowStep struct {
	Name, Run, Uses, WorkingDirectory string
	Env                               map[string]string
}

// defaultTimeoutMinutes is GitHub's default job timeout.
const defaultTimeoutMinutes = 360

// Limits on a workflow file, checked before anything of it is stored, so
// that one push cannot make a write transaction that stalls every other.
const (
	maxWorkflowBytes  = 512 << 10 // a workflow file's size
	maxAliasExpansion = 10        // YAML aliases may grow the document to this many times its nodes...
	minAliasBudget    = 10000     // ...or to this many nodes, whichever is more
	maxJobs           = 256       // jobs in one run: GitHub's matrix limit
	maxSteps          = 1000      // steps in one job
	maxTimeoutMinutes = 4320      // 72 hours: GitHub's limit for self-hosted runners
)

var (
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	jobIDRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	inputNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

// isWorkflowFile reports whether the repository path p is a workflow file:
// .shithub/workflows/<name>.yml or .yaml, not in a subdirectory.
func isWorkflowFile(p string) bool {
	dir, name := path.Split(p)
	ext := path.Ext(name)
	return dir == ".shithub/workflows/" && (ext == ".yml" || ext == ".yaml") && len(name) > len(ext)
}

// workflowError is a parse error located in a workflow file.
type workflowError struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *workflowError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// parseWorkflow parses and validates the workflow file named file. It
// returns the first error found, as a *workflowError.
func parseWorkflow(file string, data []byte) (*Workflow, error) {
	p := &wfParser{file: file}
	if len(data) > maxWorkflowBytes {
		return nil, &workflowError{File: file, Msg: fmt.Sprintf("the file is %d bytes; a workflow file may have at most %d (512 KiB)", len(data), maxWorkflowBytes)}
	}
	root, err := p.decode(data)
	if err != nil {
		return nil, err
	}
	pairs, err := p.mapping(root, "workflow")
	if err != nil {
		return nil, err
	}
	w := &Workflow{}
	var sawOn, sawJobs bool
	for _, kv := range pairs {
		switch kv.key {
		case "name":
			w.Name, err = p.str(kv.v, "name")
		case "on":
			sawOn = true
			err = p.on(w, kv.v)
		case "env":
			w.Env, err = p.env(kv.v, "env")
		case "jobs":
			sawJobs = true
			w.Jobs, err = p.jobs(kv.v)
		default:
			err = p.errorf(kv.k, "unknown key %q in workflow", kv.key)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case !sawOn:
		return nil, p.errorf(root, `missing "on"`)
	case !sawJobs:
		return nil, p.errorf(root, `missing "jobs"`)
	}
	if w.Name == "" {
		w.Name = path.Base(file)
	}
	return w, nil
}

type wfParser struct {
	file string
}

func (p *wfParser) errorf(n *yaml.Node, format string, args ...any) error {
	return &workflowError{File: p.file, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// decode returns the root node of the single YAML document in data.
func (p *wfParser) decode(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &workflowError{File: p.file, Msg: "empty workflow file"}
		}
		return nil, p.syntaxError(err)
	}
	// A second document would be silently ignored otherwise.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, p.syntaxError(err)
	default:
		return nil, p.errorf(&extra, "more than one YAML document")
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if nodes, expanded := aliasExpansion(&doc); expanded > max(maxAliasExpansion*nodes, minAliasBudget) {
		return nil, p.errorf(root, "YAML aliases expand this workflow from %d to %d nodes; at most %d times the written size (or %d nodes) is allowed",
			nodes, expanded, maxAliasExpansion, minAliasBudget)
	}
	return deref(root), nil
}

// aliasExpansion counts the nodes of a document as written and as its
// reader sees it, every alias replaced by what it names. Walking the parse
// expands aliases, so a few kilobytes of nested aliases (a "billion laughs")
// would otherwise become millions of jobs and steps. Sizes are memoized per
// node, so this is linear in the written size; the count saturates rather
// than overflows.
func aliasExpansion(doc *yaml.Node) (nodes, expanded int) {
	memo := map[*yaml.Node]int{}
	var size func(n *yaml.Node, depth int) int
	size = func(n *yaml.Node, depth int) int {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			if depth > 1000 { // an alias inside what it names; the parser refuses those already
				return math.MaxInt32
			}
			return size(n.Alias, depth+1)
		}
		if v, ok := memo[n]; ok {
			return v
		}
		total := 1
		for _, c := range n.Content {
			total = min(total+size(c, depth+1), math.MaxInt32)
		}
		memo[n] = total
		return total
	}
	var count func(n *yaml.Node)
	count = func(n *yaml.Node) {
		nodes++
		for _, c := range n.Content {
			count(c)
		}
	}
	count(doc)
	return nodes, size(doc, 0)
}

// syntaxError turns the yaml package's "yaml: line N: msg" into our format.
func (p *wfParser) syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
			}
		}
	}
	return &workflowError{File: p.file, Line: line, Msg: msg}
}

// deref follows aliases (*name) to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// pair is one entry of a YAML mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// mapping returns the entries of n in file order, rejecting duplicate keys.
// where names the mapping in errors.
func (p *wfParser) mapping(n *yaml.Node, where string) ([]pair, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, "%s must be a mapping", where)
	}
	pairs := make([]pair, 0, len(n.Content)/2)
	seen := make(map[string]bool)
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

// str returns the text of a scalar. Numbers and booleans are accepted as
// written, since `name: 1.0` almost always means the text.
func (p *wfParser) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", p.errorf(n, "%s must be a string", what)
	}
	return n.Value, nil
}

// items accepts a single non-empty string or a non-empty list of them, as
// GitHub does wherever a list is expected, and returns the item nodes.
func (p *wfParser) items(n *yaml.Node, what string) ([]*yaml.Node, error) {
	var list []*yaml.Node
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		list = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode && len(n.Content) > 0:
		list = make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			list[i] = deref(c)
		}
	default:
		return nil, p.errorf(n, "%s must be a string or a non-empty list of strings", what)
	}
	for _, c := range list {
		if c.Kind != yaml.ScalarNode || isNull(c) || c.Value == "" {
			return nil, p.errorf(c, "%s must be a string or a non-empty list of strings", what)
		}
	}
	return list, nil
}

func (p *wfParser) list(n *yaml.Node, what string) ([]string, error) {
	list, err := p.items(n, what)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(list))
	for i, c := range list {
		out[i] = c.Value
	}
	return out, nil
}

func (p *wfParser) boolean(n *yaml.Node, what string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		return false, p.errorf(n, "%s must be true or false", what)
	}
	return b, nil
}

// env parses an env mapping; null or absent means no variables.
func (p *wfParser) env(n *yaml.Node, where string) (map[string]string, error) {
	if isNull(n) {
		return nil, nil
	}
	pairs, err := p.mapping(n, where)
	if err != nil {
		return nil, err
	}
	env := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		if !envNameRE.MatchString(kv.key) {
			return nil, p.errorf(kv.k, "invalid variable name %q in %s", kv.key, where)
		}
		switch {
		case isNull(kv.v):
			env[kv.key] = ""
		case kv.v.Kind == yaml.ScalarNode:
			env[kv.key] = kv.v.Value
		default:
			return nil, p.errorf(kv.v, "%s.%s must be a string, number or boolean", where, kv.key)
		}
	}
	return env, nil
}

// on parses the triggers into w.
func (p *wfParser) on(w *Workflow, n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		events, err := p.items(n, "on")
		if err != nil {
			return err
		}
		for _, ev := range events {
			if err := p.event(w, ev, nil); err != nil {
				return err
			}
		}
		return nil
	}
	pairs, err := p.mapping(n, "on")
	if err != nil {
		return err
	}
	if len(pairs) == 0 {
		return p.errorf(n, "on must name at least one event")
	}
	for _, kv := range pairs {
		if err := p.event(w, kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// event adds the trigger named by key, configured by v (nil in list form).
func (p *wfParser) event(w *Workflow, key, v *yaml.Node) error {
	var err error
	switch key.Value {
	case "push":
		if w.Push != nil {
			return p.errorf(key, "duplicate event %q in on", key.Value)
		}
		w.Push, err = p.push(v)
	case "workflow_dispatch":
		if w.Dispatch != nil {
			return p.errorf(key, "duplicate event %q in on", key.Value)
		}
		w.Dispatch, err = p.dispatch(v)
	default:
		return p.errorf(key, "unsupported event %q in on (supported: push, workflow_dispatch)", key.Value)
	}
	return err
}

func (p *wfParser) push(n *yaml.Node) (*PushTrigger, error) {
	t := &PushTrigger{}
	if n == nil || isNull(n) {
		return t, nil
	}
	pairs, err := p.mapping(n, "on.push")
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	for _, kv := range pairs {
		var dst *[]string
		switch kv.key {
		case "branches":
			dst = &t.Branches
		case "branches-ignore":
			dst = &t.BranchesIgnore
		case "tags":
			dst = &t.Tags
		case "tags-ignore":
			dst = &t.TagsIgnore
		case "paths":
			dst = &t.Paths
		case "paths-ignore":
			dst = &t.PathsIgnore
		default:
			return nil, p.errorf(kv.k, "unknown key %q in on.push", kv.key)
		}
		seen[kv.key] = true
		// GitHub rejects a filter next to its -ignore twin: which would win is unclear.
		if base := strings.TrimSuffix(kv.key, "-ignore"); seen[base] && seen[base+"-ignore"] {
			return nil, p.errorf(kv.k, "on.push cannot have both %s and %s-ignore", base, base)
		}
		if *dst, err = p.list(kv.v, "on.push."+kv.key); err != nil {
			return nil, err
		}
		for _, pat := range *dst {
			if pat == "!" {
				return nil, p.errorf(kv.v, "empty negated pattern in on.push.%s", kv.key)
			}
		}
	}
	return t, nil
}

func (p *wfParser) dispatch(n *yaml.Node) (*DispatchTrigger, error) {
	d := &DispatchTrigger{}
	if n == nil || isNull(n) {
		return d, nil
	}
	pairs, err := p.mapping(n, "on.workflow_dispatch")
	if err != nil {
		return nil, err
	}
	for _, kv := range pairs {
		if kv.key != "inputs" {
			return nil, p.errorf(kv.k, "unknown key %q in on.workflow_dispatch", kv.key)
		}
		if isNull(kv.v) {
			continue
		}
		inputs, err := p.mapping(kv.v, "on.workflow_dispatch.inputs")
		if err != nil {
			return nil, err
		}
		for _, in := range inputs {
			if !inputNameRE.MatchString(in.key) {
				return nil, p.errorf(in.k, "invalid input name %q", in.key)
			}
			di, err := p.input(in.key, in.v)
			if err != nil {
				return nil, err
			}
			d.Inputs = append(d.Inputs, di)
		}
	}
	return d, nil
}

func (p *wfParser) input(name string, n *yaml.Node) (DispatchInput, error) {
	in := DispatchInput{Name: name, Type: "string"}
	if isNull(n) {
		return in, nil
	}
	where := fmt.Sprintf("input %q", name)
	pairs, err := p.mapping(n, where)
	if err != nil {
		return in, err
	}
	var def, opts *yaml.Node
	for _, kv := range pairs {
		switch kv.key {
		case "description":
			in.Description, err = p.str(kv.v, "description of "+where)
		case "required":
			in.Required, err = p.boolean(kv.v, "required of "+where)
		case "default":
			def = kv.v
			in.Default, err = p.str(kv.v, "default of "+where)
		case "type":
			in.Type, err = p.str(kv.v, "type of "+where)
			switch in.Type {
			case "string", "boolean", "choice", "number":
			default:
				err = p.errorf(kv.v, "type of %s must be string, boolean, choice or number", where)
			}
		case "options":
			opts = kv.k
			in.Options, err = p.list(kv.v, "options of "+where)
		default:
			err = p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
		if err != nil {
			return in, err
		}
	}
	switch {
	case in.Type == "choice" && opts == nil:
		return in, p.errorf(n, "choice %s needs options", where)
	case in.Type != "choice" && opts != nil:
		return in, p.errorf(opts, "options of %s require type: choice", where)
	}
	if def != nil {
		if err := in.check(in.Default); err != nil {
			return in, p.errorf(def, "default of %s: %v", where, err)
		}
	}
	return in, nil
}

func (p *wfParser) jobs(n *yaml.Node) ([]*WorkflowJob, error) {
	if isNull(n) || n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		return nil, p.errorf(n, "jobs must not be empty")
	}
	pairs, err := p.mapping(n, "jobs")
	if err != nil {
		return nil, err
	}
	if len(pairs) > maxJobs {
		return nil, p.errorf(n, "jobs has %d jobs; a run may have at most %d", len(pairs), maxJobs)
	}
	jobs := make([]*WorkflowJob, 0, len(pairs))
	needNodes := make([][]*yaml.Node, 0, len(pairs)) // parallel to jobs, for error lines
	index := make(map[string]int)
	for _, kv := range pairs {
		if !jobIDRE.MatchString(kv.key) {
			return nil, p.errorf(kv.k, "invalid job id %q", kv.key)
		}
		j, needs, err := p.job(kv.k, kv.v)
		if err != nil {
			return nil, err
		}
		index[j.Key] = len(jobs)
		jobs = append(jobs, j)
		needNodes = append(needNodes, needs)
	}
	// needs may point forward, so references are checked once all jobs are known.
	for i, j := range jobs {
		for k, need := range j.Needs {
			switch _, ok := index[need]; {
			case need == j.Key:
				return nil, p.errorf(needNodes[i][k], "job %q needs itself", j.Key)
			case !ok:
				return nil, p.errorf(needNodes[i][k], "job %q needs unknown job %q", j.Key, need)
			}
		}
	}

	// Depth-first search for a cycle; stack holds the current path.
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(jobs))
	var stack []int
	var visit func(i int) error
	visit = func(i int) error {
		state[i] = active
		stack = append(stack, i)
		for k, need := range jobs[i].Needs {
			dep := index[need]
			switch state[dep] {
			case active:
				var cycle []string
				for _, s := range stack[slices.Index(stack, dep):] {
					cycle = append(cycle, jobs[s].Key)
				}
				cycle = append(cycle, need)
				return p.errorf(needNodes[i][k], "needs cycle: %s", strings.Join(cycle, " -> "))
			case unvisited:
				if err := visit(dep); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
		return nil
	}
	for i := range jobs {
		if state[i] == unvisited {
			if err := visit(i); err != nil {
				return nil, err
			}
		}
	}
	return jobs, nil
}

// job parses the job keyed by key. It also returns the nodes of its needs,
// which are resolved by the caller.
func (p *wfParser) job(key, n *yaml.Node) (*WorkflowJob, []*yaml.Node, error) {
	where := fmt.Sprintf("job %q", key.Value)
	pairs, err := p.mapping(n, where)
	if err != nil {
		return nil, nil, err
	}
	j := &WorkflowJob{Key: key.Value, TimeoutMinutes: defaultTimeoutMinutes}
	var needs []*yaml.Node
	var sawSteps bool
	for _, kv := range pairs {
		switch kv.key {
		case "name":
			j.Name, err = p.str(kv.v, "name of "+where)
		case "runs-on":
			j.RunsOn, err = p.list(kv.v, "runs-on of "+where)
		case "container":
			j.Image, err = p.container(kv.v, "container of "+where)
		case "needs":
			if needs, err = p.items(kv.v, "needs of "+where); err != nil {
				break
			}
			for _, c := range needs {
				if slices.Contains(j.Needs, c.Value) {
					err = p.errorf(c, "%s lists %q twice in needs", where, c.Value)
					break
				}
				j.Needs = append(j.Needs, c.Value)
			}
		case "env":
			j.Env, err = p.env(kv.v, "env of "+where)
		case "timeout-minutes":
			var t int
			if kv.v.Kind != yaml.ScalarNode || kv.v.ShortTag() != "!!int" || kv.v.Decode(&t) != nil || t < 1 || t > maxTimeoutMinutes {
				err = p.errorf(kv.v, "timeout-minutes of %s must be a whole number from 1 to %d", where, maxTimeoutMinutes)
			}
			j.TimeoutMinutes = t
		case "steps":
			sawSteps = true
			j.Steps, err = p.steps(kv.v, where)
		default:
			err = p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	switch {
	case j.RunsOn == nil && j.Image == "":
		return nil, nil, p.errorf(key, "%s must have runs-on or container", where)
	case !sawSteps:
		return nil, nil, p.errorf(key, "%s has no steps", where)
	}
	if j.Name == "" {
		j.Name = j.Key
	}
	return j, needs, nil
}

// container accepts an image name or a mapping holding only `image`.
func (p *wfParser) container(n *yaml.Node, where string) (string, error) {
	if n.Kind == yaml.ScalarNode {
		image, err := p.str(n, where)
		if err == nil && image == "" {
			err = p.errorf(n, "%s must not be empty", where)
		}
		return image, err
	}
	pairs, err := p.mapping(n, where)
	if err != nil {
		return "", err
	}
	var image string
	for _, kv := range pairs {
		if kv.key != "image" {
			return "", p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
		if image, err = p.str(kv.v, "image of "+where); err != nil {
			return "", err
		}
	}
	if image == "" {
		return "", p.errorf(n, "%s must have an image", where)
	}
	return image, nil
}

func (p *wfParser) steps(n *yaml.Node, job string) ([]WorkflowStep, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, p.errorf(n, "steps of %s must be a non-empty list", job)
	}
	if len(n.Content) > maxSteps {
		return nil, p.errorf(n, "steps of %s has %d steps; a job may have at most %d", job, len(n.Content), maxSteps)
	}
	steps := make([]WorkflowStep, len(n.Content))
	for i, c := range n.Content {
		var err error
		if steps[i], err = p.step(deref(c), fmt.Sprintf("step %d of %s", i+1, job)); err != nil {
			return nil, err
		}
	}
	return steps, nil
}

func (p *wfParser) step(n *yaml.Node, where string) (WorkflowStep, error) {
	var s WorkflowStep
	pairs, err := p.mapping(n, where)
	if err != nil {
		return s, err
	}
	var run, uses *yaml.Node
	for _, kv := range pairs {
		switch kv.key {
		case "name":
			s.Name, err = p.str(kv.v, "name of "+where)
		case "run":
			run = kv.v
			s.Run, err = p.str(kv.v, "run of "+where)
		case "uses":
			uses = kv.v
			s.Uses, err = p.str(kv.v, "uses of "+where)
		case "env":
			s.Env, err = p.env(kv.v, "env of "+where)
		case "working-directory":
			s.WorkingDirectory, err = p.str(kv.v, "working-directory of "+where)
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
	case run != nil:
		script := strings.TrimSpace(s.Run)
		if script == "" {
			return s, p.errorf(run, "run of %s must not be empty", where)
		}
		if s.Name == "" {
			first, _, _ := strings.Cut(script, "\n")
			s.Name = "Run " + strings.TrimSpace(first)
		}
	default:
		// The runner implements checkout itself; there is no action runtime.
		ref, ok := strings.CutPrefix(s.Uses, "actions/checkout@")
		if !ok || ref == "" {
			return s, p.errorf(uses, "unsupported action %q in %s (only actions/checkout@<ref> is supported)", s.Uses, where)
		}
		if s.Name == "" {
			s.Name = "Run " + s.Uses
		}
	}
	return s, nil
}

// matches reports whether a push of ref (refs/heads/x or refs/tags/x) that
// changed the given files triggers the workflow. changed == nil means the
// changed files are unknown (a new branch, say), in which case paths filters
// match. A nil trigger matches nothing.
func (p *PushTrigger) matches(ref string, changed []string) bool {
	if p == nil {
		return false
	}
	branchFilter := p.Branches != nil || p.BranchesIgnore != nil
	tagFilter := p.Tags != nil || p.TagsIgnore != nil
	if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		// Like GitHub, filtering only tags means branch pushes never match.
		if tagFilter && !branchFilter {
			return false
		}
		if p.Branches != nil && !matchPatterns(p.Branches, branch) ||
			p.BranchesIgnore != nil && matchPatterns(p.BranchesIgnore, branch) {
			return false
		}
		return p.pathsMatch(changed)
	}
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		if branchFilter && !tagFilter {
			return false
		}
		// Paths filters are not evaluated for tags, as on GitHub.
		return !(p.Tags != nil && !matchPatterns(p.Tags, tag) ||
			p.TagsIgnore != nil && matchPatterns(p.TagsIgnore, tag))
	}
	return false
}

func (p *PushTrigger) pathsMatch(changed []string) bool {
	if changed == nil {
		return true
	}
	switch {
	case p.Paths != nil:
		return slices.ContainsFunc(changed, func(f string) bool { return matchPatterns(p.Paths, f) })
	case p.PathsIgnore != nil:
		return slices.ContainsFunc(changed, func(f string) bool { return !matchPatterns(p.PathsIgnore, f) })
	}
	return true
}

// matchPatterns applies a filter list the GitHub way: patterns are tried in
// order and the last one matching name decides, a "!" pattern excluding it.
func matchPatterns(patterns []string, name string) bool {
	matched := false
	for _, pat := range patterns {
		rest, neg := strings.CutPrefix(pat, "!")
		if globMatch(rest, name) {
			matched = !neg
		}
	}
	return matched
}

// globMatch reports whether name matches pattern, where `*` matches any run
// of characters except `/`, `**` any run including `/`, and `?` one
// character other than `/`. As on GitHub, `**/` may also match nothing, so
// `**/x` matches "x". A leading `!` is not special here; see matchPatterns.
func globMatch(pattern, name string) bool {
	const (
		lit = iota
		one
		star
		dstar
	)
	type token struct {
		kind int
		r    rune
	}
	var toks []token
	pat := []rune(pattern)
	for i := 0; i < len(pat); i++ {
		switch {
		case pat[i] == '*' && i+1 < len(pat) && pat[i+1] == '*':
			for i+1 < len(pat) && pat[i+1] == '*' {
				i++
			}
			toks = append(toks, token{kind: dstar})
		case pat[i] == '*':
			toks = append(toks, token{kind: star})
		case pat[i] == '?':
			toks = append(toks, token{kind: one})
		default:
			toks = append(toks, token{lit, pat[i]})
		}
	}

	// Simulate the pattern as an NFA whose states are token positions; this
	// stays linear in len(pattern)*len(name) where backtracking can explode.
	cur := make([]bool, len(toks)+1)
	next := make([]bool, len(toks)+1)
	closure := func(set []bool) {
		for i, t := range toks {
			if !set[i] {
				continue
			}
			if t.kind == star || t.kind == dstar {
				set[i+1] = true
			}
			if t.kind == dstar && i+1 < len(toks) && toks[i+1] == (token{lit, '/'}) {
				set[i+2] = true
			}
		}
	}
	cur[0] = true
	closure(cur)
	for _, c := range name {
		clear(next)
		alive := false
		for i, t := range toks {
			if !cur[i] {
				continue
			}
			switch {
			case t.kind == lit && t.r == c, t.kind == one && c != '/':
				next[i+1], alive = true, true
			case t.kind == star && c != '/', t.kind == dstar:
				next[i], alive = true, true
			}
		}
		if !alive {
			return false
		}
		closure(next)
		cur, next = next, cur
	}
	return cur[len(toks)]
}

// resolve validates the inputs of a dispatch request against the declared
// ones and returns every declared input's value, defaults filled in. Values
// may be strings, booleans or numbers, as they arrive from JSON.
func (d *DispatchTrigger) resolve(in map[string]any) (map[string]string, error) {
	var decls []DispatchInput
	if d != nil {
		decls = d.Inputs
	}
	// Sorted, so that the error for several unknown inputs is stable.
	for _, name := range slices.Sorted(maps.Keys(in)) {
		if !slices.ContainsFunc(decls, func(x DispatchInput) bool { return x.Name == name }) {
			return nil, fmt.Errorf("unknown input %q", name)
		}
	}
	out := make(map[string]string, len(decls))
	for _, decl := range decls {
		var v string
		if raw := in[decl.Name]; raw != nil {
			var ok bool
			if v, ok = inputText(raw); !ok {
				return nil, fmt.Errorf("input %q: must be a string, number or boolean", decl.Name)
			}
		}
		if v == "" {
			v = decl.Default
		}
		if v == "" {
			if decl.Required {
				return nil, fmt.Errorf("input %q: required", decl.Name)
			}
			if decl.Type == "boolean" {
				v = "false"
			}
		}
		if v != "" {
			if err := decl.check(v); err != nil {
				return nil, fmt.Errorf("input %q: %w", decl.Name, err)
			}
		}
		out[decl.Name] = v
	}
	return out, nil
}

// inputText converts a JSON-decoded input value to its text.
func inputText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// check validates a non-empty value against the input's type.
func (in *DispatchInput) check(v string) error {
	switch in.Type {
	case "boolean":
		if v != "true" && v != "false" {
			return errors.New("must be true or false")
		}
	case "number":
		if f, err := strconv.ParseFloat(v, 64); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return errors.New("must be a number")
		}
	case "choice":
		if !slices.Contains(in.Options, v) {
			return fmt.Errorf("must be one of %s", strings.Join(in.Options, ", "))
		}
	}
	return nil
}
