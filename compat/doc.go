// Package compat drives a real shithub-actions server with go-github, the
// GitHub client library, to show that tooling written for GitHub's Actions
// REST API works against it unchanged. It is a test-only module, so the
// product's go.mod stays lean: go test ./... here builds the server from the
// parent directory and starts it on 127.0.0.1 with a temporary database.
package compat
