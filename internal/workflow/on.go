// Workflow triggers: parsing `on` (every event GitHub defines) and matching
// pushes and pull requests against their filters.

package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PushTrigger holds the `on.push` filters. A nil slice means the filter is
// absent; the parser never produces an empty non-nil one.
type PushTrigger struct {
	Branches, BranchesIgnore, Tags, TagsIgnore, Paths, PathsIgnore []string
}

// PullRequestTrigger is `on.pull_request` or `on.pull_request_target`.
// Types nil means GitHub's default: opened, synchronize, reopened.
type PullRequestTrigger struct {
	Types                                        []string
	Branches, BranchesIgnore, Paths, PathsIgnore []string
}

// WorkflowRunTrigger is `on.workflow_run`: another workflow's run was
// requested, went in progress or completed. Workflows are names (the
// triggering workflow's `name:`, else its file path, as GitHub has it);
// Types nil means all three; the branch filters match the triggering
// run's head branch.
type WorkflowRunTrigger struct {
	Workflows, Types         []string
	Branches, BranchesIgnore []string
}

// WorkflowRunTypes are workflow_run's activity types, in the order a run
// goes through them.
var WorkflowRunTypes = []string{"requested", "in_progress", "completed"}

// Matches reports whether a run of the workflow named name, on head
// branch branch, going through activity type action triggers t. A nil
// trigger matches nothing.
func (t *WorkflowRunTrigger) Matches(name, action, branch string) bool {
	if t == nil || !slices.Contains(t.Workflows, name) {
		return false
	}
	if t.Types != nil && !slices.Contains(t.Types, action) {
		return false
	}
	return !(t.Branches != nil && !matchPatterns(t.Branches, branch) ||
		t.BranchesIgnore != nil && matchPatterns(t.BranchesIgnore, branch))
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

// eventTypes lists, for every event GitHub defines ("Events that trigger
// workflows"), the activity types its `types` filter accepts. nil: the
// event has no types; "*": any type (repository_dispatch). Only push,
// pull_request, pull_request_target, schedule, workflow_dispatch and
// workflow_run fire here (workflow_call is a call, not an event); the
// others parse and never fire.
var eventTypes = map[string][]string{
	"branch_protection_rule":      {"created", "edited", "deleted"},
	"check_run":                   {"created", "rerequested", "completed", "requested_action"},
	"check_suite":                 {"completed", "requested", "rerequested"},
	"create":                      nil,
	"delete":                      nil,
	"deployment":                  nil,
	"deployment_status":           nil,
	"discussion":                  {"created", "edited", "deleted", "transferred", "pinned", "unpinned", "labeled", "unlabeled", "locked", "unlocked", "category_changed", "answered", "unanswered"},
	"discussion_comment":          {"created", "edited", "deleted"},
	"fork":                        nil,
	"gollum":                      nil,
	"image_version":               {"created", "ready"},
	"issue_comment":               {"created", "edited", "deleted"},
	"issues":                      {"opened", "edited", "deleted", "transferred", "pinned", "unpinned", "closed", "reopened", "assigned", "unassigned", "labeled", "unlabeled", "locked", "unlocked", "milestoned", "demilestoned", "typed", "untyped"},
	"label":                       {"created", "edited", "deleted"},
	"merge_group":                 {"checks_requested"},
	"milestone":                   {"created", "closed", "opened", "edited", "deleted"},
	"page_build":                  nil,
	"project":                     {"created", "closed", "reopened", "edited", "deleted"},
	"project_card":                {"created", "moved", "converted", "edited", "deleted"},
	"project_column":              {"created", "updated", "moved", "deleted"},
	"public":                      nil,
	"pull_request":                PullRequestTypes,
	"pull_request_review":         {"submitted", "edited", "dismissed"},
	"pull_request_review_comment": {"created", "edited", "deleted"},
	"pull_request_target":         PullRequestTypes,
	"push":                        nil,
	"registry_package":            {"published", "updated"},
	"release":                     {"published", "unpublished", "created", "edited", "deleted", "prereleased", "released"},
	"repository_dispatch":         {"*"},
	"schedule":                    nil,
	"status":                      nil,
	"watch":                       {"started"},
	"workflow_call":               nil,
	"workflow_dispatch":           nil,
	"workflow_run":                WorkflowRunTypes,
}

var PullRequestTypes = []string{"assigned", "unassigned", "labeled", "unlabeled", "opened", "edited", "closed", "reopened",
	"synchronize", "converted_to_draft", "ready_for_review", "locked", "unlocked", "review_requested",
	"review_request_removed", "auto_merge_enabled", "auto_merge_disabled", "milestoned", "demilestoned",
	"enqueued", "dequeued"}

// prDefaultTypes are the pull_request types that trigger when `types` is absent.
var prDefaultTypes = []string{"opened", "synchronize", "reopened"}

// on parses the triggers into w.
func (p *parser) on(w *Workflow, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		events, ok := p.items(n, "on")
		if !ok {
			return
		}
		for _, ev := range events {
			p.event(w, ev, nil)
		}
		return
	}
	pairs := p.mapping(n, "on")
	if len(pairs) == 0 {
		p.errorf(n, "on must name at least one event")
	}
	for _, kv := range pairs {
		p.event(w, kv.k, kv.v)
	}
}

