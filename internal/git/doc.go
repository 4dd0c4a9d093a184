// Package git reads repositories through the git CLI: resolving refs,
// reading workflow files at a commit, listing changed files and commit
// metadata for triggers.
package git
