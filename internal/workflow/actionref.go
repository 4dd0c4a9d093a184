// Action references: what a step's `uses:` names, and the --allow-actions
// patterns that decide which actions may run.

package workflow

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// ActionRef is a parsed `uses:` value, one of
//
//	OWNER/REPO[/PATH]@REF   an action in a repository (kind ActionRepo)
//	./PATH                  an action in the job's workspace (kind ActionLocal)
//	docker://IMAGE          a Docker image run as an action (kind ActionDocker)
type ActionRef struct {
	Kind              string
	Owner, Repo, Path string // Path is "" for an action at the repository's root
	Ref               string // a tag, a branch or a commit id
	Local             string // the workspace path of a local action, cleaned, without "./"
	Image             string // of a docker:// action
}

const (
	ActionRepo   = "repo"
	ActionLocal  = "local"
	ActionDocker = "docker"
)

var (
	// GitHub's owner names are [A-Za-z0-9-]; repositories add _ and . .
	actionOwnerRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	actionRepoRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	FullSHA       = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// ParseActionRef parses a `uses:` value.
func ParseActionRef(s string) (ActionRef, error) {
	switch {
	case s == "":
		return ActionRef{}, fmt.Errorf("uses must name an action")
	case strings.TrimSpace(s) != s:
		return ActionRef{}, fmt.Errorf("uses %q has leading or trailing spaces", s)
	case strings.HasPrefix(s, "docker://"):
		img := strings.TrimPrefix(s, "docker://")
		if img == "" || strings.HasPrefix(img, "-") || strings.ContainsAny(img, " \t\r\n") {
			return ActionRef{}, fmt.Errorf("uses %q: docker://IMAGE needs an image name", s)
		}
		return ActionRef{Kind: ActionDocker, Image: img}, nil
	case strings.HasPrefix(s, "./") || s == ".":
		p := path.Clean(s)
		if p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, '\x00') {
			return ActionRef{}, fmt.Errorf("uses %q leaves the workspace", s)
		}
		return ActionRef{Kind: ActionLocal, Local: p}, nil
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "../"):
		return ActionRef{}, fmt.Errorf("uses %q: a local action is ./PATH, inside the workspace", s)
	}
	name, ref, ok := strings.Cut(s, "@")
	if !ok || ref == "" {
		return ActionRef{}, fmt.Errorf("uses %q needs a version: OWNER/REPO@REF (a tag, a branch or a commit id)", s)
	}
	if err := checkActionGitRef(ref); err != nil {
		return ActionRef{}, fmt.Errorf("uses %q: %v", s, err)
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return ActionRef{}, fmt.Errorf("uses %q: want OWNER/REPO[/PATH]@REF, ./PATH or docker://IMAGE", s)
	}
	r := ActionRef{Kind: ActionRepo, Owner: parts[0], Repo: parts[1], Ref: ref}
	if !actionOwnerRE.MatchString(r.Owner) || strings.Trim(r.Owner, ".") == "" {
		return ActionRef{}, fmt.Errorf("uses %q: bad owner %q", s, r.Owner)
	}
	if !actionRepoRE.MatchString(r.Repo) || strings.Trim(r.Repo, ".") == "" {
		return ActionRef{}, fmt.Errorf("uses %q: bad repository name %q", s, r.Repo)
	}
	if len(parts) > 2 {
		sub := strings.Join(parts[2:], "/")
		for _, seg := range parts[2:] {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, '\x00') {
				return ActionRef{}, fmt.Errorf("uses %q: bad path %q in the repository", s, sub)
			}
		}
		r.Path = sub
	}
	return r, nil
}

// checkActionGitRef rejects refs that git could take for an option or that
// no tag or branch can be named.
func checkActionGitRef(ref string) error {
	switch {
	case strings.HasPrefix(ref, "-"):
		return fmt.Errorf("ref %q starts with '-'", ref)
	case strings.Contains(ref, ".."), strings.ContainsAny(ref, " \t\r\n\x00~^:?*[\\"), strings.HasSuffix(ref, "/"),
		strings.HasPrefix(ref, "/"), strings.HasSuffix(ref, ".lock"), strings.Contains(ref, "@{"):
		return fmt.Errorf("%q is not a valid tag, branch or commit id", ref)
	}
	return nil
}

// String is the reference as a workflow writes it.
func (r ActionRef) String() string {
	switch r.Kind {
	case ActionDocker:
		return "docker://" + r.Image
	case ActionLocal:
		return "./" + strings.TrimPrefix(r.Local, "./")
	}
	return r.Name() + "@" + r.Ref
}

// Name is OWNER/REPO[/PATH] of a repository action.
func (r ActionRef) Name() string {
	n := r.Owner + "/" + r.Repo
	if r.Path != "" {
		n += "/" + r.Path
	}
	return n
}

// IsCheckout reports whether r is actions/checkout, which the executor
// implements itself.
func (r ActionRef) IsCheckout() bool {
	return r.Kind == ActionRepo && strings.EqualFold(r.Owner, "actions") && strings.EqualFold(r.Repo, "checkout") && r.Path == ""
}

// IsCheckoutAction reports whether uses names the built-in actions/checkout.
func IsCheckoutAction(uses string) bool {
	return strings.HasPrefix(strings.ToLower(uses), "actions/checkout@")
}

// ParseAllowActions parses --allow-actions: comma-separated patterns, each
// OWNER/REPO[/PATH][@REF] or docker://IMAGE, where * matches any run of
// characters (also '/'). An empty list allows every action.
func ParseAllowActions(s string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if p != "*" && !strings.HasPrefix(p, "docker://") && !strings.Contains(p, "/") {
			return nil, fmt.Errorf("bad --allow-actions pattern %q: want OWNER/REPO[/PATH][@REF], OWNER/*, docker://IMAGE or *", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// ActionAllowed reports whether r may run under patterns. Local actions are the repository's own code,
// like its run steps, and always allowed. A pattern without @REF allows
// every version; OWNER/REPO also allows the actions in the repository's
// subdirectories.
func ActionAllowed(patterns []string, r ActionRef) bool {
	if len(patterns) == 0 || r.Kind == ActionLocal {
		return true
	}
	for _, p := range patterns {
		if p == "*" {
			return true
		}
		if r.Kind == ActionDocker {
			if strings.HasPrefix(p, "docker://") && globAll(p, r.String()) {
				return true
			}
			continue
		}
		if strings.HasPrefix(p, "docker://") {
			continue
		}
		if pname, pref, ok := strings.Cut(p, "@"); ok {
			if (globAll(pname, r.Name()) || globAll(pname, r.Owner+"/"+r.Repo)) && globAll(pref, r.Ref) {
				return true
			}
			continue
		}
		if globAll(p, r.Name()) || globAll(p, r.Owner+"/"+r.Repo) {
			return true
		}
	}
	return false
}

// globAll matches s against a pattern whose only metacharacter is *, which
// matches any run of characters. Names compare without case, as GitHub's
// owner and repository names do.
func globAll(pattern, s string) bool {
	pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}
