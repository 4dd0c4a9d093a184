// Package logtext is what happens to a job's log text between the runner
// and a reader: secret values masked as the bytes stream through (mask.go),
// ANSI escapes and GitHub's "##[group]" markers rendered as HTML for the run
// page (ansi.go), and step summaries' Markdown rendered as safe HTML
// (markdown.go). It is pure: no database, no network, no files.
package logtext
