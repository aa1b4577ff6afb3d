package deploy

import "context"

// readAhead is a read started ahead of the step that needs it, so that reads that do not depend on
// each other overlap instead of following one another. It only ever reads: a deploy refused
// later has changed nothing because of it.
type readAhead[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// ahead starts read now; wait collects its answer.
func ahead[T any](read func() (T, error)) *readAhead[T] {
	p := &readAhead[T]{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.val, p.err = read()
	}()
	return p
}

// wait is the read's answer, or ctx's error if ctx ends first.
func (p *readAhead[T]) wait(ctx context.Context) (T, error) {
	select {
	case <-p.done:
		return p.val, p.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
