// hashFiles() in the job's container, with the algorithm of GitHub's runner
// (actions/runner src/Misc/expressionFunc/hashFiles, on @actions/glob): the
// files under the workspace that the patterns match, in the order a
// depth-first walk with sorted directory entries meets them, each hashed
// with SHA-256; the result is the SHA-256 of those digests, in hex, or ""
// when nothing matches.

package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"shithub-actions/internal/protocol"
)

const (
	// hashFilesBatch bounds the argv of one hashing docker exec.
	hashFilesBatch = 64 << 10
	// hashFilesMaxList bounds the listing of the workspace.
	hashFilesMaxList = 64 << 20
)

// hashFilesScript hashes its arguments in order: one line per file, a
// digest, or "dir" for a directory (a symlink to one), which is skipped.
const hashFilesScript = `for f; do if [ -d "$f" ]; then echo dir; else sha256sum <"$f" || exit 1; fi; done`

// globPattern is one line of hashFiles' patterns.
type globPattern struct {
	negate bool
	segs   []string // path segments below the workspace; "**" matches any number
}

// parseGlobPatterns parses patterns as @actions/glob does: one per line,
// trimmed, blank lines and # comments skipped, a leading ! negates, and a
// relative pattern is relative to the workspace. Patterns that cannot match
// inside the workspace are dropped.
func parseGlobPatterns(patterns []string) []globPattern {
	var out []globPattern
	for _, p := range patterns {
		for _, line := range strings.Split(p, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			var g globPattern
			for strings.HasPrefix(line, "!") {
				g.negate = !g.negate
				line = line[1:]
			}
			if !path.IsAbs(line) {
				line = path.Join(protocol.Workspace, line)
			} else {
				line = path.Clean(line)
			}
			rel, ok := strings.CutPrefix(line, protocol.Workspace+"/")
			if !ok {
				continue // not under the workspace: matches nothing there
			}
			// minimatch's [!a] is path.Match's [^a].
			rel = strings.ReplaceAll(rel, "[!", "[^")
			for _, s := range strings.Split(rel, "/") {
				if s == "**" && len(g.segs) > 0 && g.segs[len(g.segs)-1] == "**" {
					continue
				}
				g.segs = append(g.segs, s)
			}
			out = append(out, g)
		}
	}
	return out
}

// matchSegs matches path segments against pattern segments.
func matchSegs(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if matchSegs(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], name[0])
	return err == nil && ok && matchSegs(pat[1:], name[1:])
}

// matches reports whether the pattern matches the file, or a directory it
// is in (@actions/glob's implicit descendants).
func (g globPattern) matches(segs []string) bool {
	for n := len(segs); n >= 1; n-- {
		if matchSegs(g.segs, segs[:n]) {
			return true
		}
	}
	return false
}

// globSelect keeps the files (relative paths) the patterns select, the last
// matching pattern deciding, in the order of a depth-first walk with
// sorted entries.
func globSelect(patterns []globPattern, files []string) []string {
	var out []string
	for _, f := range files {
		segs := strings.Split(f, "/")
		in := false
		for _, p := range patterns {
			if p.negate {
				if in && p.matches(segs) {
					in = false
				}
			} else if !in && p.matches(segs) {
				in = true
			}
		}
		if in {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
	})
	return out
}

// hashFiles implements hashFiles() for the job's expressions.
func (j *execJob) hashFiles(patterns []string) (string, error) {
	follow := false
	if len(patterns) > 0 && patterns[0] == "--follow-symbolic-links" {
		follow, patterns = true, patterns[1:]
	}
	globs := parseGlobPatterns(patterns)
	if len(globs) == 0 {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(j.reportCtx, jobCleanupTimeout)
	defer cancel()
	if err := j.ensureRunning(); err != nil {
		return "", err
	}
	args := []string{"exec", "-w", protocol.Workspace, j.name, "find"}
	if follow {
		args = append(args, "-L")
	}
	args = append(args, ".", "-mindepth", "1", "!", "-type", "d", "-print0")
	cmd := j.ex.docker.command(ctx, nil, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stdout.Len() > hashFilesMaxList {
		return "", errors.New("the workspace has too many files to list")
	}
	if err != nil && stdout.Len() == 0 {
		// find lists what it can and fails on what it cannot read; with
		// nothing at all listed, it did not run.
		if strings.TrimSpace(stderr.String()) == "" {
			return "", nil
		}
		return "", &dockerError{cmd: "exec find", stderr: strings.TrimSpace(stderr.String()), err: err}
	}
	var files []string
	for _, f := range strings.Split(stdout.String(), "\x00") {
		if f = strings.TrimPrefix(f, "./"); f != "" {
			files = append(files, f)
		}
	}
	selected := globSelect(globs, files)
	if len(selected) == 0 {
		return "", nil
	}

	total := sha256.New()
	found := false
	for len(selected) > 0 {
		n, size := 0, 0
		for n < len(selected) && (n == 0 || size+len(selected[n]) < hashFilesBatch) {
			size += len(selected[n]) + 1
			n++
		}
		batch := selected[:n]
		selected = selected[n:]
		args := append([]string{"exec", "-w", protocol.Workspace, j.name, "sh", "-c", hashFilesScript, "sh"}, batch...)
		out, errText, err := j.ex.docker.Output(ctx, args...)
		if err != nil {
			return "", fmt.Errorf("hash the files: %s", strings.TrimSpace(errText+" "+err.Error()))
		}
		lines := strings.Split(out, "\n")
		if len(lines) != len(batch) {
			return "", fmt.Errorf("hash the files: %d digests for %d files", len(lines), len(batch))
		}
		for _, l := range lines {
			if l == "dir" {
				continue
			}
			sum, err := hex.DecodeString(strings.TrimSpace(strings.Fields(l + " x")[0]))
			if err != nil || len(sum) != sha256.Size {
				return "", fmt.Errorf("hash the files: unexpected sha256sum output %q", l)
			}
			total.Write(sum)
			found = true
		}
	}
	if !found {
		return "", nil
	}
	return hex.EncodeToString(total.Sum(nil)), nil
}
