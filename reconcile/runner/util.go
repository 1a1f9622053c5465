package runner

import "strings"

// lower folds case the way the domain does (reconcile compares names and emails with
// strings.ToLower), for the runtime's own indexes.
func lower(s string) string { return strings.ToLower(s) }
