// Package jobsvc holds the services jobs talk to while they run, beside
// the API: artifacts (GitHub's v4 Twirp protocol, in the database) and
// caches (the cache service of @actions/cache, v1 and v2, in a directory),
// with their signed URLs and runtime-token checks.
package jobsvc