// event adds the trigger named by key, configured by v (nil in list form).
func (p *parser) event(w *Workflow, key, v *yaml.Node) {
	name := key.Value
	types, known := eventTypes[name]
	if !known {
		p.errorf(key, "unknown event %q in on", name)
		return
	}
	if slices.Contains(w.Events, name) {
		p.errorf(key, "duplicate event %q in on", name)
		return
	}
	w.Events = append(w.Events, name)
	switch name {
	case "push":
		w.Push = p.push(v)
	case "pull_request":
		w.PullRequest = p.pullRequest(v, "on.pull_request")
	case "pull_request_target":
		w.PullRequestTarget = p.pullRequest(v, "on.pull_request_target")
	case "workflow_dispatch":
		w.Dispatch = p.dispatch(v)
	case "schedule":
		w.Schedules = p.schedule(key, v)
	case "workflow_call":
		w.Call = p.workflowCall(v)
	case "workflow_run":
		w.WorkflowRun = p.workflowRun(v, types)
	default:
		p.eventFilters(v, name, types)
	}
}

// eventFilters checks the configuration of an event that never fires here:
// null, or a mapping of `types` (when the event has them) and the extra
// filter keys given.
func (p *parser) eventFilters(n *yaml.Node, name string, types []string, extra ...string) {
	if n == nil || isNull(n) {
		return
	}
	where := "on." + name
	for _, kv := range p.mapping(n, where) {
		switch {
		case kv.key == "types" && types != nil:
			list, ok := p.list(kv.v, where+".types")
			if !ok || slices.Contains(types, "*") {
				break
			}
			for i, t := range list {
				if !slices.Contains(types, t) {
					p.errorf(p.itemNode(kv.v, i), "unknown activity type %q in %s.types (known: %s)", t, where, strings.Join(types, ", "))
				}
			}
		case slices.Contains(extra, kv.key):
			p.patterns(kv.v, where+"."+kv.key)
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
}

// itemNode returns the i-th item of a list node, or the node itself for a
// scalar (the single-string form of a list).
func (p *parser) itemNode(n *yaml.Node, i int) *yaml.Node {
	if n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return deref(n.Content[i])
	}
	return n
}

// patterns parses a branch, tag or path filter list.
func (p *parser) patterns(n *yaml.Node, what string) []string {
	list, ok := p.list(n, what)
	if !ok {
		return nil
	}
	for i, pat := range list {
		if pat == "!" {
			p.errorf(p.itemNode(n, i), "empty negated pattern in %s", what)
		}
	}
	return list
}

// filterPairs parses the mapping of a push-like event into dst by key and
// rejects a filter next to its -ignore twin, as GitHub does.
func (p *parser) filterPairs(n *yaml.Node, where string, dst map[string]*[]string) {
	seen := map[string]bool{}
	for _, kv := range p.mapping(n, where) {
		d, ok := dst[kv.key]
		if !ok {
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
			continue
		}
		seen[kv.key] = true
		if base := strings.TrimSuffix(kv.key, "-ignore"); base != "types" && seen[base] && seen[base+"-ignore"] {
			p.errorf(kv.k, "%s cannot have both %s and %s-ignore", where, base, base)
		}
		if kv.key == "types" {
			list, ok := p.list(kv.v, where+".types")
			if ok {
				for i, t := range list {
					if !slices.Contains(PullRequestTypes, t) {
						p.errorf(p.itemNode(kv.v, i), "unknown activity type %q in %s.types", t, where)
					}
				}
				*d = list
			}
			continue
		}
		*d = p.patterns(kv.v, where+"."+kv.key)
	}
}

// workflowRun parses `on.workflow_run`. GitHub refuses branches next to
// branches-ignore, as for a push.
func (p *parser) workflowRun(n *yaml.Node, types []string) *WorkflowRunTrigger {
	t := &WorkflowRunTrigger{}
	if n == nil || isNull(n) {
		return t
	}
	const where = "on.workflow_run"
	for _, kv := range p.mapping(n, where) {
		switch kv.key {
		case "types":
			list, ok := p.list(kv.v, where+".types")
			if !ok {
				break
			}
			for i, ty := range list {
				if !slices.Contains(types, ty) {
					p.errorf(p.itemNode(kv.v, i), "unknown activity type %q in %s.types (known: %s)", ty, where, strings.Join(types, ", "))
				}
			}
			t.Types = list
		case "workflows":
			t.Workflows, _ = p.list(kv.v, where+".workflows")
		case "branches":
			t.Branches = p.patterns(kv.v, where+".branches")
		case "branches-ignore":
			t.BranchesIgnore = p.patterns(kv.v, where+".branches-ignore")
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
			continue
		}
		if kv.key == "branches-ignore" && t.Branches != nil || kv.key == "branches" && t.BranchesIgnore != nil {
			p.errorf(kv.k, "%s cannot have both branches and branches-ignore", where)
		}
	}
	return t
}

func (p *parser) push(n *yaml.Node) *PushTrigger {
	t := &PushTrigger{}
	if n == nil || isNull(n) {
		return t
	}
	p.filterPairs(n, "on.push", map[string]*[]string{
		"branches": &t.Branches, "branches-ignore": &t.BranchesIgnore, "tags": &t.Tags,
		"tags-ignore": &t.TagsIgnore, "paths": &t.Paths, "paths-ignore": &t.PathsIgnore,
	})
	return t
}

func (p *parser) pullRequest(n *yaml.Node, where string) *PullRequestTrigger {
	t := &PullRequestTrigger{}
	if n == nil || isNull(n) {
		return t
	}
	p.filterPairs(n, where, map[string]*[]string{
		"types": &t.Types, "branches": &t.Branches, "branches-ignore": &t.BranchesIgnore,
		"paths": &t.Paths, "paths-ignore": &t.PathsIgnore,
	})
	return t
}

// schedule parses `on.schedule`: a list of {cron: "..."}.
func (p *parser) schedule(key, n *yaml.Node) []*Schedule {
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		if n == nil {
			n = key
		}
		p.errorf(n, "on.schedule must be a non-empty list of {cron: ...}")
		return nil
	}
	var out []*Schedule
	for _, c := range n.Content {
		c = deref(c)
		for _, kv := range p.mapping(c, "an on.schedule entry") {
			if kv.key != "cron" {
				p.errorf(kv.k, "unknown key %q in on.schedule", kv.key)
				continue
			}
			s, ok := p.str(kv.v, "on.schedule cron")
			if !ok {
				continue
			}
			cs, err := cronParse(s)
			if err != nil {
				p.errorf(kv.v, "%v", err)
				continue
			}
			out = append(out, cs)
		}
		if c.Kind == yaml.MappingNode && len(c.Content) == 0 {
			p.errorf(c, "an on.schedule entry needs cron")
		}
	}
	return out
}

