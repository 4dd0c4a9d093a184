// Workflow files: parsing .shithub/workflows/*.yml with every key GitHub's
// "Workflow syntax" defines, checking expressions against the contexts each
// key allows, and reporting every problem with its line and column.

package workflow

// Workflow files are walked as yaml.Node trees instead of being decoded into
// structs: that is the only way to report a line for every mistake and to
// reject unknown or duplicated keys, which a struct decode silently accepts.
// The parser does not stop at the first problem: it records each one and
// goes on with the next key, so `workflow check` can list them all.

import (
	"bytes"
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

	"shithub-actions/internal/expr"
)

// Workflow is a parsed workflow file. Strings that may hold expressions are
// kept raw; the run model evaluates them when the job becomes ready.
type Workflow struct {
	Name              string // `name`, or the file's base name when absent
	RunName           string // `run-name`, raw
	Events            []string
	Push              *PushTrigger        // nil when the workflow has no push trigger
	PullRequest       *PullRequestTrigger // on.pull_request
	PullRequestTarget *PullRequestTrigger // on.pull_request_target
	Dispatch          *DispatchTrigger    // nil when the workflow has no workflow_dispatch trigger
	WorkflowRun       *WorkflowRunTrigger // on.workflow_run; nil when absent
	Schedules         []*Schedule         // on.schedule
	Env               map[string]string
	Defaults          RunDefaults
	Concurrency       *Concurrency
	Permissions       map[string]string // parsed, inert: scope → read|write|none; "*" → read-all|write-all
	Call              *CallTrigger      // on.workflow_call: nil when the workflow cannot be called
	Jobs              []*Job            // file order
}

// RunDefaults is `defaults.run`.
type RunDefaults struct {
	Shell            string `json:"shell"`
	WorkingDirectory string `json:"working_directory"`
}

// Concurrency is a `concurrency` key; both fields are raw (expressions).
type Concurrency struct {
	Group            string
	CancelInProgress string // "", "true", "false" or an expression
}

// ContainerSpec is a job's `container` or one of its `services`, raw.
type ContainerSpec struct {
	Image       string            `json:"image"`
	Env         map[string]string `json:"env"`
	Ports       []string          `json:"ports"`
	Options     string            `json:"options"`
	Volumes     []string          `json:"volumes"`
	Credentials map[string]string `json:"-"` // parsed; used by the secrets issue
}

// ServiceSpec is one entry of `services`, in file order.
type ServiceSpec struct {
	ID string
	ContainerSpec
}

// Strategy is `strategy`. Matrix is the ordered YAML value of
// strategy.matrix ([]matrixKV, []any, scalars) or, when the whole matrix is
// one expression, its text.
type Strategy struct {
	Matrix      any
	FailFast    string // raw; "" means true
	MaxParallel string // raw; "" means unlimited
}

// Environment is a job's `environment`.
type Environment struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// WorkflowJob is one entry of `jobs`.
type Job struct {
	Key             string
	Name            string   // `name` raw, or Key
	RunsOn          []string // raw labels; one item may be an expression giving a list
	RunsOnGroup     string
	Container       *ContainerSpec
	Services        []ServiceSpec
	Needs           []string
	If              string
	Env             map[string]string // the job's own env, not merged
	Defaults        RunDefaults
	TimeoutMinutes  string // raw; "" means 360
	ContinueOnError string // raw
	Strategy        *Strategy
	Outputs         map[string]string // raw expressions
	Environment     *Environment
	Concurrency     *Concurrency
	Permissions     map[string]string
	Uses            string // a reusable workflow; the job then has no steps
	With            map[string]string
	WithTags        map[string]string // the YAML tag of each with value (!!bool, !!int, !!str...): its type
	Secrets         map[string]string // a calling job's secrets mapping, raw
	SecretsInherit  bool              // secrets: inherit
	Steps           []Step

	// Pos locates keys for run-time errors: key name → "line:col".
	Pos map[string]string
}

// Image is the job's container image, "" without a container.
func (j *Job) Image() string {
	if j.Container == nil {
		return ""
	}
	return j.Container.Image
}

// WorkflowStep is one entry of a job's `steps`. Every field is raw.
type Step struct {
	ID, If, Name, Run, Uses, Shell, WorkingDirectory string
	ContinueOnError, TimeoutMinutes                  string
	With                                             map[string]string
	Env                                              map[string]string
}

// Kind is the step's kind in the claim: run, checkout (the built-in
// actions/checkout) or uses (any other action).
func (s *Step) Kind() string {
	switch {
	case s.Uses == "":
		return "run"
	case IsCheckoutAction(s.Uses):
		return "checkout"
	}
	return "uses"
}

// DefaultTimeoutMinutes is GitHub's default job timeout.
const DefaultTimeoutMinutes = 360

// Limits on a workflow file, checked before anything of it is stored, so
// that one push cannot make a write transaction that stalls every other.
const (
	MaxBytes          = 512 << 10 // a workflow file's size
	maxAliasExpansion = 10        // YAML aliases may grow the document to this many times its nodes...
	minAliasBudget    = 10000     // ...or to this many nodes, whichever is more
	maxJobs           = 256       // jobs in one run: GitHub's matrix limit
	maxSteps          = 1000      // steps in one job
	MaxTimeoutMinutes = 4320      // 72 hours: GitHub's limit for self-hosted runners
)

