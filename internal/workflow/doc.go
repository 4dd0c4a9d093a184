// Package workflow is the workflow language above the expressions: workflow
// files parsed and checked with a position for every problem (workflow.go),
// their triggers and the matching of pushes and pull requests (on.go),
// strategy.matrix expansion (matrix.go), schedules (cron.go), and the actions
// steps use: references, --allow-actions patterns (actionref.go) and
// action.yml metadata (actionyml.go). It is pure, like package expr beneath
// it: no database, no network, no subprocesses, no files.
package workflow
