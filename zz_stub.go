package main

import (
	"context"
	"io"
)

func cmdRunner(ctx context.Context, args []string, stdout, stderr io.Writer) error { return nil }
