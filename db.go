// The database: schema.sql, embedded, and opening the store with it.

package main

import (
	_ "embed"

	"shithub-actions/internal/store"
)

// schemaSQL is version 1 of the database; store.Migrations take it on.
//
//go:embed schema.sql
var schemaSQL string

// openStore opens (creating or migrating) the database at path, with what
// the store takes from outside (the key file, the clock, ...) in o.
func openStore(path string, o store.Options) (*store.Store, error) {
	return store.Open(path, schemaSQL, o)
}
