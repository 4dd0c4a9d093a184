// Package store holds the database: opening and migrating it, the run,
// job and step state machine, planning jobs from workflow files, tokens,
// secrets, logs and their masking, retention, check and backup. Every
// read and write of the SQLite file goes through a Store; it knows
// nothing of HTTP.
package store
