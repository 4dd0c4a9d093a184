package apperr

import "fmt"

// usageError is bad input on the command line: one line on stderr and
// exit status 2.
type UsageError struct{ msg string }

func (e UsageError) Error() string { return e.msg }

func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }
