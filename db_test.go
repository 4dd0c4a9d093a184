package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreHandlesStayInside: the database handles leave the store only
// for tests (DBForTest, WriteDBForTest); no handler or command of the root
// reaches them, so every read and write goes through a Store method.
func TestStoreHandlesStayInside(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"DBForTest(", "WriteDBForTest("} {
			if strings.Contains(string(b), name) {
				t.Errorf("%s calls %s: handlers and commands go through Store methods", f, name)
			}
		}
	}
}
