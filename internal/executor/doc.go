// Package executor runs claimed jobs in Docker: a pool of workers claims
// jobs from a JobSource (the server's own store, or a remote server over
// the runner protocol), gives each job its own network, volume and
// container, runs its steps with docker exec, actions (JavaScript,
// composite, Docker) and service containers, streams logs back, and
// cancels, times out and cleans up. It speaks to the engine only through
// the docker CLI and never opens the database.
package executor