var (
	// GitHub takes any env name (env.default-python is common); only what
	// cannot be an environment entry at all is refused.
	envNameRE   = regexp.MustCompile(`^[^=\x00]+$`)
	jobIDRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	inputNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	actionRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]*)?@[^@\s]+$`)
	reusableRE  = regexp.MustCompile(`^([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/\.(github|shithub)/workflows/[^@/]+\.ya?ml@[^@\s]+|\./\.(github|shithub)/workflows/[^@/]+\.ya?ml)$`)
)

// permissionScopes are the GITHUB_TOKEN permissions `permissions` may name,
// each with the levels it takes: GitHub's workflow syntax ("Defining access
// for the GITHUB_TOKEN scopes"), checked 2026-12-07. repository-projects
// is GitHub Enterprise Server's (projects v1) and stays for the files that
// still name it. The one list: add a scope here and nowhere else.
var permissionScopes = map[string][]string{
	"actions":              {"read", "write", "none"},
	"artifact-metadata":    {"read", "write", "none"},
	"attestations":         {"read", "write", "none"},
	"checks":               {"read", "write", "none"},
	"code-quality":         {"read", "write", "none"},
	"contents":             {"read", "write", "none"},
	"deployments":          {"read", "write", "none"},
	"discussions":          {"read", "write", "none"},
	"id-token":             {"write", "none"},
	"issues":               {"read", "write", "none"},
	"models":               {"read", "none"},
	"packages":             {"read", "write", "none"},
	"pages":                {"read", "write", "none"},
	"pull-requests":        {"read", "write", "none"},
	"repository-projects":  {"read", "write", "none"},
	"security-events":      {"read", "write", "none"},
	"statuses":             {"read", "write", "none"},
	"vulnerability-alerts": {"read", "none"},
}

// PermissionScopes lists the scopes `permissions` may name, sorted.
func PermissionScopes() []string { return slices.Sorted(maps.Keys(permissionScopes)) }

// IsFile reports whether the repository path p is a workflow file:
// <name>.yml or .yaml directly in .shithub/workflows/ or .github/workflows/
// (which of the two a commit's workflows come from is git.WorkflowDirAt's).
func IsFile(p string) bool {
	dir, name := path.Split(p)
	ext := path.Ext(name)
	return (dir == ".shithub/workflows/" || dir == ".github/workflows/") && (ext == ".yml" || ext == ".yaml") && len(name) > len(ext)
}

// Error is a problem located in a workflow file.
type Error struct {
	File string
	Line int // 0 when unknown
	Col  int // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every problem of a file, one per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Parse parses and validates the workflow file named file. It
// returns the first problem found, as a *Error.
func Parse(file string, data []byte) (*Workflow, error) {
	w, errs := Check(file, data)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return w, nil
}

// Check parses the workflow file named file and returns every
// problem, in file order; the workflow is nil when there is any.
func Check(file string, data []byte) (*Workflow, Errors) {
	if len(data) > MaxBytes {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("the file is %d bytes; a workflow file may have at most %d (512 KiB)", len(data), MaxBytes)}}
	}
	p := &parser{file: file}
	w := p.parse(data)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Col - b.Col
		})
		return nil, p.errs
	}
	return w, nil
}

// ParseErr returns what to record as a run's parse failure: all the problems.
func ParseErr(errs Errors) error {
	if len(errs) == 0 {
		return nil
	}
	return errs
}

type parser struct {
	file string
	errs Errors
}

// errorf records a problem at n.
func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(data []byte) *Workflow {
	root := p.decode(data)
	if root == nil {
		return nil
	}
	w := &Workflow{}
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "workflow must be a mapping")
		return nil
	}
	var sawOn, sawJobs bool
	for _, kv := range p.mapping(root, "workflow") {
		switch kv.key {
		case "name":
			w.Name, _ = p.str(kv.v, "name")
		case "run-name":
			if s, ok := p.str(kv.v, "run-name"); ok {
				w.RunName = s
				p.expr(kv.v, s, "run-name")
			}
		case "on", "true": // YAML 1.1 readers see `on` as true; GitHub's does not
			sawOn = true
			p.on(w, kv.v)
		case "env":
			w.Env = p.env(kv.v, "env", "env")
		case "defaults":
			w.Defaults = p.defaults(kv.v, "defaults", "jobs.<job_id>.defaults.run")
		case "concurrency":
			w.Concurrency = p.concurrency(kv.v, "concurrency", "concurrency")
		case "permissions":
			w.Permissions = p.permissions(kv.v, "permissions")
		case "jobs":
			sawJobs = true
			w.Jobs = p.jobs(kv.v)
		default:
			p.errorf(kv.k, "unknown key %q in workflow", kv.key)
		}
	}
	if !sawOn {
		p.errorf(root, `missing "on"`)
	}
	if !sawJobs {
		p.errorf(root, `missing "jobs"`)
	}
	if w.Name == "" {
		w.Name = path.Base(p.file)
	}
	return w
}

// decode returns the root node of the single YAML document in data.
func (p *parser) decode(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			p.errs = append(p.errs, &Error{File: p.file, Msg: "empty workflow file"})
		} else {
			p.syntaxError(err)
		}
		return nil
	}
	// A second document would be silently ignored otherwise.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		p.syntaxError(err)
		return nil
	default:
		p.errorf(&extra, "more than one YAML document")
		return nil
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if nodes, expanded := aliasExpansion(&doc); expanded > max(maxAliasExpansion*nodes, minAliasBudget) {
		p.errorf(root, "YAML aliases expand this workflow from %d to %d nodes; at most %d times the written size (or %d nodes) is allowed",
			nodes, expanded, maxAliasExpansion, minAliasBudget)
		return nil
	}
	return deref(root)
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

// syntaxError records the yaml package's "yaml: line N: msg" in our format.
func (p *parser) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
			}
		}
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: msg})
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

// mapping returns the entries of n in file order; a duplicate key is
// reported and dropped. where names the mapping in errors.
func (p *parser) mapping(n *yaml.Node, where string) []pair {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", where)
		return nil
	}
	pairs := make([]pair, 0, len(n.Content)/2)
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "keys of %s must be strings", where)
			continue
		}
		if seen[k.Value] {
			p.errorf(k, "duplicate key %q in %s", k.Value, where)
			continue
		}
		seen[k.Value] = true
		pairs = append(pairs, pair{k.Value, k, v})
	}
	return pairs
}

// str returns the text of a non-null scalar. Numbers and booleans are
// accepted as written, since `name: 1.0` almost always means the text.
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(n, "%s must be a string", what)
		return "", false
	}
	return n.Value, true
}

// scalar is str that also takes null, as "".
func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s must be a string, number or boolean", what)
		return "", false
	}
	return n.Value, true
}

// items accepts a single non-empty string or a non-empty list of them, as
// GitHub does wherever a list is expected, and returns the item nodes.
func (p *parser) items(n *yaml.Node, what string) ([]*yaml.Node, bool) {
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
		p.errorf(n, "%s must be a string or a non-empty list of strings", what)
		return nil, false
	}
	for _, c := range list {
		if c.Kind != yaml.ScalarNode || isNull(c) || c.Value == "" {
			p.errorf(c, "%s must be a string or a non-empty list of strings", what)
			return nil, false
		}
	}
	return list, true
}

func (p *parser) list(n *yaml.Node, what string) ([]string, bool) {
	list, ok := p.items(n, what)
	if !ok {
		return nil, false
	}
	out := make([]string, len(list))
	for i, c := range list {
		out[i] = c.Value
	}
	return out, true
}

// stringList is a list of scalars that may be empty (ports, volumes).
func (p *parser) stringList(n *yaml.Node, what, key string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		p.expr(n, n.Value, key)
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list", what)
		return nil
	}
	var out []string
	for _, c := range n.Content {
		c = deref(c)
		if s, ok := p.str(c, "an item of "+what); ok {
			p.expr(c, s, key)
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, "%s must be true or false", what)
		return false, false
	}
	return b, true
}

// boolOrExpr accepts true, false or a string holding an expression, as
// continue-on-error and cancel-in-progress do. It returns the raw text.
func (p *parser) boolOrExpr(n *yaml.Node, what, key string) string {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		b, _ := p.boolean(n, what)
		return strconv.FormatBool(b)
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${{") {
		p.expr(n, n.Value, key)
		return n.Value
	}
	p.errorf(n, "%s must be true, false or an expression", what)
	return ""
}

// numberOrExpr accepts a positive number or an expression (timeout-minutes,
// max-parallel) and returns the raw text.
func (p *parser) numberOrExpr(n *yaml.Node, what, key string) string {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${{") {
		p.expr(n, n.Value, key)
		return n.Value
	}
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f > 0 {
			return n.Value
		}
	}
	p.errorf(n, "%s must be a positive number or an expression", what)
	return ""
}

// timeoutMinutes is numberOrExpr for timeout-minutes: a number must be
// within 1 to MaxTimeoutMinutes (an expression is checked when evaluated).
func (p *parser) timeoutMinutes(n *yaml.Node, what, key string) string {
	v := p.numberOrExpr(n, what, key)
	if f, err := strconv.ParseFloat(v, 64); err == nil && (f < 1 || f > MaxTimeoutMinutes) {
		p.errorf(n, "%s must be a whole number from 1 to %d", what, MaxTimeoutMinutes)
		return ""
	}
	return v
}

// expr checks the expressions in s, found at n, against the contexts the
// workflow key allows (expr.Check); it reports at the string's position.
func (p *parser) expr(n *yaml.Node, s, key string) {
	if !strings.Contains(s, "${{") && !strings.HasSuffix(key, ".if") {
		return
	}
	if err := expr.Check(s, key); err != nil {
		p.errorf(n, "%v", err)
	}
}

// noExpr rejects an expression where GitHub allows none.
func (p *parser) noExpr(n *yaml.Node, s, what string) {
	if strings.Contains(s, "${{") {
		p.errorf(n, "%s cannot use expressions", what)
	}
}

// env parses an env mapping; null or absent means no variables. key is the
// context-availability key for its values.
func (p *parser) env(n *yaml.Node, where, key string) map[string]string {
	if isNull(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${{") {
		// An env that is one expression (e.g. fromJSON) is a valid GitHub form.
		p.expr(n, n.Value, key)
		return map[string]string{"": n.Value}
	}
	env := map[string]string{}
	for _, kv := range p.mapping(n, where) {
		if !envNameRE.MatchString(kv.key) {
			p.errorf(kv.k, "invalid variable name %q in %s", kv.key, where)
			continue
		}
		switch {
		case isNull(kv.v):
			env[kv.key] = ""
		case kv.v.Kind == yaml.ScalarNode:
			env[kv.key] = kv.v.Value
			p.expr(kv.v, kv.v.Value, key)
		default:
			p.errorf(kv.v, "%s.%s must be a string, number or boolean", where, kv.key)
		}
	}
	return env
}

// with parses a step's or a reusable-workflow job's `with`.
func (p *parser) with(n *yaml.Node, where, key string) map[string]string {
	if isNull(n) {
		return nil
	}
	out := map[string]string{}
	for _, kv := range p.mapping(n, where) {
		if s, ok := p.scalar(kv.v, where+"."+kv.key); ok {
			out[kv.key] = s
			p.expr(kv.v, s, key)
		}
	}
	return out
}

func (p *parser) defaults(n *yaml.Node, where, key string) RunDefaults {
	var d RunDefaults
	for _, kv := range p.mapping(n, where) {
		if kv.key != "run" {
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
			continue
		}
		for _, f := range p.mapping(kv.v, where+".run") {
			switch f.key {
			case "shell":
				d.Shell, _ = p.str(f.v, where+".run.shell")
				p.expr(f.v, d.Shell, key)
			case "working-directory":
				d.WorkingDirectory, _ = p.str(f.v, where+".run.working-directory")
				p.expr(f.v, d.WorkingDirectory, key)
			default:
				p.errorf(f.k, "unknown key %q in %s.run", f.key, where)
			}
		}
	}
	return d
}

// concurrency accepts a group string or {group, cancel-in-progress}.
func (p *parser) concurrency(n *yaml.Node, where, key string) *Concurrency {
	c := &Concurrency{}
	if n.Kind == yaml.ScalarNode {
		if s, ok := p.str(n, where); ok {
			c.Group = s
			p.expr(n, s, key)
		}
		return c
	}
	var sawGroup bool
	for _, kv := range p.mapping(n, where) {
		switch kv.key {
		case "group":
			sawGroup = true
			if s, ok := p.str(kv.v, where+".group"); ok {
				c.Group = s
				p.expr(kv.v, s, key)
			}
		case "cancel-in-progress":
			c.CancelInProgress = p.boolOrExpr(kv.v, where+".cancel-in-progress", key)
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
	if !sawGroup && n.Kind == yaml.MappingNode {
		p.errorf(n, "%s needs a group", where)
	}
	return c
}

// permissions accepts read-all, write-all, {} or a mapping of scopes.
func (p *parser) permissions(n *yaml.Node, where string) map[string]string {
	if n.Kind == yaml.ScalarNode {
		s, _ := p.str(n, where)
		if s != "read-all" && s != "write-all" {
			p.errorf(n, "%s must be read-all, write-all or a mapping of scopes", where)
		}
		return map[string]string{"*": s}
	}
	out := map[string]string{}
	for _, kv := range p.mapping(n, where) {
		valid, known := permissionScopes[kv.key]
		if !known {
			p.errorf(kv.k, "unknown permission scope %q in %s", kv.key, where)
			continue
		}
		lvl, ok := p.str(kv.v, where+"."+kv.key)
		if !ok {
			continue
		}
		if !slices.Contains(valid, lvl) {
			p.errorf(kv.v, "%s.%s must be %s", where, kv.key, strings.Join(valid, ", "))
		}
		out[kv.key] = lvl
	}
	return out
}

func (p *parser) jobs(n *yaml.Node) []*Job {
	if isNull(n) || n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		p.errorf(n, "jobs must not be empty")
		return nil
	}
	if n.Kind == yaml.MappingNode && len(n.Content)/2 > maxJobs {
		p.errorf(n, "jobs has %d jobs; a run may have at most %d", len(n.Content)/2, maxJobs)
		return nil
	}
	var jobs []*Job
	var needNodes [][]*yaml.Node // parallel to jobs, for error lines
	index := make(map[string]int)
	for _, kv := range p.mapping(n, "jobs") {
		if !jobIDRE.MatchString(kv.key) {
			p.errorf(kv.k, "invalid job id %q", kv.key)
			continue
		}
		j, needs := p.job(kv.k, kv.v)
		index[j.Key] = len(jobs)
		jobs = append(jobs, j)
		needNodes = append(needNodes, needs)
	}
	// needs may point forward, so references are checked once all jobs are known.
	bad := false
	for i, j := range jobs {
		for k, need := range j.Needs {
			switch _, ok := index[need]; {
			case need == j.Key:
				p.errorf(needNodes[i][k], "job %q needs itself", j.Key)
				bad = true
			case !ok:
				p.errorf(needNodes[i][k], "job %q needs unknown job %q", j.Key, need)
				bad = true
			}
		}
	}
	if bad {
		return jobs
	}

	// Depth-first search for a cycle; stack holds the current path.
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(jobs))
	var stack []int
	var visit func(i int) bool
	visit = func(i int) bool {
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
				p.errorf(needNodes[i][k], "needs cycle: %s", strings.Join(cycle, " -> "))
				return false
			case unvisited:
				if !visit(dep) {
					return false
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
		return true
	}
	for i := range jobs {
		if state[i] == unvisited && !visit(i) {
			break
		}
	}
	return jobs
}

// job parses the job keyed by key. It also returns the nodes of its needs,
// which are resolved by the caller.
func (p *parser) job(key, n *yaml.Node) (*Job, []*yaml.Node) {
	where := fmt.Sprintf("job %q", key.Value)
	j := &Job{Key: key.Value, Pos: map[string]string{}}
	var needs []*yaml.Node
	var sawSteps, sawRunsOn bool
	const jk = "jobs.<job_id>."
	pairs := p.mapping(n, where)
	for _, kv := range pairs {
		j.Pos[kv.key] = fmt.Sprintf("%d:%d", kv.v.Line, kv.v.Column)
		switch kv.key {
		case "name":
			if s, ok := p.str(kv.v, "name of "+where); ok {
				j.Name = s
				p.expr(kv.v, s, jk+"name")
			}
		case "runs-on":
			sawRunsOn = true
			j.RunsOn, j.RunsOnGroup = p.runsOn(kv.v, "runs-on of "+where)
		case "container":
			j.Container = p.container(kv.v, "container of "+where, jk+"container")
		case "services":
			for _, s := range p.mapping(kv.v, "services of "+where) {
				if !jobIDRE.MatchString(s.key) {
					p.errorf(s.k, "invalid service id %q", s.key)
					continue
				}
				if c := p.container(s.v, fmt.Sprintf("service %q of %s", s.key, where), jk+"services"); c != nil {
					j.Services = append(j.Services, ServiceSpec{s.key, *c})
				}
			}
		case "needs":
			var ok bool
			if needs, ok = p.items(kv.v, "needs of "+where); !ok {
				break
			}
			for _, c := range needs {
				if slices.Contains(j.Needs, c.Value) {
					p.errorf(c, "%s lists %q twice in needs", where, c.Value)
					continue
				}
				j.Needs = append(j.Needs, c.Value)
			}
			if len(j.Needs) != len(needs) {
				needs = nil
				j.Needs = nil
			}
		case "if":
			if s, ok := p.scalar(kv.v, "if of "+where); ok {
				j.If = s
				p.expr(kv.v, s, jk+"if")
			}
		case "env":
			j.Env = p.env(kv.v, "env of "+where, jk+"env")
		case "defaults":
			j.Defaults = p.defaults(kv.v, "defaults of "+where, jk+"defaults.run")
		case "timeout-minutes":
			j.TimeoutMinutes = p.timeoutMinutes(kv.v, "timeout-minutes of "+where, jk+"timeout-minutes")
		case "continue-on-error":
			j.ContinueOnError = p.boolOrExpr(kv.v, "continue-on-error of "+where, jk+"continue-on-error")
		case "strategy":
			j.Strategy = p.strategy(kv.v, "strategy of "+where)
		case "outputs":
			j.Outputs = map[string]string{}
			for _, o := range p.mapping(kv.v, "outputs of "+where) {
				if s, ok := p.scalar(o.v, "output "+o.key+" of "+where); ok {
					j.Outputs[o.key] = s
					p.expr(o.v, s, jk+"outputs.<output_id>")
				}
			}
		case "environment":
			j.Environment = p.environment(kv.v, "environment of "+where)
		case "concurrency":
			j.Concurrency = p.concurrency(kv.v, "concurrency of "+where, jk+"concurrency")
		case "permissions":
			j.Permissions = p.permissions(kv.v, "permissions of "+where)
		case "uses":
			if s, ok := p.str(kv.v, "uses of "+where); ok {
				j.Uses = s
				if !reusableRE.MatchString(s) {
					p.errorf(kv.v, "uses of %s must be a reusable workflow, OWNER/REPO/.github/workflows/FILE.yml@REF or ./.github/workflows/FILE.yml", where)
				}
			}
		case "with":
			j.With = p.with(kv.v, "with of "+where, jk+"with.<with_id>")
			j.WithTags = map[string]string{}
			p.subPos(j, "with", kv.v, j.WithTags)
		case "secrets":
			if kv.v.Kind == yaml.ScalarNode {
				if kv.v.Value != "inherit" {
					p.errorf(kv.v, "secrets of %s must be inherit or a mapping", where)
				}
				j.SecretsInherit = true
				break
			}
			j.Secrets = p.with(kv.v, "secrets of "+where, jk+"secrets.<secrets_id>")
			p.subPos(j, "secrets", kv.v, nil)
		case "snapshot":
			if kv.v.Kind == yaml.ScalarNode {
				p.str(kv.v, "snapshot of "+where)
				break
			}
			for _, f := range p.mapping(kv.v, "snapshot of "+where) {
				if f.key != "image-name" && f.key != "version" {
					p.errorf(f.k, "unknown key %q in snapshot of %s", f.key, where)
					continue
				}
				p.scalar(f.v, f.key+" of snapshot of "+where)
			}
		case "steps":
			sawSteps = true
			j.Steps = p.steps(kv.v, where)
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
	switch {
	case j.Uses != "":
		// A calling job takes only these keys ("Supported keywords for jobs
		// that call a reusable workflow").
		for _, kv := range pairs {
			if !slices.Contains(callerKeys, kv.key) && kv.key != "steps" && kv.key != "runs-on" {
				p.errorf(kv.k, "%s calls a reusable workflow and cannot have %s", where, kv.key)
			}
		}
		if sawSteps {
			p.errorf(key, "%s calls a reusable workflow and cannot have steps", where)
		}
		if sawRunsOn {
			p.errorf(key, "%s calls a reusable workflow and cannot have runs-on", where)
		}
	case !sawRunsOn && j.Container == nil:
		// A container alone is our extension: its image runs the job.
		p.errorf(key, "%s must have runs-on", where)
	}
	if j.Uses == "" && !sawSteps && n.Kind == yaml.MappingNode {
		p.errorf(key, "%s has no steps", where)
	}
	if j.Name == "" {
		j.Name = j.Key
	}
	return j, needs
}

// callerKeys are the keys a job that calls a reusable workflow may have.
var callerKeys = []string{"name", "uses", "with", "secrets", "strategy", "needs", "if", "permissions", "concurrency"}

// subPos records where each entry of a job's with or secrets mapping is
// (Pos["with.NAME"]), for errors found when the call is made, and the
// entries' YAML tags into tags when it is not nil.
func (p *parser) subPos(j *Job, key string, n *yaml.Node, tags map[string]string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		j.Pos[key+"."+k.Value] = fmt.Sprintf("%d:%d", v.Line, v.Column)
		if tags != nil {
			tags[k.Value] = v.ShortTag()
		}
	}
}

// runsOn accepts a label, a list of labels, or {group, labels}.
func (p *parser) runsOn(n *yaml.Node, what string) (labels []string, group string) {
	const key = "jobs.<job_id>.runs-on"
	if n.Kind != yaml.MappingNode {
		items, ok := p.items(n, what)
		if !ok {
			return nil, ""
		}
		for _, c := range items {
			p.expr(c, c.Value, key)
			labels = append(labels, c.Value)
		}
		return labels, ""
	}
	for _, kv := range p.mapping(n, what) {
		switch kv.key {
		case "group":
			group, _ = p.str(kv.v, "group of "+what)
			p.expr(kv.v, group, key)
		case "labels":
			items, ok := p.items(kv.v, "labels of "+what)
			if !ok {
				continue
			}
			for _, c := range items {
				p.expr(c, c.Value, key)
				labels = append(labels, c.Value)
			}
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, what)
		}
	}
	if labels == nil && group == "" {
		p.errorf(n, "%s needs a group or labels", what)
	}
	return labels, group
}

// container accepts an image name or {image, credentials, env, ports,
// volumes, options}; key is the context-availability key.
func (p *parser) container(n *yaml.Node, where, key string) *ContainerSpec {
	c := &ContainerSpec{}
	if n.Kind == yaml.ScalarNode {
		image, ok := p.str(n, where)
		if ok && image == "" {
			p.errorf(n, "%s must not be empty", where)
		}
		p.expr(n, image, key)
		c.Image = image
		return c
	}
	for _, kv := range p.mapping(n, where) {
		switch kv.key {
		case "image":
			c.Image, _ = p.str(kv.v, "image of "+where)
			p.expr(kv.v, c.Image, key)
		case "env":
			ek := key + ".env.<env_id>"
			if key == "jobs.<job_id>.services" {
				ek = "jobs.<job_id>.services.<service_id>.env.<env_id>"
			}
			c.Env = p.env(kv.v, "env of "+where, ek)
		case "ports":
			c.Ports = p.stringList(kv.v, "ports of "+where, key)
		case "volumes":
			c.Volumes = p.stringList(kv.v, "volumes of "+where, key)
		case "options":
			c.Options, _ = p.scalar(kv.v, "options of "+where)
			p.expr(kv.v, c.Options, key)
		case "credentials":
			ck := key + ".credentials"
			if key == "jobs.<job_id>.services" {
				ck = "jobs.<job_id>.services.<service_id>.credentials"
			}
			c.Credentials = map[string]string{}
			for _, f := range p.mapping(kv.v, "credentials of "+where) {
				if f.key != "username" && f.key != "password" {
					p.errorf(f.k, "unknown key %q in credentials of %s", f.key, where)
					continue
				}
				if s, ok := p.str(f.v, f.key+" of "+where); ok {
					c.Credentials[f.key] = s
					p.expr(f.v, s, ck)
				}
			}
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
	if c.Image == "" && n.Kind == yaml.MappingNode {
		p.errorf(n, "%s must have an image", where)
	}
	return c
}

func (p *parser) environment(n *yaml.Node, where string) *Environment {
	const key = "jobs.<job_id>.environment"
	e := &Environment{}
	if n.Kind == yaml.ScalarNode {
		e.Name, _ = p.str(n, where)
		p.expr(n, e.Name, key)
		return e
	}
	for _, kv := range p.mapping(n, where) {
		switch kv.key {
		case "name":
			e.Name, _ = p.str(kv.v, "name of "+where)
			p.expr(kv.v, e.Name, key)
		case "url":
			e.URL, _ = p.str(kv.v, "url of "+where)
			p.expr(kv.v, e.URL, key+".url")
		case "deployment":
			p.boolOrExpr(kv.v, "deployment of "+where, key)
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
	if e.Name == "" && n.Kind == yaml.MappingNode {
		p.errorf(n, "%s needs a name", where)
	}
	return e
}

func (p *parser) strategy(n *yaml.Node, where string) *Strategy {
	const key = "jobs.<job_id>.strategy"
	s := &Strategy{}
	for _, kv := range p.mapping(n, where) {
		switch kv.key {
		case "matrix":
			s.Matrix = p.matrix(kv.v, "matrix of "+where)
		case "fail-fast":
			s.FailFast = p.boolOrExpr(kv.v, "fail-fast of "+where, key)
		case "max-parallel":
			s.MaxParallel = p.numberOrExpr(kv.v, "max-parallel of "+where, key)
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
	return s
}

// matrix checks strategy.matrix and returns it as an ordered value. Static
// matrices are expanded here too, so that their mistakes (an empty vector,
// too many legs) are reported with the file.
func (p *parser) matrix(n *yaml.Node, where string) any {
	const key = "jobs.<job_id>.strategy"
	if n.Kind == yaml.ScalarNode {
		s, _ := p.str(n, where)
		if !strings.Contains(s, "${{") {
			p.errorf(n, "%s must be a mapping or an expression", where)
			return nil
		}
		p.expr(n, s, key)
		return s
	}
	pairs := p.mapping(n, where)
	if n.Kind == yaml.MappingNode && len(pairs) == 0 {
		p.errorf(n, "%s must define at least one vector", where)
		return nil
	}
	var out []matrixKV
	dynamic := false
	before := len(p.errs)
	for _, kv := range pairs {
		v := p.yamlValue(kv.v, key, &dynamic)
		switch {
		case kv.key == "include" || kv.key == "exclude":
			if _, isStr := v.(string); !isStr && kv.v.Kind != yaml.SequenceNode {
				p.errorf(kv.v, "%s.%s must be a list of mappings or an expression", where, kv.key)
				continue
			}
			if kv.v.Kind == yaml.SequenceNode {
				for _, c := range kv.v.Content {
					if c = deref(c); c.Kind != yaml.MappingNode && !(c.Kind == yaml.ScalarNode && strings.Contains(c.Value, "${{")) {
						p.errorf(c, "%s.%s must be a list of mappings", where, kv.key)
					}
				}
			}
		case kv.v.Kind != yaml.SequenceNode && !(kv.v.Kind == yaml.ScalarNode && strings.Contains(kv.v.Value, "${{")):
			p.errorf(kv.v, "matrix vector %q of %s must be a list or an expression", kv.key, where)
			continue
		}
		out = append(out, matrixKV{kv.key, v})
	}
	if !dynamic && len(p.errs) == before {
		if spec, err := matrixSpecOf(out); err != nil {
			p.errorf(n, "%s: %v", where, err)
		} else if _, err := matrixExpand(spec); err != nil {
			p.errorf(n, "%s: %v", where, err)
		}
	}
	return out
}

// yamlValue converts a node to an ordered value: []matrixKV for mappings,
// []any for sequences, and typed scalars. Strings are checked as
// expressions for key; dynamic is set when any holds one.
func (p *parser) yamlValue(n *yaml.Node, key string, dynamic *bool) any {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		var out []matrixKV
		for _, kv := range p.mapping(n, "a matrix value") {
			out = append(out, matrixKV{kv.key, p.yamlValue(kv.v, key, dynamic)})
		}
		if out == nil {
			out = []matrixKV{}
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			out = append(out, p.yamlValue(c, key, dynamic))
		}
		return out
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			n.Decode(&b)
			return b
		case "!!int", "!!float":
			if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil {
				return f
			}
			var f float64
			if n.Decode(&f) == nil {
				return f
			}
		}
		if strings.Contains(n.Value, "${{") {
			*dynamic = true
			p.expr(n, n.Value, key)
		}
		return n.Value
	}
	p.errorf(n, "unsupported YAML value")
	return nil
}

// matrixSpecOf turns an evaluated ordered matrix into matrixExpand's input.
func matrixSpecOf(m []matrixKV) (matrixSpec, error) {
	var spec matrixSpec
	entries := func(kv matrixKV) ([][]matrixKV, error) {
		list, ok := kv.Value.([]any)
		if !ok {
			return nil, fmt.Errorf("matrix %s must be a list of mappings", kv.Key)
		}
		var out [][]matrixKV
		for _, item := range list {
			switch o := item.(type) {
			case []matrixKV:
				out = append(out, o)
			case map[string]any:
				var kvs []matrixKV
				for _, k := range matrixSortedKeys(o) {
					kvs = append(kvs, matrixKV{k, o[k]})
				}
				out = append(out, kvs)
			default:
				return nil, fmt.Errorf("matrix %s must be a list of mappings", kv.Key)
			}
		}
		return out, nil
	}
	for _, kv := range m {
		var err error
		switch strings.ToLower(kv.Key) {
		case "include":
			spec.Include, err = entries(kv)
		case "exclude":
			spec.Exclude, err = entries(kv)
		default:
			list, ok := kv.Value.([]any)
			if !ok {
				return spec, fmt.Errorf("matrix vector '%s' must be a list", kv.Key)
			}
			spec.Dims = append(spec.Dims, matrixDim{kv.Key, list})
		}
		if err != nil {
			return spec, err
		}
	}
	return spec, nil
}

func (p *parser) steps(n *yaml.Node, job string) []Step {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n, "steps of %s must be a non-empty list", job)
		return nil
	}
	if len(n.Content) > maxSteps {
		p.errorf(n, "steps of %s has %d steps; a job may have at most %d", job, len(n.Content), maxSteps)
		return nil
	}
	steps := make([]Step, 0, len(n.Content))
	ids := map[string]bool{}
	for i, c := range n.Content {
		c = deref(c)
		st, idNode := p.step(c, fmt.Sprintf("step %d of %s", i+1, job))
		if st.ID != "" {
			if ids[strings.ToLower(st.ID)] {
				p.errorf(idNode, "step id %q is used twice in %s", st.ID, job)
			}
			ids[strings.ToLower(st.ID)] = true
		}
		steps = append(steps, st)
	}
	return steps
}

func (p *parser) step(n *yaml.Node, where string) (Step, *yaml.Node) {
	var s Step
	const sk = "jobs.<job_id>.steps."
	var run, uses, idNode *yaml.Node
	for _, kv := range p.mapping(n, where) {
		switch kv.key {
		case "id":
			idNode = kv.v
			if id, ok := p.str(kv.v, "id of "+where); ok {
				s.ID = id
				if !jobIDRE.MatchString(id) {
					p.errorf(kv.v, "invalid step id %q in %s", id, where)
				}
			}
		case "if":
			if v, ok := p.scalar(kv.v, "if of "+where); ok {
				s.If = v
				p.expr(kv.v, v, sk+"if")
			}
		case "name":
			if v, ok := p.str(kv.v, "name of "+where); ok {
				s.Name = v
				p.expr(kv.v, v, sk+"name")
			}
		case "run":
			run = kv.v
			if v, ok := p.str(kv.v, "run of "+where); ok {
				s.Run = v
				p.expr(kv.v, v, sk+"run")
			}
		case "uses":
			uses = kv.v
			if v, ok := p.str(kv.v, "uses of "+where); ok {
				s.Uses = v
				p.noExpr(kv.v, v, "uses of "+where)
			}
		case "with":
			s.With = p.with(kv.v, "with of "+where, sk+"with")
		case "env":
			s.Env = p.env(kv.v, "env of "+where, sk+"env")
		case "shell":
			if v, ok := p.str(kv.v, "shell of "+where); ok {
				s.Shell = v
				p.expr(kv.v, v, sk+"run")
			}
		case "working-directory":
			if v, ok := p.str(kv.v, "working-directory of "+where); ok {
				s.WorkingDirectory = v
				p.expr(kv.v, v, sk+"working-directory")
			}
		case "continue-on-error":
			s.ContinueOnError = p.boolOrExpr(kv.v, "continue-on-error of "+where, sk+"continue-on-error")
		case "timeout-minutes":
			s.TimeoutMinutes = p.timeoutMinutes(kv.v, "timeout-minutes of "+where, sk+"timeout-minutes")
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
	if n.Kind != yaml.MappingNode {
		return s, idNode
	}
	switch {
	case run != nil && uses != nil:
		p.errorf(n, "%s has both run and uses", where)
	case run == nil && uses == nil:
		p.errorf(n, "%s must have run or uses", where)
	case run != nil:
		script := strings.TrimSpace(s.Run)
		if script == "" && run.Kind == yaml.ScalarNode {
			p.errorf(run, "run of %s must not be empty", where)
		}
		if s.Name == "" {
			first, _, _ := strings.Cut(script, "\n")
			s.Name = "Run " + strings.TrimSpace(first)
		}
	default:
		if s.Uses != "" && !strings.HasPrefix(s.Uses, "./") && !strings.HasPrefix(s.Uses, "docker://") && !actionRE.MatchString(s.Uses) {
			p.errorf(uses, "uses of %s must be OWNER/REPO[/PATH]@REF, ./PATH or docker://IMAGE", where)
		}
		if s.Name == "" {
			s.Name = "Run " + s.Uses
		}
	}
	return s, idNode
}
