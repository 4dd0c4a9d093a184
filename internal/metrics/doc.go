// Package metrics counts what the server does (requests, write
// transactions, jobs, runs, pruning) and writes Prometheus' text format.
// It is handed to the store and the HTTP face; it knows neither.
package metrics