func (p *parser) dispatch(n *yaml.Node) *DispatchTrigger {
	d := &DispatchTrigger{}
	if n == nil || isNull(n) {
		return d
	}
	for _, kv := range p.mapping(n, "on.workflow_dispatch") {
		if kv.key != "inputs" {
			p.errorf(kv.k, "unknown key %q in on.workflow_dispatch", kv.key)
			continue
		}
		if isNull(kv.v) {
			continue
		}
		for _, in := range p.mapping(kv.v, "on.workflow_dispatch.inputs") {
			if !inputNameRE.MatchString(in.key) {
				p.errorf(in.k, "invalid input name %q", in.key)
				continue
			}
			d.Inputs = append(d.Inputs, p.input(in.key, in.v))
		}
	}
	return d
}

func (p *parser) input(name string, n *yaml.Node) DispatchInput {
	in := DispatchInput{Name: name, Type: "string"}
	if isNull(n) {
		return in
	}
	where := fmt.Sprintf("input %q", name)
	var def, opts *yaml.Node
	for _, kv := range p.mapping(n, where) {
		switch kv.key {
		case "description":
			in.Description, _ = p.str(kv.v, "description of "+where)
		case "required":
			in.Required, _ = p.boolean(kv.v, "required of "+where)
		case "default":
			var ok bool
			if in.Default, ok = p.scalar(kv.v, "default of "+where); ok {
				def = kv.v
			}
		case "type":
			in.Type, _ = p.str(kv.v, "type of "+where)
			switch in.Type {
			case "string", "boolean", "choice", "number", "environment":
			default:
				p.errorf(kv.v, "type of %s must be string, boolean, choice, number or environment", where)
				in.Type = "string"
			}
		case "options":
			opts = kv.k
			in.Options, _ = p.list(kv.v, "options of "+where)
		default:
			p.errorf(kv.k, "unknown key %q in %s", kv.key, where)
		}
	}
	switch {
	case in.Type == "choice" && opts == nil:
		p.errorf(n, "choice %s needs options", where)
		return in
	case in.Type != "choice" && opts != nil:
		p.errorf(opts, "options of %s require type: choice", where)
		return in
	}
	if def != nil && in.Default != "" {
		if err := in.check(in.Default); err != nil {
			p.errorf(def, "default of %s: %v", where, err)
		}
	}
	return in
}

