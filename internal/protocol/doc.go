// Package protocol is the contract between the server and a runner: the
// claimed job and its steps as the server hands them out, the
// annotations a runner reports, and the status and conclusion values both
// sides use. The store builds these types and the executor consumes them;
// neither imports the other.
package protocol
