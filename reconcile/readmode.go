package reconcile

import "context"

type fullReadKey struct{}

// WithFullRead marks ctx as the context of a full read (full true) or of an incremental one.
// A source that can read only what changed since its last complete read (scimpull's
// meta.lastModified filter) does so when ctx says incremental; every other source reads in
// full regardless.
func WithFullRead(ctx context.Context, full bool) context.Context {
	return context.WithValue(ctx, fullReadKey{}, full)
}

// IsFullRead reports whether ctx asks for a full read. A context that says nothing asks for
// one: reading everything is always safe, reading less is an optimisation a caller opts into.
func IsFullRead(ctx context.Context) bool {
	full, ok := ctx.Value(fullReadKey{}).(bool)
	return !ok || full
}