// matches reports whether a push of ref (refs/heads/x or refs/tags/x) that
// changed the given files triggers the workflow. changed == nil means the
// changed files are unknown (a new branch, say), in which case paths filters
// match. A nil trigger matches nothing.
func (p *PushTrigger) Matches(ref string, changed []string) bool {
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
		return pathsMatch(p.Paths, p.PathsIgnore, changed)
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

// matches reports whether a pull request event of type action, into the
// base branch base (a name, not a ref), changing the given files, triggers
// the workflow. changed == nil means unknown: paths filters match.
func (t *PullRequestTrigger) Matches(action, base string, changed []string) bool {
	if t == nil {
		return false
	}
	types := t.Types
	if types == nil {
		types = prDefaultTypes
	}
	if !slices.Contains(types, action) {
		return false
	}
	if t.Branches != nil && !matchPatterns(t.Branches, base) ||
		t.BranchesIgnore != nil && matchPatterns(t.BranchesIgnore, base) {
		return false
	}
	return pathsMatch(t.Paths, t.PathsIgnore, changed)
}

func pathsMatch(paths, ignore, changed []string) bool {
	if changed == nil {
		return true
	}
	switch {
	case paths != nil:
		return slices.ContainsFunc(changed, func(f string) bool { return matchPatterns(paths, f) })
	case ignore != nil:
		return slices.ContainsFunc(changed, func(f string) bool { return !matchPatterns(ignore, f) })
	}
	return true
}

// matchPatterns applies a filter list the GitHub way: patterns are tried in
// order and the last one matching name decides, a "!" pattern excluding it.
func matchPatterns(patterns []string, name string) bool {
	matched := false
	for _, pat := range patterns {
		rest, neg := strings.CutPrefix(pat, "!")
		if GlobMatch(rest, name) {
			matched = !neg
		}
	}
	return matched
}

// RefName shortens refs/heads/x and refs/tags/x to x.
func RefName(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if r, ok := strings.CutPrefix(ref, p); ok {
			return r
		}
	}
	return ref
}

// GlobMatch reports whether name matches pattern, where `*` matches any run
// of characters except `/`, `**` any run including `/`, and `?` one
// character other than `/`. As on GitHub, `**/` may also match nothing, so
// `**/x` matches "x". A leading `!` is not special here; see matchPatterns.
func GlobMatch(pattern, name string) bool {
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
func (d *DispatchTrigger) Resolve(in map[string]any) (map[string]string, error) {
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
